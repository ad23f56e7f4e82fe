// The copy task of the SnAp paper (docs/math.md §7): trains a recurrent cell online with any engine
// and reports the curriculum length L reached against data time. With --checkpoint it saves
// the whole run every --checkpoint-every steps of data, at the end, and on Ctrl-C (SIGINT) or
// SIGTERM; --resume continues a saved run exactly (docs/reliability.md).
//
//   copy_task --cell gru --engine snap:2 --hidden 128 --density 0.1 --steps 3000000
//   copy_task --steps 3000000 --checkpoint run.npz            # Ctrl-C: saved, exits
//   copy_task --steps 3000000 --checkpoint run.npz --resume run.npz

#include <snap/snap.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>

#include "common/command_line.hpp"

namespace {

using snap::Index;
using Clock = std::chrono::steady_clock;

struct Config {
  std::string cell, engine;
  int engineSteps = 0;  // T of bptt:T (0: untruncated), n of snap:n
  Index hidden = 0;
  double density = 1, inputDensity = 1;
  snap::MaskSharing sharing = snap::MaskSharing::Shared;
  snap::AnyOptimizer optimizer;
  std::string optimizerName;
  double learningRate = 0;
  Index batch = 1;
  long long steps = 0;
  std::uint64_t seed = 0;
  bool perSequence = false;
  double clip = 0;
  snap::NonFinitePolicy nonFinite = snap::NonFinitePolicy::Throw;
  std::string csv, checkpoint, resume;
  long long checkpointEvery = 0;
};

/// The engine as given on the command line: bptt:T, snap:n, rtrl, uoro or bptt.
std::string engineLabel(const Config& config) {
  return config.engine + (config.engineSteps > 0 ? ":" + std::to_string(config.engineSteps) : "");
}

/// The flags a resumed run must repeat, as "name=value" pairs (--steps, --csv and the
/// checkpoint flags may change).
std::map<std::string, std::string> runFlags(const Config& config) {
  auto number = [](double value) {
    std::ostringstream text;
    text.precision(17);
    text << value;
    return text.str();
  };
  return {{"cell", config.cell},
          {"engine", engineLabel(config)},
          {"hidden", std::to_string(config.hidden)},
          {"density", number(config.density)},
          {"input-density", number(config.inputDensity)},
          {"masks", config.sharing == snap::MaskSharing::Shared ? "shared" : "per-gate"},
          {"optimizer", config.optimizerName},
          {"lr", number(config.learningRate)},
          {"clip", number(config.clip)},
          {"batch", std::to_string(config.batch)},
          {"seed", std::to_string(config.seed)},
          {"update", config.perSequence ? "sequence" : "every"},
          {"on-nonfinite", config.nonFinite == snap::NonFinitePolicy::Skip ? "skip" : "throw"}};
}
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

template <class Engine>
int train(const Config& config, const typename Engine::Options& engineOptions) {
  using Cell = typename Engine::CellType;
  snap::CopyTask task({.seed = config.seed});
  Cell cell(task.inputSize(), config.hidden,
            {.inputDensity = config.inputDensity, .recurrentDensity = config.density, .maskSharing = config.sharing,
             .seed = config.seed});
  snap::Readout<float> readout(config.hidden, task.outputSize(), config.seed + 1);
  const bool truncated = config.engine == "bptt" && config.engineSteps > 0;
  const snap::TrainerOptions options{
      .batch = config.batch,
      .schedule = config.perSequence ? snap::UpdateSchedule::PerSequence : snap::UpdateSchedule::Online,
      .updateEvery = truncated && !config.perSequence ? config.engineSteps : 1,
      .clipNorm = config.clip,
      .nonFinite = config.nonFinite};
  snap::Trainer<Engine> trainer(cell, readout, config.optimizer, options, engineOptions);

  // The streams' sequences: new ones, or those of the checkpoint with everything else.
  std::vector<StreamSequence> streams;
  if (config.resume.empty()) {
    for (Index b = 0; b < config.batch; ++b) streams.push_back({task.next()});
  } else {
    const snap::NpzArchive archive = snap::readCheckpoint(config.resume);
    const auto saved = parseFlagText(snap::readText(archive, "example/flags"));
    std::string differences;
    for (const auto& [name, value] : runFlags(config))
      if (saved.count(name) == 0 || saved.at(name) != value)
        differences += "\n  --" + name + " " + (saved.count(name) != 0 ? saved.at(name) : "(none)") +
                       " in the checkpoint, --" + name + " " + value + " here";
    if (!differences.empty())
      throw snap::examples::CommandLineError{"--resume " + config.resume +
                                             ": the run was saved with other flags (give the same ones; only --steps, "
                                             "--csv and the checkpoint flags may change):" + differences};
    streams = loadStreams(archive, config.batch, task.options().alphabet);
    snap::restoreCheckpoint(archive, trainer, &task);
    std::printf("resumed %s at data time %lld (L = %ld, %lld updates)\n", config.resume.c_str(), task.dataTime(),
                static_cast<long>(task.length()), trainer.updates());
  }
  auto saveCheckpoint = [&] {
    snap::NpzArchive extra;
    snap::putText(extra, "example/flags", flagText(runFlags(config)));
    saveStreams(extra, streams);
    snap::saveCheckpoint(config.checkpoint, trainer, &task, std::move(extra));
  };

  std::unique_ptr<std::ofstream> csv;
  if (!config.csv.empty()) {
    const bool append = !config.resume.empty() && std::ifstream(config.csv).good();
    csv = std::make_unique<std::ofstream>(config.csv, append ? std::ios::app : std::ios::trunc);
    if (!*csv) throw snap::Error("snap: --csv: cannot open '" + config.csv + "' for writing");
    if (!append) *csv << "data_time,length,recent_loss_bits,wall_seconds,sequences,updates\n";
  }
  Progress progress(config.steps, task.dataTime());
  const long long csvEvery = std::max<long long>(1, config.steps / 200);
  long long nextCsv = 0;
  auto log = [&] {
    if (csv)
      *csv << task.dataTime() << ',' << task.length() << ',' << task.curriculum().recentLoss() << ','
           << progress.elapsed() << ',' << task.sequences() << ',' << trainer.updates() << '\n';
  };
  if (config.resume.empty()) log();

  std::printf("copy task: %s, %s, H = %ld, recurrent density %g (%s masks), %ld parameters, batch %ld, %s updates\n",
              config.cell.c_str(),
              engineLabel(config).c_str(),
              static_cast<long>(config.hidden), config.density,
              config.sharing == snap::MaskSharing::Shared ? "shared" : "per-gate",
              static_cast<long>(cell.parameterCount()), static_cast<long>(config.batch),
              config.perSequence ? "per-sequence" : "online");
  snap::Vector<float> input(task.inputSize());
  auto finishSequence = [&](StreamSequence& stream) {
    const bool rose = task.record(stream.sequence, stream.lossBits);
    if (rose || task.dataTime() >= nextCsv) {
      log();
      nextCsv = task.dataTime() + csvEvery;
    }
    stream = {task.next()};
  };

  const bool checkpointing = !config.checkpoint.empty();
  long long nextCheckpoint = config.checkpointEvery > 0 ? task.dataTime() + config.checkpointEvery : -1;
  installStopHandlers();
  while (task.dataTime() < config.steps && stopSignal == 0) {
    if (!config.perSequence) {
      // Online: every stream advances one step; a finished stream starts a new sequence.
      for (Index b = 0; b < config.batch; ++b) {
        StreamSequence& stream = streams[static_cast<std::size_t>(b)];
        stream.sequence.input(stream.t, input);
        stream.lossBits += snap::Readout<float>::bits(trainer.observe(b, input, stream.sequence.target(stream.t)));
        if (++stream.t == stream.sequence.steps()) {
          trainer.resetStream(b);
          finishSequence(stream);
        }
      }
      trainer.endStep();
    } else {
      // Per sequence: the streams run their sequences side by side, then one update.
      Index longest = 0;
      for (const auto& stream : streams) longest = std::max(longest, stream.sequence.steps());
      for (Index t = 0; t < longest; ++t) {
        for (Index b = 0; b < config.batch; ++b) {
          StreamSequence& stream = streams[static_cast<std::size_t>(b)];
          if (t >= stream.sequence.steps()) continue;
          stream.sequence.input(t, input);
          stream.lossBits += snap::Readout<float>::bits(trainer.observe(b, input, stream.sequence.target(t)));
        }
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
  log();
  if (checkpointing) saveCheckpoint();
  if (stopSignal != 0) {
    const int signal = stopSignal;
    std::printf("copy_task: stopped by %s at data time %lld; %s\n", signal == SIGINT ? "SIGINT" : "SIGTERM",
                task.dataTime(),
                checkpointing ? ("checkpoint saved to " + config.checkpoint + " (continue with --resume " +
                                 config.checkpoint + ")").c_str()
                              : "nothing saved (no --checkpoint)");
    return 128 + signal;
  }
  const double seconds = progress.elapsed();
  std::printf("reached L = %ld after %lld steps of data (%lld sequences, %lld updates) in %.1f s: %.0f steps/s\n",
              static_cast<long>(task.length()), task.dataTime(), task.sequences(), trainer.updates(), seconds,
              progress.rate(task.dataTime()));
  std::printf("non-finite values: %lld steps and %lld updates skipped (--on-nonfinite %s)\n", trainer.skippedSteps(),
              trainer.skippedUpdates(), config.nonFinite == snap::NonFinitePolicy::Skip ? "skip" : "throw");
  std::printf("influence memory per stream: %.1f KiB\n", static_cast<double>(trainer.engine(0).bytes()) / 1024.0);
  if (checkpointing) std::printf("checkpoint: %s\n", config.checkpoint.c_str());
  return 0;
}

template <class Cell>
int dispatchEngine(const Config& config) {
  if (config.engine == "bptt") {
    snap::BPTTOptions options;
    if (config.engineSteps > 0) options.window = config.engineSteps;
    return train<snap::BPTT<Cell>>(config, options);
  }
  if (config.engine == "rtrl") return train<snap::RTRL<Cell>>(config, {});
  if (config.engine == "uoro") return train<snap::UORO<Cell>>(config, {.seed = config.seed + 2});
  return train<snap::SnAp<Cell>>(config, {.n = config.engineSteps});
}

/// Parses --engine: bptt:T | bptt | rtrl | uoro | snap:N.
void parseEngine(const std::string& text, Config& config) {
  const auto colon = text.find(':');
  config.engine = text.substr(0, colon);
  const std::string count = colon == std::string::npos ? "" : text.substr(colon + 1);
  const auto bad = [&] {
    throw snap::examples::CommandLineError{"--engine: expected bptt:T, bptt, rtrl, uoro or snap:N (T, N >= 1), got '" +
                                           text + "'"};
  };
  if (config.engine == "rtrl" || config.engine == "uoro") {
    if (!count.empty()) bad();
    return;
  }
  if (config.engine != "bptt" && config.engine != "snap") bad();
  if (count.empty()) {
    if (config.engine == "snap") bad();
    return;
  }
  char* end = nullptr;
  const long value = std::strtol(count.c_str(), &end, 10);
  if (*end != '\0' || value < 1 || value > 1000000) bad();
  config.engineSteps = static_cast<int>(value);
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line("copy_task",
                                   "Trains a sparse recurrent cell online on the copy task (docs/math.md §7) and reports the\n"
                                   "curriculum length L reached against data time.");
  line.flag("cell", "gru", "rnn | gru | lstm");
  line.flag("engine", "snap:2", "bptt:T | bptt (untruncated) | rtrl | uoro | snap:N");
  line.flag("hidden", "128", "hidden units H");
  line.flag("density", "0.1", "recurrent weight density, in (0, 1]");
  line.flag("input-density", "1", "input weight density, in (0, 1]");
  line.flag("masks", "shared", "shared (one mask for all gate blocks) | per-gate");
  line.flag("optimizer", "adam", "adam | sgd");
  line.flag("lr", "0.003", "learning rate");
  line.flag("clip", "1", "clip the global gradient norm to this (0: off)");
  line.flag("batch", "1", "independent streams sharing the weights");
  line.flag("steps", "1200000", "data-time budget: input steps to consume");
  line.flag("seed", "1", "seeds masks, weights, data and UORO's signs");
  line.flag("update", "every", "every (online; per window for bptt:T) | sequence");
  line.flag("csv", "", "write L against data time to this CSV file");
  line.flag("on-nonfinite", "throw", "throw (stop with an error) | skip (skip the step or update and count it)");
  line.flag("checkpoint", "", "save the whole run to this .npz file (at the end, on Ctrl-C/SIGTERM, and every M steps)");
  line.flag("checkpoint-every", "100000", "M: steps of data between checkpoints (0: only at the end and on a signal)");
  line.flag("resume", "", "continue the run saved in this checkpoint (with the same flags)");
  try {
    if (!line.parse(argc, argv)) return 0;
    Config config;
    config.cell = line.choice("cell", {"rnn", "gru", "lstm"});
    parseEngine(line.text("engine"), config);
    config.hidden = line.integer("hidden", 1, 100000);
    config.density = line.number("density", 1e-9, 1.0);
    config.inputDensity = line.number("input-density", 1e-9, 1.0);
    config.sharing = line.choice("masks", {"shared", "per-gate"}) == "shared" ? snap::MaskSharing::Shared
                                                                              : snap::MaskSharing::PerGate;
    const double lr = line.number("lr", 1e-12, 1e3);
    config.learningRate = lr;
    config.optimizerName = line.choice("optimizer", {"adam", "sgd"});
    config.optimizer = config.optimizerName == "adam" ? snap::AnyOptimizer(snap::Adam{.learningRate = lr})
                                                      : snap::AnyOptimizer(snap::SGD{.learningRate = lr});
    config.clip = line.number("clip", 0, 1e12);
    config.batch = line.integer("batch", 1, 4096);
    config.steps = line.integer("steps", 1, 1000000000000LL);
    config.seed = static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62));
    config.perSequence = line.choice("update", {"every", "sequence"}) == "sequence";
    config.csv = line.text("csv");
    config.nonFinite = line.choice("on-nonfinite", {"throw", "skip"}) == "skip" ? snap::NonFinitePolicy::Skip
                                                                                : snap::NonFinitePolicy::Throw;
    config.checkpoint = line.text("checkpoint");
    config.checkpointEvery = line.integer("checkpoint-every", 0, 1000000000000LL);
    config.resume = line.text("resume");
    if (config.engine == "bptt" && config.engineSteps == 0 && !config.perSequence)
      throw snap::examples::CommandLineError{
          "--engine bptt (untruncated) needs --update sequence; use bptt:T for online updates"};
    if (config.cell == "rnn") return dispatchEngine<snap::RNN<float>>(config);
    if (config.cell == "gru") return dispatchEngine<snap::GRU<float>>(config);
    return dispatchEngine<snap::LSTM<float>>(config);
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "copy_task: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "copy_task: %s\n", error.what());
    return 1;
  }
}
