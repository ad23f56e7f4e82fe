// The copy task of the SnAp paper (MATH §7): trains a recurrent cell online with any engine
// and reports the curriculum length L reached against data time.
//
//   copy_task --cell gru --engine snap:2 --hidden 128 --density 0.1 --steps 3000000

#include <snap/snap.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
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
  Index batch = 1;
  long long steps = 0;
  std::uint64_t seed = 0;
  bool perSequence = false;
  double clip = 0;
  std::string csv;
};

/// The progress line: in place on a terminal, plain lines every few seconds otherwise.
class Progress {
public:
  explicit Progress(long long budget) : m_budget(budget), m_terminal(isatty(fileno(stdout)) != 0), m_start(Clock::now()) {}

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - m_start).count(); }

  void show(long long dataTime, Index length, double recentLoss, bool force = false) {
    const double now = elapsed();
    if (!force && now - m_last < (m_terminal ? 0.25 : 5.0)) return;
    m_last = now;
    const double rate = now > 0 ? static_cast<double>(dataTime) / now : 0.0;
    const double left = rate > 0 ? static_cast<double>(m_budget - dataTime) / rate : 0.0;
    std::printf("%sdata time %10lld  L %3ld  loss %.3f bits  %8.0f steps/s  %5.0f s left%s", m_terminal ? "\r" : "",
                dataTime, static_cast<long>(length), recentLoss, rate, left > 0 ? left : 0.0, m_terminal ? "   " : "\n");
    std::fflush(stdout);
  }
  void finish() {
    if (m_terminal) std::printf("\n");
  }

private:
  long long m_budget;
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
      .clipNorm = config.clip};
  snap::Trainer<Engine> trainer(cell, readout, config.optimizer, options, engineOptions);

  std::unique_ptr<std::ofstream> csv;
  if (!config.csv.empty()) {
    csv = std::make_unique<std::ofstream>(config.csv);
    if (!*csv) throw snap::Error("snap: --csv: cannot open '" + config.csv + "' for writing");
    *csv << "data_time,length,recent_loss_bits,wall_seconds,sequences,updates\n";
  }
  Progress progress(config.steps);
  const long long csvEvery = std::max<long long>(1, config.steps / 200);
  long long nextCsv = 0;
  auto log = [&] {
    if (csv)
      *csv << task.dataTime() << ',' << task.length() << ',' << task.curriculum().recentLoss() << ','
           << progress.elapsed() << ',' << task.sequences() << ',' << trainer.updates() << '\n';
  };
  log();

  std::printf("copy task: %s, %s, H = %ld, recurrent density %g (%s masks), %ld parameters, batch %ld, %s updates\n",
              config.cell.c_str(), config.engine.c_str(), static_cast<long>(config.hidden), config.density,
              config.sharing == snap::MaskSharing::Shared ? "shared" : "per-gate",
              static_cast<long>(cell.parameterCount()), static_cast<long>(config.batch),
              config.perSequence ? "per-sequence" : "online");
  snap::Vector<float> input(task.inputSize());
  std::vector<StreamSequence> streams;
  for (Index b = 0; b < config.batch; ++b) streams.push_back({task.next()});
  auto finishSequence = [&](StreamSequence& stream) {
    const bool rose = task.record(stream.sequence, stream.lossBits);
    if (rose || task.dataTime() >= nextCsv) {
      log();
      nextCsv = task.dataTime() + csvEvery;
    }
    stream = {task.next()};
  };

  while (task.dataTime() < config.steps) {
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
    progress.show(task.dataTime(), task.length(), task.curriculum().recentLoss());
  }
  progress.show(task.dataTime(), task.length(), task.curriculum().recentLoss(), true);
  progress.finish();
  log();
  const double seconds = progress.elapsed();
  std::printf("reached L = %ld after %lld steps of data (%lld sequences, %lld updates) in %.1f s: %.0f steps/s\n",
              static_cast<long>(task.length()), task.dataTime(), task.sequences(), trainer.updates(), seconds,
              static_cast<double>(task.dataTime()) / seconds);
  std::printf("influence memory per stream: %.1f KiB\n", static_cast<double>(trainer.engine(0).bytes()) / 1024.0);
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
                                   "Trains a sparse recurrent cell online on the copy task (MATH §7) and reports the\n"
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
    config.optimizer = line.choice("optimizer", {"adam", "sgd"}) == "adam" ? snap::AnyOptimizer(snap::Adam{.learningRate = lr})
                                                                           : snap::AnyOptimizer(snap::SGD{.learningRate = lr});
    config.clip = line.number("clip", 0, 1e12);
    config.batch = line.integer("batch", 1, 4096);
    config.steps = line.integer("steps", 1, 1000000000000LL);
    config.seed = static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62));
    config.perSequence = line.choice("update", {"every", "sequence"}) == "sequence";
    config.csv = line.text("csv");
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
