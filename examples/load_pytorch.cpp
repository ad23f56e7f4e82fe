// Loads a cell and a readout exported from PyTorch (examples/pytorch/export_torch.py; the file
// format is that of include/snap/io/weights.hpp), runs a short input sequence through them in
// double precision, and prints the states and readout probabilities. When the file carries
// PyTorch's own results for an example sequence (export_torch.py --example-steps N), the
// example runs that sequence and checks that snap agrees with PyTorch.
//
//   /usr/bin/python3 examples/pytorch/export_torch.py --cell gru --inputs 3 --hidden 32 --outputs 2 model.npz
//   load_pytorch --weights model.npz

#include <snap/io/weights.hpp>
#include <snap/snap.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <string>

#include "common/command_line.hpp"

namespace {

/// Returns the largest |snap − PyTorch| over the example's states and outputs, if the file has one.
template <class Cell>
std::optional<double> run(const std::string& path, const snap::WeightsInfo& info, snap::Index steps, std::uint64_t seed) {
  // snippet-begin: load
  Cell cell(info.inputSize, info.hiddenSize);
  snap::Readout<double> readout(info.hiddenSize, info.outputs);
  snap::loadWeights(path, cell, readout);  // checks the cell type and every shape
  // snippet-end: load
  std::printf("%s: %s, inputs m = %ld, hidden H = %ld, %ld classes, %ld parameters (%s in the file)\n", path.c_str(),
              info.cell.c_str(), static_cast<long>(info.inputSize), static_cast<long>(info.hiddenSize),
              static_cast<long>(info.outputs), static_cast<long>(cell.parameterCount()),
              info.elementType == "<f8" ? "float64" : "float32");

  // The input sequence: PyTorch's example if the file has one, random otherwise.
  const snap::NpzArchive archive = snap::loadNpz(path);
  const bool example = archive.count("example_inputs") != 0;
  snap::RowMatrix<double> inputs(steps, info.inputSize);
  if (example) {
    const snap::NpyArray& stored = archive.at("example_inputs");
    if (stored.shape.size() != 2 || stored.shape[1] != info.inputSize)
      throw snap::FormatError("example_inputs: expected T x m");
    inputs = Eigen::Map<const snap::RowMatrix<double>>(stored.values<double>("example_inputs").data(),
                                                       stored.shape[0], info.inputSize);
  } else {
    snap::Random random(seed);
    for (snap::Index i = 0; i < inputs.size(); ++i) inputs.data()[i] = random.uniform(-1, 1);
  }

  snap::Vector<double> state = snap::Vector<double>::Zero(cell.stateSize()), next(cell.stateSize());
  snap::StepCache<double> cache = cell.makeCache();
  snap::RowMatrix<double> states(inputs.rows(), cell.stateSize()), outputs(inputs.rows(), info.outputs);
  for (snap::Index t = 0; t < inputs.rows(); ++t) {
    cell.forward(inputs.row(t).transpose(), state, next, cache);
    state.swap(next);
    states.row(t) = state.transpose();
    outputs.row(t) = (readout.weight() * state.head(info.hiddenSize) + readout.bias()).transpose();
    const snap::Vector<double>& p = readout.predict(state);
    std::printf("t = %2ld  h[0..2] = (%+.4f, %+.4f, %+.4f)  p = (", static_cast<long>(t), state[0],
                state[std::min<snap::Index>(1, info.hiddenSize - 1)], state[std::min<snap::Index>(2, info.hiddenSize - 1)]);
    for (snap::Index c = 0; c < p.size(); ++c) std::printf("%s%.4f", c > 0 ? ", " : "", p[c]);
    std::printf(")\n");
  }
  if (!example) {
    std::printf("no PyTorch reference to compare with: %s has no example sequence (export_torch.py --example-steps N "
                "writes one); the states and probabilities above are snap's alone\n",
                path.c_str());
    return std::nullopt;
  }
  double difference = 0;
  for (const char* name : {"example_states", "example_outputs"}) {
    const snap::RowMatrix<double>& ours = std::string(name) == "example_states" ? states : outputs;
    const snap::NpyArray& stored = archive.at(name);
    const std::vector<double> theirs = stored.values<double>(name);
    if (static_cast<snap::Index>(theirs.size()) != ours.size()) throw snap::FormatError(std::string(name) + ": wrong size");
    for (snap::Index i = 0; i < ours.size(); ++i)
      difference = std::max(difference, std::abs(ours.data()[i] - theirs[static_cast<std::size_t>(i)]));
  }
  return difference;
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line("load_pytorch", "Runs a cell and readout exported from PyTorch.");
  line.flag("weights", SNAP_EXAMPLE_DATA "/gru_fixture.npz", "weights file written by export_torch.py");
  line.flag("steps", "5", "input steps to run when the file has no example sequence");
  line.flag("seed", "1", "seeds the random inputs");
  try {
    if (!line.parse(argc, argv)) return 0;
    const std::string path = line.text("weights");
    const snap::Index steps = line.integer("steps", 1, 1000000);
    const auto seed = static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62));
    const snap::WeightsInfo info = snap::readWeightsInfo(path);
    if (info.outputs < 2) throw snap::FormatError(path + ": no readout (export with --outputs 2 or more)");
    std::optional<double> difference;
    if (info.cell == "rnn") difference = run<snap::RNN<double>>(path, info, steps, seed);
    else if (info.cell == "gru") difference = run<snap::GRU<double>>(path, info, steps, seed);
    else if (info.cell == "lstm") difference = run<snap::LSTM<double>>(path, info, steps, seed);
    else throw snap::FormatError(path + ": cell type '" + info.cell + "' is not rnn, gru or lstm");
    if (difference) {
      // PyTorch ran in the file's precision, snap in double.
      const double tolerance = info.elementType == "<f8" ? 1e-10 : 1e-5;
      const bool agree = *difference <= tolerance;
      std::printf("%s PyTorch on its example sequence: max |snap - torch| = %.1e (tolerance %.0e)\n",
                  agree ? "agrees with" : "DIFFERS from", *difference, tolerance);
      if (!agree) return 1;
    }
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "load_pytorch: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "load_pytorch: %s\n", error.what());
    return 1;
  }
  return 0;
}
