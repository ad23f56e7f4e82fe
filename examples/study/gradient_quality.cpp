// How close is each approximate engine's gradient to the exact one, along training? One cell is
// trained online (Adam, an update every step) by the --train engine; beside the trainer, every
// engine under comparison is bound to the same cell, so it sees the same weights at every step and
// reads the same stream: exact RTRL (the reference), SnAp-1 ... SnAp-N, UORO, e-prop, RFLO (the
// RNN only) and rolling BPTT(L). At every scored step each computes the gradient of that step's loss
// with respect to θ from its own influence (or window); the program logs, per engine and per
// interval of --every steps, the mean cosine and the mean relative error ‖g − g*‖ / ‖g*‖ of the
// per-step gradients against RTRL's g*, and the same two for the gradients summed over the interval
// (what a slow optimizer sees). Double precision throughout, so that what is measured is the
// approximation and not rounding.
//
//   gradient_quality --task copy --cell gru --hidden 64 --density 0.25 --steps 100000 --csv q.csv
//   gradient_quality --task text --text build/study/bible/train.txt --hidden 64 --steps 50000

#include <snap/snap.hpp>

#include <array>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "common/command_line.hpp"

namespace {

using snap::Index;
using Scalar = double;
using Vector = snap::Vector<Scalar>;
using snap::examples::CommandLineError;

struct Config {
  std::string task, text, cell, train;
  Index hidden = 0, snapMax = 3, window = 16, trainSteps = 2;
  double density = 1, leak = 1, lr = 0, clip = 0;
  long long steps = 0, every = 0;
  std::uint64_t seed = 0;
  std::string csv;
};

/// One engine under comparison, bound to the trained cell, type-erased.
class Candidate {
public:
  explicit Candidate(std::string name) : m_name(std::move(name)) {}
  virtual ~Candidate() = default;
  const std::string& name() const { return m_name; }
  virtual void step(const Vector& input) = 0;
  /// The gradient of this step's loss (the readout's softmax cross-entropy for `target`, through
  /// this engine's own outputs), then forgets it.
  virtual const Vector& gradient(snap::Readout<Scalar>& readout, Index target) = 0;
  virtual void reset() = 0;

  // The interval's statistics against the reference.
  double cosines = 0, errors = 0;
  long long count = 0;
  Vector sum;

private:
  std::string m_name;
};

template <class Engine>
class CandidateOf final : public Candidate {
public:
  CandidateOf(std::string name, const typename Engine::CellType& cell, const typename Engine::Options& options)
      : Candidate(std::move(name)), m_engine(cell, options), m_delta(cell.outputSize()) {}
  void step(const Vector& input) override { m_engine.step(input); }
  const Vector& gradient(snap::Readout<Scalar>& readout, Index target) override {
    // δ = W_outᵀ (p − e_target): the gradient of the cross-entropy over the cell's output.
    m_error = readout.predict(m_engine.outputs().col(0));
    m_error[target] -= 1;
    m_delta.noalias() = readout.weight().transpose() * m_error;
    m_engine.resetGradient();
    m_engine.accumulate(m_delta);
    m_gradient = m_engine.gradient();
    m_engine.resetGradient();
    return m_gradient;
  }
  void reset() override { m_engine.resetState(); }

private:
  Engine m_engine;
  Vector m_delta, m_error, m_gradient;  // sized at the first step, reused after
};

/// The stream of (input symbol, target) steps: copy-task sequences under the trained curriculum,
/// or a text read as one long stream.
struct Text {
  std::vector<int> symbols;
  Index alphabet = 0;
  explicit Text(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw CommandLineError{"--text: cannot read '" + path + "'"};
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::array<int, 256> symbolOf{};
    symbolOf.fill(-1);
    for (unsigned char c : text) symbolOf[c] = 0;
    for (int& s : symbolOf)
      if (s == 0) s = static_cast<int>(alphabet++);
    if (text.size() < 2 || alphabet < 2)
      throw CommandLineError{"--text: '" + path + "' needs at least 2 characters and 2 distinct ones"};
    for (unsigned char c : text) symbols.push_back(symbolOf[c]);
  }
};

template <class Cell>
Cell makeCell(const Config& config, Index inputs) {
  const snap::CellOptions options{.recurrentDensity = config.density, .seed = config.seed};
  if constexpr (std::is_same_v<Cell, snap::RNN<Scalar>>)
    return Cell(inputs, config.hidden, options, snap::RNNOptions{.leak = config.leak});
  else
    return Cell(inputs, config.hidden, options);
}

template <class Cell>
std::vector<std::unique_ptr<Candidate>> candidates(const Config& config, const Cell& cell) {
  std::vector<std::unique_ptr<Candidate>> list;
  list.push_back(std::make_unique<CandidateOf<snap::RTRL<Cell>>>("RTRL", cell, snap::RTRLOptions{}));
  for (Index n = 1; n <= config.snapMax; ++n)
    list.push_back(std::make_unique<CandidateOf<snap::SnAp<Cell>>>("SnAp-" + std::to_string(n), cell,
                                                                   snap::SnApOptions{.n = static_cast<int>(n)}));
  list.push_back(std::make_unique<CandidateOf<snap::UORO<Cell>>>("UORO", cell, snap::UOROOptions{.seed = config.seed + 2}));
  list.push_back(std::make_unique<CandidateOf<snap::EProp<Cell>>>("e-prop", cell, snap::EPropOptions{}));
  if constexpr (std::is_same_v<Cell, snap::RNN<Scalar>>)
    list.push_back(std::make_unique<CandidateOf<snap::RFLO<Cell>>>("RFLO", cell, snap::RFLOOptions{}));
  list.push_back(std::make_unique<CandidateOf<snap::RollingBPTT<Cell>>>(
      "rolling BPTT(" + std::to_string(config.window) + ")", cell, snap::RollingBPTTOptions{.window = config.window}));
  return list;
}

template <class Engine>
int run(const Config& config, const typename Engine::Options& engineOptions) {
  using Cell = typename Engine::CellType;
  std::unique_ptr<Text> text;
  if (config.task == "text") text = std::make_unique<Text>(config.text);
  snap::CopyTask task({.seed = config.seed});
  const Index inputs = text ? text->alphabet : task.inputSize(), classes = text ? text->alphabet : task.outputSize();
  Cell cell = makeCell<Cell>(config, inputs);
  snap::Readout<Scalar> readout(cell.outputSize(), classes, config.seed + 1);
  snap::Trainer<Engine> trainer(cell, readout, snap::Adam{.learningRate = config.lr}, {.clipNorm = config.clip},
                                engineOptions);
  auto list = candidates(config, cell);
  std::ofstream csv;
  if (!config.csv.empty()) {
    csv.open(config.csv, std::ios::trunc);
    if (!csv) throw snap::Error("snap: --csv: cannot open '" + config.csv + "' for writing");
    csv << "step,engine,cos_step,relerr_step,cos_sum,relerr_sum,scored,length,loss_bits\n";
  }
  std::printf("gradient_quality: %s, H = %ld, density %g, %ld parameters, trained with %s on the %s task; "
              "reference RTRL\n",
              config.cell.c_str(), static_cast<long>(config.hidden), config.density,
              static_cast<long>(cell.parameterCount()), config.train.c_str(), config.task.c_str());
  const Index p = cell.parameterCount();
  for (auto& c : list) c->sum = Vector::Zero(p);
  Vector reference(p), referenceSum = Vector::Zero(p), input = Vector::Zero(inputs);
  std::vector<double> totals(list.size(), 0.0), totalErrors(list.size(), 0.0);
  std::vector<long long> totalCounts(list.size(), 0);
  double lossBits = 0;
  long long lossCount = 0, step = 0, position = 0;

  // One step of the stream: the candidates and the trainer see the same weights and input.
  // Returns the step's loss in bits (0 when unscored). `input` holds the step's input.
  auto observe = [&](Index target) -> double {
    for (auto& c : list) c->step(input);
    if (target >= 0) {
      reference = list[0]->gradient(readout, target);
      const double norm = reference.norm();
      referenceSum += reference;
      for (std::size_t i = 1; i < list.size(); ++i) {
        const Vector& g = list[i]->gradient(readout, target);
        list[i]->sum += g;
        if (norm == 0) continue;  // nothing to compare with (a step whose loss does not reach θ)
        const double gNorm = g.norm();
        const double cosine = gNorm > 0 ? g.dot(reference) / (gNorm * norm) : 0;
        list[i]->cosines += cosine;
        list[i]->errors += (g - reference).norm() / norm;  // (the same sum, per interval)
        ++list[i]->count;
        totals[i] += cosine;
        totalErrors[i] += (g - reference).norm() / norm;
        ++totalCounts[i];
      }
    }
    const double loss = target >= 0 ? snap::Readout<Scalar>::bits(trainer.step(input, target)) : (trainer.step(input, target), 0.0);
    if (target >= 0) {
      lossBits += loss;
      ++lossCount;
    }
    ++step;
    if (step % config.every == 0 || step == config.steps) {
      const double referenceNorm = referenceSum.norm();
      for (std::size_t i = 1; i < list.size(); ++i) {
        Candidate& c = *list[i];
        const double sumNorm = c.sum.norm();
        const double cosSum = sumNorm > 0 && referenceNorm > 0 ? c.sum.dot(referenceSum) / (sumNorm * referenceNorm) : 0;
        const double errSum = referenceNorm > 0 ? (c.sum - referenceSum).norm() / referenceNorm : 0;
        const double n = static_cast<double>(std::max<long long>(1, c.count));
        if (csv)
          csv << step << ",\"" << c.name() << "\"," << c.cosines / n << ',' << c.errors / n << ',' << cosSum << ','
              << errSum << ',' << c.count << ',' << (text ? 0 : task.length()) << ','
              << lossBits / static_cast<double>(std::max<long long>(1, lossCount)) << '\n';
        c.cosines = c.errors = 0;
        c.count = 0;
        c.sum.setZero();
      }
      if (csv) csv.flush();
      std::printf("step %8lld  %s  loss %.3f bits\n", step, text ? "" : ("L " + std::to_string(task.length())).c_str(),
                  lossBits / static_cast<double>(std::max<long long>(1, lossCount)));
      std::fflush(stdout);
      referenceSum.setZero();
      lossBits = 0;
      lossCount = 0;
    }
    return loss;
  };

  while (step < config.steps) {
    if (text) {
      if (position + 1 >= static_cast<long long>(text->symbols.size())) {  // the end: start again from zero
        position = 0;
        trainer.resetStream(0);
        for (auto& c : list) c->reset();
      }
      input.setZero();
      input[text->symbols[static_cast<std::size_t>(position)]] = 1;
      observe(text->symbols[static_cast<std::size_t>(position + 1)]);
      ++position;
      continue;
    }
    const snap::CopySequence sequence = task.next();
    double sequenceBits = 0;
    for (Index t = 0; t < sequence.steps() && step < config.steps; ++t) {
      sequence.input(t, input);  // a one-hot symbol or delimiter, zero while recalling
      sequenceBits += observe(sequence.target(t));
    }
    trainer.endSequence();
    for (auto& c : list) c->reset();
    task.record(sequence, sequenceBits);
  }
  std::printf("against RTRL's gradient, per scored step, mean over the run:\n");
  for (std::size_t i = 1; i < list.size(); ++i) {
    const double n = static_cast<double>(std::max<long long>(1, totalCounts[i]));
    std::printf("  %-20s cosine %.4f  relative error %.3g\n", list[i]->name().c_str(), totals[i] / n,
                totalErrors[i] / n);
  }
  return 0;
}

template <class Cell>
int withTrainEngine(const Config& config) {
  if (config.train == "rtrl") return run<snap::RTRL<Cell>>(config, {});
  return run<snap::SnAp<Cell>>(config, {.n = static_cast<int>(config.trainSteps)});
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line(
      "gradient_quality",
      "Trains one cell online and measures, at every scored step, how close each approximate engine's\n"
      "gradient is to exact RTRL's on the same weights and stream (cosine, relative error), per interval.");
  line.flag("task", "copy", "copy | text");
  line.flag("text", "", "with --task text: the text file, read as one stream");
  line.flag("cell", "gru", "rnn | gru | lstm");
  line.flag("hidden", "64", "hidden units H");
  line.flag("density", "0.25", "recurrent weight density, in (0, 1]");
  line.flag("leak", "1", "with --cell rnn: alpha, in (0, 1]");
  line.flag("train", "rtrl", "the engine that trains the cell: rtrl | snap:N");
  line.flag("snap-max", "3", "compare SnAp-1 ... SnAp-N");
  line.flag("window", "16", "L of the rolling BPTT compared");
  line.flag("lr", "0.003", "Adam's learning rate");
  line.flag("clip", "1", "clip the global gradient norm to this (0: off)");
  line.flag("steps", "20000", "steps of data");
  line.flag("every", "1000", "log an interval's statistics every this many steps");
  line.flag("seed", "1", "seeds masks, weights, data and UORO's signs");
  line.flag("csv", "", "write the statistics per interval and engine to this CSV file");
  try {
    if (!line.parse(argc, argv)) return 0;
    Config config;
    config.task = line.choice("task", {"copy", "text"});
    config.text = line.text("text");
    if (config.task == "text" && config.text.empty()) throw CommandLineError{"--text: needed with --task text"};
    if (config.task == "copy" && !config.text.empty()) throw CommandLineError{"--text: only with --task text"};
    config.cell = line.choice("cell", {"rnn", "gru", "lstm"});
    config.hidden = line.integer("hidden", 1, 4096);
    config.density = line.number("density", 1e-9, 1.0);
    config.leak = line.number("leak", 1e-6, 1.0);
    if (config.cell != "rnn" && config.leak != 1) throw CommandLineError{"--leak: only for --cell rnn"};
    config.train = line.text("train");
    if (config.train != "rtrl") {
      if (config.train.rfind("snap:", 0) != 0) throw CommandLineError{"--train: expected rtrl or snap:N, got '" + config.train + "'"};
      char* end = nullptr;
      const long n = std::strtol(config.train.c_str() + 5, &end, 10);
      if (*end != '\0' || n < 1 || n > 64) throw CommandLineError{"--train: expected rtrl or snap:N (N in [1, 64]), got '" + config.train + "'"};
      config.trainSteps = n;
    }
    config.snapMax = line.integer("snap-max", 0, 16);
    config.window = line.integer("window", 1, 100000);
    config.lr = line.number("lr", 1e-12, 1e3);
    config.clip = line.number("clip", 0, 1e12);
    config.steps = line.integer("steps", 1, 1LL << 50);
    config.every = line.integer("every", 1, 1LL << 50);
    config.seed = static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62));
    config.csv = line.text("csv");
    if (config.cell == "rnn") return withTrainEngine<snap::RNN<Scalar>>(config);
    if (config.cell == "gru") return withTrainEngine<snap::GRU<Scalar>>(config);
    return withTrainEngine<snap::LSTM<Scalar>>(config);
  } catch (const CommandLineError& error) {
    std::fprintf(stderr, "gradient_quality: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "gradient_quality: %s\n", error.what());
    return 1;
  }
}
