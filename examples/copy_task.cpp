// The copy task of the SnAp paper (docs/math.md §7): trains a recurrent cell, or a stack of layers
// (--layers), online with any engine and reports the curriculum length L reached against data
// time. With --checkpoint it saves the whole run every --checkpoint-every steps of data, at the
// end, and on Ctrl-C (SIGINT) or SIGTERM; --resume continues a saved run exactly, its CSV log
// included (docs/reliability.md). --save writes the trained model as a weights file, which
// --evaluate scores on fresh sequences.
//
//   copy_task --cell gru --engine snap:2 --hidden 128 --density 0.1 --steps 3000000
//   copy_task --cell lru --layers 3 --hidden 32 --engine snap:2 --per-layer
//   copy_task --steps 3000000 --checkpoint run.npz            # Ctrl-C: saved, exits
//   copy_task --steps 3000000 --checkpoint run.npz --resume run.npz
//   copy_task --save model.npz && copy_task --evaluate model.npz

#include <snap/io/weights.hpp>
#include <snap/snap.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <limits>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "common/command_line.hpp"
#include "common/engine_flag.hpp"
#include "common/network_flags.hpp"
#include "common/output_path.hpp"

namespace {

using snap::Index;
using Clock = std::chrono::steady_clock;

struct Config {
  snap::examples::NetworkChoice network;
  snap::examples::EngineChoice engine;
  snap::AnyOptimizer optimizer;
  std::string optimizerName;
  double learningRate = 0;
  Index batch = 1;
  int threads = 1;
  long long steps = 0;
  std::uint64_t seed = 0;
  bool perSequence = false;
  double clip = 0;
  snap::NonFinitePolicy nonFinite = snap::NonFinitePolicy::Throw;
  std::string csv, checkpoint, resume, save;
  long long checkpointEvery = 0, stopAt = 0;
};

/// What --evaluate does: score a saved model on fresh sequences of each length.
struct Evaluation {
  std::string path;
  Index maxLength = 0;
  Index sequences = 0;
  std::uint64_t seed = 0;
};

/// A number as text that reads back as the same double.
std::string exactNumber(double value) {
  std::ostringstream text;
  text.precision(17);
  text << value;
  return text.str();
}

/// The flags a resumed run must repeat, as "name=value" pairs (--steps, --csv and the
/// checkpoint flags may change).
std::map<std::string, std::string> runFlags(const Config& config) {
  const snap::examples::NetworkChoice& network = config.network;
  return {{"cell", network.cell},
          {"engine", config.engine.label()},
          {"per-layer", config.engine.perLayer ? "on" : "off"},
          {"layers", std::to_string(network.layers)},
          {"leak", exactNumber(network.leak)},
          {"hidden", std::to_string(network.hidden)},
          {"density", exactNumber(network.density)},
          {"input-density", exactNumber(network.inputDensity)},
          {"masks", network.sharing == snap::MaskSharing::Shared ? "shared" : "per-gate"},
          {"optimizer", config.optimizerName},
          {"lr", exactNumber(config.learningRate)},
          {"clip", exactNumber(config.clip)},
          {"batch", std::to_string(config.batch)},
          {"seed", std::to_string(config.seed)},
          {"update", config.perSequence ? "sequence" : "every"},
          {"on-nonfinite", config.nonFinite == snap::NonFinitePolicy::Skip ? "skip" : "throw"}};
}
/// The value a flag added after checkpoints were first written has when it is not given: a
/// checkpoint without it was saved with this value.
const std::map<std::string, std::string> laterFlagDefaults{{"per-layer", "off"}, {"layers", "1"}, {"leak", "1"}};

std::string flagText(const std::map<std::string, std::string>& flags) {
  std::string text;
  for (const auto& [name, value] : flags) text += (text.empty() ? "" : " ") + name + "=" + value;
  return text;
}
std::map<std::string, std::string> parseFlagText(const std::string& text) {
  std::map<std::string, std::string> flags;
  std::istringstream in(text);
  for (std::string pair; in >> pair;) {
    const auto equals = pair.find('=');
    if (equals != std::string::npos) flags[pair.substr(0, equals)] = pair.substr(equals + 1);
  }
  return flags;
}

/// The signal that asked the run to stop (SIGINT or SIGTERM), 0 while running.
volatile std::sig_atomic_t stopSignal = 0;
extern "C" void requestStop(int signal) { stopSignal = signal; }
/// The first SIGINT or SIGTERM asks for a clean stop; the handler then resets itself, so a
/// second one ends the program at once (the last checkpoint stays intact: saves are atomic).
void installStopHandlers() {
  struct sigaction action {};
  action.sa_handler = requestStop;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
}

/// The progress line: in place on a terminal, plain lines every few seconds otherwise.
class Progress {
public:
  Progress(long long budget, long long startTime)
      : m_budget(budget), m_startTime(startTime), m_terminal(isatty(fileno(stdout)) != 0), m_start(Clock::now()) {}

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - m_start).count(); }
  /// Steps of data per second in this process.
  double rate(long long dataTime) const {
    const double now = elapsed();
    return now > 0 ? static_cast<double>(dataTime - m_startTime) / now : 0.0;
  }

  void show(long long dataTime, Index length, double recentLoss, bool force = false) {
    const double now = elapsed();
    if (!force && now - m_last < (m_terminal ? 0.25 : 5.0)) return;
    m_last = now;
    const double rate = this->rate(dataTime);
    const double left = rate > 0 ? static_cast<double>(m_budget - dataTime) / rate : 0.0;
    std::printf("%sdata time %10lld  L %3ld  loss %.3f bits  %8.0f steps/s  %5.0f s left%s", m_terminal ? "\r" : "",
                dataTime, static_cast<long>(length), recentLoss, rate, left > 0 ? left : 0.0, m_terminal ? "   " : "\n");
    std::fflush(stdout);
  }
  void finish() {
    if (m_terminal) std::printf("\n");
  }

private:
  long long m_budget, m_startTime;
  bool m_terminal;
  Clock::time_point m_start;
  double m_last = -1e9;
};

/// One stream's current sequence.
struct StreamSequence {
  snap::CopySequence sequence;
  Index t = 0;
  double lossBits = 0;
};

/// One row of the CSV log. Everything but the wall time is a function of the run's state, so
/// the rows are saved in checkpoints and a resumed run writes the log an uninterrupted run
/// writes (the wall times of rows from before the resume are kept from the file when it has them).
struct LogRow {
  long long dataTime = 0;
  Index length = 0;
  double recentLoss = 0;
  long long sequences = 0, updates = 0;
  std::optional<double> wallSeconds;
  bool last = false;  // the row a process writes when it stops: not part of the run's state
};

constexpr const char* csvHeader = "data_time,length,recent_loss_bits,wall_seconds,sequences,updates";

/// The CSV text of a row, as the log writes it.
std::string csvLine(const LogRow& row) {
  std::ostringstream line;
  line << row.dataTime << ',' << row.length << ',' << row.recentLoss << ',';
  if (row.wallSeconds) line << *row.wallSeconds;
  line << ',' << row.sequences << ',' << row.updates << '\n';
  return line.str();
}

/// The log's rows as the checkpoint array example/log (N × 5, float64: integers below 2^53 are
/// exact) and the data time of the next scheduled row, example/next_log.
void saveLog(snap::NpzArchive& archive, const std::vector<LogRow>& rows, long long nextRow) {
  std::vector<const LogRow*> kept;
  for (const LogRow& row : rows)
    if (!row.last) kept.push_back(&row);
  snap::Matrix<double> table(static_cast<Index>(kept.size()), 5);
  for (std::size_t i = 0; i < kept.size(); ++i)
    table.row(static_cast<Index>(i)) << static_cast<double>(kept[i]->dataTime), static_cast<double>(kept[i]->length),
        kept[i]->recentLoss, static_cast<double>(kept[i]->sequences), static_cast<double>(kept[i]->updates);
  snap::putArray(archive, "example/log", table);
  snap::putScalar<std::int64_t>(archive, "example/next_log", nextRow);
}
std::vector<LogRow> loadLog(const snap::NpzArchive& archive, long long dataTime, long long& nextRow) {
  const snap::NpyArray& stored = snap::findArray(archive, "example/log");
  if (stored.shape.size() != 2 || stored.shape[1] != 5 || stored.shape[0] < 1 || stored.shape[0] > (1 << 24))
    snap::detail::fail<snap::FormatError>("array 'example/log'", "shape (N, 5) with 1 <= N <= 2^24",
                                          snap::detail::describeShape(stored.shape));
  const auto table = snap::readMatrix<snap::RowMatrix<double>>(archive, "example/log", stored.shape[0], 5);
  std::vector<LogRow> rows;
  const auto whole = [&](double value, double high) {
    if (!(value >= 0 && value <= high && value == std::floor(value)))
      snap::detail::fail<snap::FormatError>("array 'example/log'", "counts in [0, " + snap::detail::describe(high) + "]",
                                            value);
    return static_cast<long long>(value);
  };
  for (Index i = 0; i < table.rows(); ++i) {
    if (!(table(i, 2) >= 0 && table(i, 2) <= 1e300))
      snap::detail::fail<snap::FormatError>("array 'example/log'", "recent losses in [0, 1e300]", table(i, 2));
    rows.push_back({whole(table(i, 0), static_cast<double>(dataTime)), static_cast<Index>(whole(table(i, 1), 1e9)),
                    table(i, 2), whole(table(i, 3), 9e15), whole(table(i, 4), 9e15), std::nullopt});
  }
  nextRow = snap::readScalar<std::int64_t>(archive, "example/next_log", 0, std::numeric_limits<std::int64_t>::max() / 2);
  return rows;
}

/// The wall times of the rows of an existing CSV log that agree with `rows` (same text but
/// the wall time): a resumed run keeps them; rows lost from the file get an empty wall time.
void recoverWallTimes(const std::string& path, std::vector<LogRow>& rows) {
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line) || line != csvHeader) return;
  for (std::size_t i = 0; i < rows.size() && std::getline(in, line); ++i) {
    std::vector<std::string> fields;
    std::istringstream cells(line);
    for (std::string cell; std::getline(cells, cell, ',');) fields.push_back(cell);
    LogRow candidate = rows[i];
    if (fields.size() != 6) return;
    char* end = nullptr;
    const double wall = std::strtod(fields[3].c_str(), &end);
    if (fields[3].empty() || *end != '\0') return;
    candidate.wallSeconds = wall;
    if (csvLine(candidate) != line + "\n") return;
    rows[i].wallSeconds = wall;
  }
}

/// The in-flight sequences, as arrays of the checkpoint: example/stream<b>/symbols, t, loss_bits.
void saveStreams(snap::NpzArchive& archive, const std::vector<StreamSequence>& streams) {
  for (std::size_t b = 0; b < streams.size(); ++b) {
    const std::string prefix = "example/stream" + std::to_string(b) + "/";
    const std::vector<int>& symbols = streams[b].sequence.symbols();
    snap::Vector<std::int64_t> stored(static_cast<Index>(symbols.size()));
    for (std::size_t i = 0; i < symbols.size(); ++i) stored[static_cast<Index>(i)] = symbols[i];
    snap::putArray(archive, prefix + "symbols", stored);
    snap::putScalar<std::int64_t>(archive, prefix + "t", streams[b].t);
    snap::putScalar<double>(archive, prefix + "loss_bits", streams[b].lossBits);
  }
}
std::vector<StreamSequence> loadStreams(const snap::NpzArchive& archive, Index batch, int alphabet) {
  std::vector<StreamSequence> streams;
  for (Index b = 0; b < batch; ++b) {
    const std::string prefix = "example/stream" + std::to_string(b) + "/";
    const snap::NpyArray& stored = snap::findArray(archive, prefix + "symbols");
    const std::int64_t length = stored.shape.size() == 1 ? stored.shape[0] : 0;
    std::vector<int> symbols;
    for (std::int64_t symbol : snap::readValues<std::int64_t>(archive, prefix + "symbols", {length})) {
      if (symbol < 0 || symbol >= alphabet)
        snap::detail::fail<snap::FormatError>("array '" + prefix + "symbols'", "symbols of the copy task", symbol);
      symbols.push_back(static_cast<int>(symbol));
    }
    if (symbols.empty()) snap::detail::fail<snap::FormatError>("array '" + prefix + "symbols'", "a sequence", "none");
    StreamSequence stream{snap::CopySequence(std::move(symbols), alphabet)};
    stream.t = snap::readScalar<std::int64_t>(archive, prefix + "t", 0, stream.sequence.steps() - 1);
    stream.lossBits = snap::readScalar<double>(archive, prefix + "loss_bits", 0.0, 1e300);
    streams.push_back(std::move(stream));
  }
  return streams;
}

/// A published result of this program: the L that docs/results.md (mean and range over seeds 1–3)
/// or docs/copy-task.md (seed 1) reports for a configuration run with the other flags at their
/// defaults (Adam, --lr 0.003, --clip 1, shared masks, dense inputs, batch 1, online updates).
/// Keep in step with those pages when they are regenerated.
struct PublishedResult {
  const char* cell;
  const char* engine;
  Index hidden;
  double density;
  long long steps;
  const char* length;  // as the page prints it
  const char* page;
};
constexpr PublishedResult publishedResults[] = {
    {"gru", "snap:2", 128, 0.1, 1200000, "10", "docs/copy-task.md (seed 1)"},
    {"gru", "snap:1", 128, 0.1, 1200000, "8", "docs/copy-task.md (seed 1)"},
    {"gru", "uoro", 128, 0.1, 1200000, "4", "docs/copy-task.md (seed 1)"},
    {"gru", "bptt:16", 128, 0.1, 1200000, "12", "docs/copy-task.md (seed 1)"},
    {"gru", "bptt:4", 64, 1, 600000, "5.0 (5-5)", "docs/results.md (seeds 1-3)"},
    {"gru", "bptt:16", 64, 1, 600000, "11.7 (11-12)", "docs/results.md (seeds 1-3)"},
    {"gru", "uoro", 64, 1, 600000, "3.3 (3-4)", "docs/results.md (seeds 1-3)"},
    {"gru", "snap:1", 64, 1, 600000, "7.7 (7-8)", "docs/results.md (seeds 1-3)"},
    {"gru", "bptt:4", 64, 0.25, 600000, "6.3 (6-7)", "docs/results.md (seeds 1-3)"},
    {"gru", "bptt:16", 64, 0.25, 600000, "12.3 (12-13)", "docs/results.md (seeds 1-3)"},
    {"gru", "uoro", 64, 0.25, 600000, "4.3 (4-5)", "docs/results.md (seeds 1-3)"},
    {"gru", "snap:1", 64, 0.25, 600000, "8.0 (8-8)", "docs/results.md (seeds 1-3)"},
    {"gru", "snap:2", 64, 0.25, 600000, "9.3 (9-10)", "docs/results.md (seeds 1-3)"},
    {"gru", "snap:3", 64, 0.25, 600000, "10.0 (9-11)", "docs/results.md (seeds 1-3)"},
    {"gru", "rtrl", 64, 0.25, 600000, "9.7 (9-10)", "docs/results.md (seeds 1-3)"},
};

/// The summary's last lines: the L this configuration reached where the docs report it, and
/// what to try next.
void printContext(const Config& config, Index reached) {
  const snap::examples::NetworkChoice& network = config.network;
  const bool defaults = config.optimizerName == "adam" && config.learningRate == 0.003 && config.clip == 1 &&
                        network.sharing == snap::MaskSharing::Shared && network.inputDensity == 1 && config.batch == 1 &&
                        !config.perSequence && network.layers == 1 && network.leak == 1 && !config.engine.perLayer;
  for (const PublishedResult& result : publishedResults) {
    if (!defaults || network.cell != result.cell || config.engine.label() != result.engine ||
        network.hidden != result.hidden || network.density != result.density)
      continue;
    std::printf("for comparison: %s reports L = %s for this configuration after %lld steps of data", result.page,
                result.length, result.steps);
    if (config.steps != result.steps) std::printf(" (this run: %lld steps)", config.steps);
    std::printf("\n");
    return;
  }
  std::printf("for comparison: no published run of this configuration; docs/results.md has GRU H = 64 at densities 1 "
              "and 0.25, docs/copy-task.md the defaults (H = 128, density 0.1)%s\n",
              reached <= 3 ? "; L <= 3 suggests too few steps or a learning rate off (--lr)" : "");
}

/// Scores a model read from a weights file (copy_task --save) on fresh sequences of each length
/// 1..maxLength: the fraction of recalled symbols that are right and the loss per recall step.
template <class Cell>
int evaluate(const Evaluation& evaluation, const Cell& cell, snap::Readout<float>& readout, const std::string& label) {
  const Index alphabet = readout.outputs();
  if (cell.inputSize() != alphabet + 1)
    throw snap::FormatError("snap: --evaluate " + evaluation.path + ": expected a copy-task model (inputs = classes + 1), got " +
                            std::to_string(cell.inputSize()) + " inputs and " + std::to_string(alphabet) + " classes");
  std::printf("%s: %s, H = %ld, %ld parameters; %ld fresh sequences per length (seed %llu)\n", evaluation.path.c_str(),
              label.c_str(), static_cast<long>(cell.outputSize()), static_cast<long>(cell.parameterCount()),
              static_cast<long>(evaluation.sequences), static_cast<unsigned long long>(evaluation.seed));
  std::printf("%4s  %9s  %16s\n", "L", "accuracy", "loss (bits/step)");
  snap::Random random(evaluation.seed);
  snap::Vector<float> state(cell.stateSize()), next(cell.stateSize()), input(cell.inputSize()), output(cell.outputSize());
  snap::StepCache<float> cache = cell.makeCache();
  Index solved = 0;
  for (Index length = 1; length <= evaluation.maxLength; ++length) {
    long long right = 0;
    double bits = 0;
    for (Index n = 0; n < evaluation.sequences; ++n) {
      std::vector<int> symbols(static_cast<std::size_t>(length));
      for (int& symbol : symbols) symbol = static_cast<int>(random.below(static_cast<std::uint64_t>(alphabet)));
      const snap::CopySequence sequence(std::move(symbols), static_cast<int>(alphabet));
      state.setZero();
      for (Index t = 0; t < sequence.steps(); ++t) {
        sequence.input(t, input);
        cell.forward(input, state, next, cache);
        state.swap(next);
        const int target = sequence.target(t);
        if (target < 0) continue;
        cell.output(cache, state, output);
        const snap::Vector<float>& p = readout.predict(output);
        Index guess = 0;
        p.maxCoeff(&guess);
        right += guess == target ? 1 : 0;
        bits -= std::log2(std::max(static_cast<double>(p[target]), 1e-300));
      }
    }
    const double recalls = static_cast<double>(length * evaluation.sequences);
    const double loss = bits / recalls;
    // The curriculum's own criterion of a length learned (CopyTaskOptions::threshold).
    const bool learned = loss < snap::CopyTaskOptions{}.threshold;
    if (learned && solved == length - 1) solved = length;
    std::printf("%4ld  %8.2f%%  %16.3f%s\n", static_cast<long>(length), 100.0 * static_cast<double>(right) / recalls, loss,
                learned ? "  learned" : "");
  }
  std::printf("learned every length up to L = %ld (loss below %.2f bits per recall step, the curriculum's threshold)\n",
              static_cast<long>(solved), snap::CopyTaskOptions{}.threshold);
  return 0;
}

/// A saved model's cell of type Cell (a gated cell or an LRU), stored under `prefix` (a stack's
/// layer<l>/), built with the file's sizes and configuration; loadWeights() then sets its values
/// and masks and checks everything else.
template <class Cell>
Cell savedCell(const snap::NpzArchive& file, const std::string& prefix) {
  const auto extent = [&](const std::string& name, std::size_t axis) {
    const snap::NpyArray& array = snap::findArray(file, prefix + name);
    if (array.shape.size() != 2 || array.shape[axis] < 1)
      snap::detail::fail<snap::FormatError>(snap::detail::arrayArgument(prefix + name), "a matrix",
                                            snap::detail::describeShape(array.shape));
    return static_cast<Index>(array.shape[axis]);
  };
  if constexpr (std::is_same_v<Cell, snap::LRU<float>>) {
    const auto flag = [&](const char* name, std::int64_t most) {
      return snap::readScalar<std::int64_t>(file, prefix + name, 0, most);
    };
    return Cell(extent("B_re", 1), extent("B_re", 0),
                {.outputSize = flag("output_size", 1 << 30), .skip = flag("skip", 1) == 1,
                 .activation = static_cast<snap::LRUActivation>(flag("activation", 2))});
  } else if constexpr (std::is_same_v<Cell, snap::RNN<float>>) {
    const double leak = file.count(prefix + "leak") != 0 ? snap::readScalar<double>(file, prefix + "leak", 1e-9, 1.0) : 1.0;
    return Cell(extent("weight_ih", 1), extent("weight_hh", 1), {}, {.leak = leak});
  } else {
    return Cell(extent("weight_ih", 1), extent("weight_hh", 1));
  }
}

/// Calls run(cell, label) with the model of the weights file `file` (read from `path`): an rnn,
/// gru, lstm, lru or a stack of them.
template <class Run>
int withSavedModel(const snap::NpzArchive& file, const std::string& path, Run&& run) {
  const std::string type = snap::readText(file, "cell", 64);
  const auto single = [&](const std::string& name, const std::string& prefix, auto&& use) {
    if (name == "rnn") return use(savedCell<snap::RNN<float>>(file, prefix));
    if (name == "gru") return use(savedCell<snap::GRU<float>>(file, prefix));
    if (name == "lstm") return use(savedCell<snap::LSTM<float>>(file, prefix));
    if (name == "lru") return use(savedCell<snap::LRU<float>>(file, prefix));
    throw snap::FormatError("snap: --evaluate " + path + ": expected an rnn, gru, lstm, lru or stack model, got '" +
                            name + "'" + (prefix.empty() ? "" : " in " + prefix));
  };
  if (type != "stack") return single(type, "", [&](auto cell) { return run(cell, type); });
  const auto count = snap::readScalar<std::int64_t>(file, "layers", 1, 1000);
  std::vector<snap::Layer<float>> layers;
  std::string names;
  for (std::int64_t l = 0; l < count; ++l) {
    const std::string prefix = "layer" + std::to_string(l) + "/", name = snap::readText(file, prefix + "cell", 64);
    single(name, prefix, [&](auto cell) {
      layers.emplace_back(std::move(cell));
      return 0;
    });
    names += (names.empty() ? "" : ", ") + name;
  }
  return run(snap::Stack<float>(std::move(layers)), "stack of " + std::to_string(count) + " layers (" + names + ")");
}

int evaluateFile(const Evaluation& evaluation) {
  const snap::NpzArchive file = snap::loadNpz(evaluation.path, "--evaluate");
  // The classes are the readout's rows (readWeightsInfo() reports them for the gated cells only).
  const auto weight = file.find("readout_weight");
  if (weight == file.end() || weight->second.shape.size() != 2 || weight->second.shape[0] < 2)
    throw snap::FormatError("snap: --evaluate " + evaluation.path + ": expected a model with a readout, got none");
  const auto classes = static_cast<Index>(weight->second.shape[0]);
  return withSavedModel(file, evaluation.path, [&](auto cell, const std::string& label) {
    snap::Readout<float> readout(cell.outputSize(), classes);
    snap::loadWeights(evaluation.path, cell, readout);
    return evaluate(evaluation, cell, readout, label);
  });
}

template <class Engine>
int train(const Config& config, const typename Engine::Options& engineOptions) {
  using Cell = typename Engine::CellType;
  snap::CopyTask task({.seed = config.seed});
  Cell cell = snap::examples::makeNetwork<Cell>(config.network, task.inputSize());
  snap::Readout<float> readout(cell.outputSize(), task.outputSize(), config.seed + 1, config.engine.readoutOptions());
  const bool truncated = config.engine.name == "bptt" && config.engine.steps > 0;
  const snap::TrainerOptions options{
      .batch = config.batch,
      .threads = config.threads,
      .schedule = config.perSequence ? snap::UpdateSchedule::PerSequence : snap::UpdateSchedule::Online,
      .updateEvery = truncated && !config.perSequence ? config.engine.steps : 1,
      .clipNorm = config.clip,
      .nonFinite = config.nonFinite};
  snap::Trainer<Engine> trainer(cell, readout, config.optimizer, options, engineOptions);

  // The streams' sequences: new ones, or those of the checkpoint with everything else.
  std::vector<StreamSequence> streams;
  std::optional<snap::NpzArchive> resumed;
  if (config.resume.empty()) {
    for (Index b = 0; b < config.batch; ++b) streams.push_back({task.next()});
  } else {
    const snap::NpzArchive& archive = resumed.emplace(snap::readCheckpoint(config.resume));
    const auto saved = parseFlagText(snap::readText(archive, "example/flags"));
    std::string differences;
    for (const auto& [name, value] : runFlags(config)) {
      const auto later = laterFlagDefaults.find(name);
      if (saved.count(name) == 0 && later != laterFlagDefaults.end() && later->second == value) continue;
      if (saved.count(name) == 0 || saved.at(name) != value)
        differences += "\n  --" + name + " " + (saved.count(name) != 0 ? saved.at(name) : "(none)") +
                       " in the checkpoint, --" + name + " " + value + " here";
    }
    if (!differences.empty())
      throw snap::examples::CommandLineError{"--resume " + config.resume +
                                             ": the run was saved with other flags (give the same ones; only --steps, "
                                             "--csv and the checkpoint flags may change):" + differences};
    streams = loadStreams(archive, config.batch, task.options().alphabet);
    snap::restoreCheckpoint(archive, trainer, &task);
    std::printf("resumed %s at data time %lld (L = %ld, %lld updates)\n", config.resume.c_str(), task.dataTime(),
                static_cast<long>(task.length()), trainer.updates());
  }
  // The log: rows at the start, at every rise of L, about every 1/200 of the budget and at the
  // end; kept in memory and in checkpoints, and written to --csv as they come.
  std::vector<LogRow> rows;
  long long nextRow = 0;
  if (resumed) rows = loadLog(*resumed, task.dataTime(), nextRow);
  auto saveCheckpoint = [&] {
    snap::NpzArchive extra;
    snap::putText(extra, "example/flags", flagText(runFlags(config)));
    saveStreams(extra, streams);
    saveLog(extra, rows, nextRow);
    snap::saveCheckpoint(config.checkpoint, trainer, &task, std::move(extra));
  };

  std::unique_ptr<std::ofstream> csv;
  double wallOffset = 0;  // wall seconds of the run before this process, from the log's last row
  if (!config.csv.empty()) {
    if (resumed) recoverWallTimes(config.csv, rows);
    csv = std::make_unique<std::ofstream>(config.csv, std::ios::trunc);
    if (!*csv) throw snap::Error("snap: --csv: cannot open '" + config.csv + "' for writing");
    *csv << csvHeader << '\n';
    for (const LogRow& row : rows) *csv << csvLine(row);
    csv->flush();
  }
  if (!rows.empty() && rows.back().wallSeconds) wallOffset = *rows.back().wallSeconds;
  Progress progress(config.steps, task.dataTime());
  const long long rowEvery = std::max<long long>(1, config.steps / 200);
  auto log = [&](bool last = false) {
    rows.push_back({task.dataTime(), task.length(), task.curriculum().recentLoss(), task.sequences(),
                    trainer.updates(), wallOffset + progress.elapsed(), last});
    if (csv) {
      *csv << csvLine(rows.back());
      csv->flush();  // rows are few; each reaches the file as it is logged
    }
  };
  if (!resumed) log();

  const std::string threads = config.threads > 1 ? " on " + std::to_string(config.threads) + " threads" : "";
  std::printf("copy task: %s, %s, %s, %ld parameters, batch %ld%s, %s updates\n", config.network.label().c_str(),
              config.engine.description().c_str(), config.network.shape().c_str(),
              static_cast<long>(cell.parameterCount()), static_cast<long>(config.batch), threads.c_str(),
              config.perSequence ? "per-sequence" : "online");
  // The batch's inputs (one column per stream) and targets (-1: unscored) of a step.
  snap::Matrix<float> inputs = snap::Matrix<float>::Zero(task.inputSize(), config.batch);
  std::vector<Index> targets(static_cast<std::size_t>(config.batch), -1);
  auto finishSequence = [&](StreamSequence& stream) {
    const bool rose = task.record(stream.sequence, stream.lossBits);
    if (rose || task.dataTime() >= nextRow) {
      log();
      nextRow = task.dataTime() + rowEvery;
    }
    stream = {task.next()};
  };

  const bool checkpointing = !config.checkpoint.empty();
  long long nextCheckpoint = config.checkpointEvery > 0 ? task.dataTime() + config.checkpointEvery : -1;
  installStopHandlers();
  const auto stopRequested = [&] { return stopSignal != 0 || (config.stopAt > 0 && task.dataTime() >= config.stopAt); };
  while (task.dataTime() < config.steps && !stopRequested()) {
    if (!config.perSequence) {
      // Online: every stream advances one step; a finished stream starts a new sequence.
      for (Index b = 0; b < config.batch; ++b) {
        const StreamSequence& stream = streams[static_cast<std::size_t>(b)];
        auto column = inputs.col(b);
        stream.sequence.input(stream.t, column);
        targets[static_cast<std::size_t>(b)] = stream.sequence.target(stream.t);
      }
      trainer.observe(inputs, targets);
      for (Index b = 0; b < config.batch; ++b) {
        StreamSequence& stream = streams[static_cast<std::size_t>(b)];
        stream.lossBits += snap::Readout<float>::bits(trainer.losses()[b]);
        if (++stream.t == stream.sequence.steps()) {
          trainer.resetStream(b);
          finishSequence(stream);
        }
      }
      trainer.endStep();
    } else {
      // Per sequence: the streams run their sequences side by side, then one update. A stream
      // whose sequence has ended steps on zero inputs, unscored: it adds nothing to the gradient.
      Index longest = 0;
      for (const auto& stream : streams) longest = std::max(longest, stream.sequence.steps());
      for (Index t = 0; t < longest; ++t) {
        for (Index b = 0; b < config.batch; ++b) {
          const StreamSequence& stream = streams[static_cast<std::size_t>(b)];
          auto column = inputs.col(b);
          const bool running = t < stream.sequence.steps();
          if (running) stream.sequence.input(t, column); else column.setZero();
          targets[static_cast<std::size_t>(b)] = running ? stream.sequence.target(t) : -1;
        }
        trainer.observe(inputs, targets);
        for (Index b = 0; b < config.batch; ++b)
          streams[static_cast<std::size_t>(b)].lossBits += snap::Readout<float>::bits(trainer.losses()[b]);
        trainer.endStep();
      }
      trainer.endSequence();
      for (auto& stream : streams) finishSequence(stream);
    }
    if (checkpointing && nextCheckpoint >= 0 && task.dataTime() >= nextCheckpoint) {
      saveCheckpoint();
      nextCheckpoint = task.dataTime() + config.checkpointEvery;
    }
    progress.show(task.dataTime(), task.length(), task.curriculum().recentLoss());
  }
  progress.show(task.dataTime(), task.length(), task.curriculum().recentLoss(), true);
  progress.finish();
  if (checkpointing) saveCheckpoint();
  log(true);
  if (!config.save.empty()) snap::saveWeights(config.save, cell, readout);
  if (stopRequested() && task.dataTime() < config.steps) {
    const int signal = stopSignal;
    const std::string saved = checkpointing ? "checkpoint saved to " + config.checkpoint + " (continue with --resume " +
                                                  config.checkpoint + ")"
                                            : "nothing saved (no --checkpoint)";
    std::printf("copy_task: stopped %s at data time %lld; %s\n",
                signal == 0 ? "by --stop-at" : signal == SIGINT ? "by SIGINT" : "by SIGTERM", task.dataTime(),
                saved.c_str());
    return signal == 0 ? 0 : 128 + signal;
  }
  const double seconds = progress.elapsed();
  std::printf("reached L = %ld after %lld steps of data (%lld sequences, %lld updates) in %.1f s: %.0f steps/s\n",
              static_cast<long>(task.length()), task.dataTime(), task.sequences(), trainer.updates(), seconds,
              progress.rate(task.dataTime()));
  std::printf("non-finite values: %lld steps and %lld updates skipped (--on-nonfinite %s)\n", trainer.skippedSteps(),
              trainer.skippedUpdates(), config.nonFinite == snap::NonFinitePolicy::Skip ? "skip" : "throw");
  const std::string& engine = config.engine.name;
  std::printf("%s per stream: %.1f KiB\n",
              engine == "bptt" ? "stored history (BPTT)" : engine == "rolling-bptt" ? "stored window (rolling BPTT)" : "engine memory",
              static_cast<double>(trainer.engine().bytes()) / static_cast<double>(config.batch) / 1024.0);
  if (checkpointing) std::printf("checkpoint: %s\n", config.checkpoint.c_str());
  if (!config.save.empty())
    std::printf("model: %s (score it with: copy_task --evaluate %s)\n", config.save.c_str(), config.save.c_str());
  printContext(config, task.length());
  return 0;
}

template <class Cell>
int dispatchEngine(const Config& config) {
  return snap::examples::withEngine<Cell>(config.engine, config.seed + 2, [&](auto engine, const auto& options) {
    return train<typename decltype(engine)::type>(config, options);
  });
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line(
      "copy_task", std::string("Trains a sparse recurrent cell, or a stack of layers, online on the copy task (docs/math.md §7)\n"
                               "and reports the curriculum length L reached against data time.\n\n") +
                       snap::examples::networkHelp + "\n" + snap::examples::engineHelp);
  line.flag("cell", "gru", snap::examples::cellHelp);
  line.flag("layers", "1", snap::examples::layersHelp);
  line.flag("engine", "snap:2", snap::examples::engineValues(true));
  line.toggle("per-layer", snap::examples::perLayerHelp);
  line.flag("hidden", "128", "hidden units H (per layer; an LRU's complex units N and outputs)");
  line.flag("density", "0.1", "recurrent weight density, in (0, 1] (gated cells)");
  line.flag("input-density", "1", "input weight density, in (0, 1] (every layer's; an LRU's B)");
  line.flag("masks", "shared", "shared (one mask for all gate blocks) | per-gate");
  line.flag("leak", "1", snap::examples::leakHelp);
  line.flag("optimizer", "adam", "adam | sgd");
  line.flag("lr", "0.003", "learning rate");
  line.flag("clip", "1", "clip the global gradient norm to this (0: off)");
  line.flag("batch", "1", "B: independent streams sharing the weights, stepped together");
  line.flag("threads", "1", "T: threads sharing each step's work (results are the same for every T)");
  line.flag("steps", "1200000", "data-time budget: input steps to consume");
  line.flag("seed", "1", "seeds masks, weights, data and UORO's signs");
  line.flag("update", "every", "every (online; per window for bptt:T) | sequence");
  line.flag("csv", "", "write L against data time to this CSV file");
  line.flag("on-nonfinite", "throw", "throw (stop with an error) | skip (skip the step or update and count it)");
  line.flag("checkpoint", "", "save the whole run to this .npz file (at the end, on Ctrl-C/SIGTERM, and every M steps)");
  line.flag("checkpoint-every", "100000", "M: steps of data between checkpoints (0: only at the end and on a signal)");
  line.flag("resume", "", "continue the run saved in this checkpoint (with the same flags)");
  line.flag("stop-at", "0", "stop at this data time as on SIGTERM, with a checkpoint (0: run the whole budget)");
  line.flag("save", "", "save the trained model (cell and readout) to this weights file at the end");
  line.flag("evaluate", "", "instead of training, score the model of this weights file (--save) per length L");
  line.flag("eval-lengths", "20", "with --evaluate: the lengths 1..N to score");
  line.flag("eval-sequences", "200", "with --evaluate: fresh sequences per length");
  try {
    if (!line.parse(argc, argv)) return 0;
    if (!line.text("evaluate").empty()) {
      const Evaluation evaluation{line.text("evaluate"), line.integer("eval-lengths", 1, 10000),
                                  line.integer("eval-sequences", 1, 1000000),
                                  static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62))};
      return evaluateFile(evaluation);
    }
    Config config;
    snap::examples::NetworkChoice& network = config.network;
    network.cell = line.choice("cell", snap::examples::cellValues);
    network.layers = line.integer("layers", 1, 64);
    config.engine = snap::examples::parseEngine(line.text("engine"), true);
    network.hidden = line.integer("hidden", 1, 100000);
    network.density = line.number("density", 1e-9, 1.0);
    network.inputDensity = line.number("input-density", 1e-9, 1.0);
    network.sharing = line.choice("masks", {"shared", "per-gate"}) == "shared" ? snap::MaskSharing::Shared
                                                                               : snap::MaskSharing::PerGate;
    network.leak = line.number("leak", 1e-6, 1.0);
    snap::examples::checkNetwork(network, line);
    snap::examples::checkEngineFits(config.engine, network.cell, network.layers, line.on("per-layer"));
    const double lr = line.number("lr", 1e-12, 1e3);
    config.learningRate = lr;
    config.optimizerName = line.choice("optimizer", {"adam", "sgd"});
    config.optimizer = config.optimizerName == "adam" ? snap::AnyOptimizer(snap::Adam{.learningRate = lr})
                                                      : snap::AnyOptimizer(snap::SGD{.learningRate = lr});
    config.clip = line.number("clip", 0, 1e12);
    config.batch = line.integer("batch", 1, 4096);
    config.threads = static_cast<int>(line.integer("threads", 1, 256));
    config.steps = line.integer("steps", 1, 1000000000000LL);
    config.seed = static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62));
    network.seed = config.seed;
    config.perSequence = line.choice("update", {"every", "sequence"}) == "sequence";
    config.csv = line.text("csv");
    config.nonFinite = line.choice("on-nonfinite", {"throw", "skip"}) == "skip" ? snap::NonFinitePolicy::Skip
                                                                                : snap::NonFinitePolicy::Throw;
    config.checkpoint = line.text("checkpoint");
    config.checkpointEvery = line.integer("checkpoint-every", 0, 1000000000000LL);
    config.resume = line.text("resume");
    config.stopAt = line.integer("stop-at", 0, 1000000000000LL);
    config.save = line.text("save");
    // Where the run will write, checked before it trains.
    if (!config.checkpoint.empty()) snap::examples::requireWritable("checkpoint", config.checkpoint);
    if (!config.csv.empty()) snap::examples::requireWritable("csv", config.csv);
    if (!config.save.empty()) snap::examples::requireWritable("save", config.save);
    if (config.engine.name == "bptt" && config.engine.steps == 0 && !config.perSequence)
      throw snap::examples::CommandLineError{
          "--engine bptt (untruncated) needs --update sequence; use bptt:T for online updates"};
    return snap::examples::withNetwork<float>(network, [&](auto cell) {
      return dispatchEngine<typename decltype(cell)::type>(config);
    });
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "copy_task: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "copy_task: %s\n", error.what());
    return 1;
  }
}
