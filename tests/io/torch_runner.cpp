// The snap side of tests/io/test_pytorch_roundtrip.py: loads a weights file exported from
// PyTorch, runs an input sequence through the cell and its readout in double precision with
// untruncated BPTT, and writes the states, readout outputs, losses and gradients to an .npz;
// then saves the loaded weights again (snap::saveWeights) for the import back into PyTorch.
//
//   torch_runner WEIGHTS.npz SEQUENCE.npz RESULTS.npz RESAVED.npz
//
// SEQUENCE.npz holds `inputs` (T × m, float64) and `targets` (T, int64).

#include <snap/io/weights.hpp>
#include <snap/snap.hpp>

#include <cstdio>
#include <string>

namespace {

template <class Cell>
void run(const std::string& weightsPath, const std::string& sequencePath, const std::string& resultsPath,
         const std::string& resavedPath, const snap::WeightsInfo& info) {
  Cell cell(info.inputSize, info.hiddenSize);
  snap::Readout<double> readout(info.hiddenSize, info.outputs);
  snap::loadWeights(weightsPath, cell, readout);

  const snap::NpzArchive sequence = snap::loadNpz(sequencePath);
  const snap::NpyArray& inputArray = sequence.at("inputs");
  const std::vector<double> inputs = inputArray.values<double>("inputs");
  const std::vector<std::int64_t> targets = sequence.at("targets").values<std::int64_t>("targets");
  const auto steps = static_cast<snap::Index>(targets.size());
  if (inputArray.shape != std::vector<std::int64_t>{steps, info.inputSize})
    throw snap::FormatError("torch_runner: inputs must be T x m with T the number of targets");

  snap::BPTT<Cell> engine(cell);
  snap::RowMatrix<double> states(steps, cell.stateSize()), outputs(steps, info.outputs);
  snap::Vector<double> losses(steps), stateGradient(cell.stateSize());
  for (snap::Index t = 0; t < steps; ++t) {
    const Eigen::Map<const snap::Vector<double>> x(inputs.data() + t * info.inputSize, info.inputSize);
    const snap::Vector<double>& s = engine.step(x);
    states.row(t) = s.transpose();
    outputs.row(t) = (readout.weight() * s.head(info.hiddenSize) + readout.bias()).transpose();
    losses[t] = readout.loss(s, targets[static_cast<std::size_t>(t)], stateGradient);
    engine.accumulate(stateGradient);
  }
  const snap::CellTensors<double> gradient = cell.unflatten(engine.gradient());
  const snap::Vector<double>& readoutGradient = readout.gradient();
  const snap::Index classes = info.outputs, hidden = info.hiddenSize;
  snap::saveNpz(resultsPath,
                {{"states", snap::NpyArray::of(states)},
                 {"outputs", snap::NpyArray::of(outputs)},
                 {"losses", snap::NpyArray::of(losses)},
                 {"grad_weight_ih", snap::NpyArray::of(gradient.weight_ih)},
                 {"grad_weight_hh", snap::NpyArray::of(gradient.weight_hh)},
                 {"grad_bias_ih", snap::NpyArray::of(gradient.bias_ih)},
                 {"grad_bias_hh", snap::NpyArray::of(gradient.bias_hh)},
                 {"grad_readout_weight",
                  snap::NpyArray::of(snap::RowMatrix<double>(
                      Eigen::Map<const snap::RowMatrix<double>>(readoutGradient.data(), classes, hidden)))},
                 {"grad_readout_bias", snap::NpyArray::of(snap::Vector<double>(readoutGradient.tail(classes)))}});
  snap::saveWeights(resavedPath, cell, readout);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: torch_runner WEIGHTS.npz SEQUENCE.npz RESULTS.npz RESAVED.npz\n");
    return 2;
  }
  try {
    const snap::WeightsInfo info = snap::readWeightsInfo(argv[1]);
    if (info.outputs < 2) throw snap::FormatError("torch_runner: the weights file needs a readout");
    if (info.cell == "rnn") run<snap::RNN<double>>(argv[1], argv[2], argv[3], argv[4], info);
    else if (info.cell == "gru") run<snap::GRU<double>>(argv[1], argv[2], argv[3], argv[4], info);
    else if (info.cell == "lstm") run<snap::LSTM<double>>(argv[1], argv[2], argv[3], argv[4], info);
    else throw snap::FormatError("torch_runner: unknown cell type '" + info.cell + "'");
  } catch (const std::exception& error) {
    std::fprintf(stderr, "torch_runner: %s\n", error.what());
    return 1;
  }
  return 0;
}
