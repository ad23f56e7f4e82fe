// A deep network of linear recurrent units (snap::LRU, Orvieto et al. 2023), L layers with a GELU
// on each layer's output, trained fully online (an update after every step) on the adding problem
// (snap::AddingTask, scored by a snap::RegressionReadout), with three engines on the same network,
// data and seed: per-layer SnAp-2, which is exact RTRL inside each LRU layer at O(p) cost
// (docs/cells.md, "The linear recurrent unit"); e-prop; and rolling BPTT(L), each step's loss
// backpropagated through the last L steps. It prints the loss against data time, the time per step
// and each engine's memory.
//
//   deep_lru --layers 3 --hidden 32 --length 20 --steps 200000

#include <snap/snap.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "common/command_line.hpp"

namespace {

using snap::Index;

struct Config {
  Index layers = 3, hidden = 32, length = 20, window = 20;
  long long steps = 0;
  int reports = 4;
  double learningRate = 0, clip = 0;
  std::uint64_t seed = 0;
};

/// One engine's run: the mean loss of the sequences ending in each part of the budget, its
/// speed and its memory.
struct Result {
  std::string engine;
  std::vector<double> losses;
  double secondsPerStep = 0;
  std::size_t bytes = 0;
};

/// A count of steps as a column label: 750, 50k.
std::string shortCount(long long steps) {
  return steps >= 10000 && steps % 1000 == 0 ? std::to_string(steps / 1000) + "k" : std::to_string(steps);
}

/// Trains a copy of `initial` with Engine on the adding problem, online, and returns what it did.
template <class Engine>
Result train(const Config& config, const snap::Stack<float>& initial, std::string name,
             const typename Engine::Options& engineOptions) {
  snap::Stack<float> net = initial;  // every engine starts from the same weights
  snap::AddingTask task({.length = config.length, .seed = config.seed});
  snap::RegressionReadout<float> readout(net.outputSize(), task.outputSize(), config.seed + 1);
  snap::Trainer<Engine, snap::RegressionReadout<float>> trainer(net, readout, snap::Adam{.learningRate = config.learningRate},
                                                                {.clipNorm = config.clip}, engineOptions);
  Result result{std::move(name), std::vector<double>(static_cast<std::size_t>(config.reports), 0.0)};
  std::vector<long long> sequences(result.losses.size(), 0);
  snap::Vector<float> input(task.inputSize()), target(task.outputSize());
  long long dataTime = 0;
  const auto start = std::chrono::steady_clock::now();
  while (dataTime < config.steps) {
    const snap::AddingSequence sequence = task.next();
    double loss = 0;
    for (Index t = 0; t < sequence.length(); ++t) {
      sequence.input(t, input);
      if (sequence.scored(t)) {  // the last step: the sum of the two marked values
        target[0] = static_cast<float>(sequence.target());
        loss = trainer.step(input, target);
      } else {
        trainer.step(input);  // unscored, but an update all the same: online learning
      }
    }
    trainer.endSequence();  // a zero state for the next sequence
    dataTime += sequence.length();
    const auto part = static_cast<std::size_t>(std::min<long long>(config.reports - 1, (dataTime - 1) * config.reports / config.steps));
    result.losses[part] += loss;
    ++sequences[part];
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  for (std::size_t part = 0; part < result.losses.size(); ++part)
    result.losses[part] /= static_cast<double>(std::max<long long>(1, sequences[part]));
  result.secondsPerStep = seconds / static_cast<double>(dataTime);
  result.bytes = trainer.engine().bytes();
  std::printf("  %-18s done: %lld steps of data in %.1f s\n", result.engine.c_str(), dataTime, seconds);
  std::fflush(stdout);
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line(
      "deep_lru",
      "Trains a deep network of LRUs (GELU between layers) online on the adding problem with per-layer SnAp-2,\n"
      "e-prop and rolling BPTT(L), from the same weights on the same data, and compares their losses, speed and memory.");
  line.flag("layers", "3", "LRU layers");
  line.flag("hidden", "32", "each layer's complex units N and outputs");
  line.flag("length", "20", "T, the adding problem's sequence length");
  line.flag("window", "20", "L of rolling BPTT(L)");
  line.flag("steps", "200000", "data time: input steps to train each engine on");
  line.flag("reports", "4", "parts of the budget the loss is averaged over");
  line.flag("lr", "0.0005", "Adam's learning rate");
  line.flag("clip", "1", "clip the global gradient norm to this (0: off)");
  line.flag("seed", "1", "seeds the weights and the data");
  try {
    if (!line.parse(argc, argv)) return 0;
    Config config;
    config.layers = line.integer("layers", 1, 16);
    config.hidden = line.integer("hidden", 1, 4096);
    config.length = line.integer("length", 2, 100000);
    config.window = line.integer("window", 1, 100000);
    config.steps = line.integer("steps", 1, 1LL << 40);
    config.reports = static_cast<int>(line.integer("reports", 1, 20));
    config.learningRate = line.number("lr", 1e-9, 10);
    config.clip = line.number("clip", 0, 1e12);
    config.seed = static_cast<std::uint64_t>(line.integer("seed", 0, 1LL << 62));
    const Index layers = config.layers, hidden = config.hidden;

    // One layer first: SnAp-2 keeps every nonzero of an LRU's influence, so it is RTRL at O(p).
    // snippet-begin: lru
    snap::LRU<float> lru(hidden, hidden, {.rMin = 0.5, .rMax = 0.99, .activation = snap::LRUActivation::GELU});
    snap::SnAp<snap::LRU<float>> snap2(lru, {.n = 2});  // (Re h_j, Im h_j) for each B, ν, θ entry of unit j
    snap::SnAp<snap::LRU<float>> snap1(lru, {.n = 1});  // drops Im h_j for B_re, Re h_j for B_im
    const bool exact = snap2.pattern().isClosed();      // true: SnAp-2 drops nothing, it is RTRL
    // snippet-end: lru
    std::printf("one LRU layer (N = %ld, m = o = %ld): p = %ld; SnAp-2 keeps %ld influence entries, %s; SnAp-1 keeps "
                "%ld, %s\n",
                static_cast<long>(hidden), static_cast<long>(hidden), static_cast<long>(lru.parameterCount()),
                static_cast<long>(snap2.pattern().keptEntries()), exact ? "all of RTRL's nonzeros" : "NOT RTRL",
                static_cast<long>(snap1.pattern().keptEntries()),
                snap1.pattern().isClosed() ? "also RTRL" : "not RTRL");
    if (!exact || snap1.pattern().isClosed()) return 1;

    // snippet-begin: stack
    // Layer 0 reads the task's (value, marker); each layer above reads the GELU output of the one below.
    std::vector<snap::Layer<float>> stacked;
    for (snap::Index l = 0; l < layers; ++l)
      stacked.emplace_back(snap::LRU<float>(l == 0 ? snap::AddingTask::inputSize() : hidden, hidden,
                                            {.outputSize = hidden, .rMin = 0.5, .rMax = 0.99, .skip = l > 0,
                                             .activation = snap::LRUActivation::GELU, .seed = config.seed + 1000 * l}));
    const snap::Stack<float> net(std::move(stacked));  // net.layer(l).cell<snap::LRU<float>>() is layer l
    // train<Engine> trains a copy of net with a snap::Trainer<Engine, snap::RegressionReadout<float>>.
    using Net = snap::Stack<float>;
    const std::vector<Result> results{
        train<snap::SnAp<Net>>(config, net, "SnAp-2 per layer", {.n = 2, .perLayer = true}),
        train<snap::EProp<Net>>(config, net, "e-prop", {}),
        train<snap::RollingBPTT<Net>>(config, net, "rolling BPTT(" + std::to_string(config.window) + ")",
                                      {.window = config.window}),
    };
    // snippet-end: stack

    std::printf("\n%ld LRU layers of N = %ld (GELU outputs), p = %ld; adding problem T = %ld; %lld steps of data, an "
                "update every step (Adam %g, clip %g, seed %llu)\n",
                static_cast<long>(layers), static_cast<long>(hidden), static_cast<long>(net.parameterCount()),
                static_cast<long>(config.length), config.steps, config.learningRate, config.clip,
                static_cast<unsigned long long>(config.seed));
    std::printf("mean loss 1/2 (y - target)^2 of the sequences ending in each part of the data (the constant prediction's: "
                "%.4f); time of a whole training step (forward, engine, readout, Adam)\n\n",
                snap::AddingTask::baselineLoss());
    std::printf("%-18s", "engine");
    for (int part = 0; part < config.reports; ++part) {
      const std::string range =
          shortCount(config.steps * part / config.reports) + "-" + shortCount(config.steps * (part + 1) / config.reports);
      std::printf("  %9s", range.c_str());
    }
    std::printf("  %11s  %10s  %13s\n", "/ constant", "us / step", "engine memory");
    for (const Result& result : results) {
      std::printf("%-18s", result.engine.c_str());
      for (const double loss : result.losses) std::printf("  %9.4f", loss);
      std::printf("  %10.0f%%  %10.1f  %9.1f KiB\n", 100.0 * result.losses.back() / snap::AddingTask::baselineLoss(),
                  1e6 * result.secondsPerStep, static_cast<double>(result.bytes) / 1024.0);
    }
    if (results[0].losses == results[1].losses)
      std::printf("\ne-prop's losses are per-layer SnAp-2's: on LRU layers both keep each unit's exact influence "
                  "(RTRL inside the layer)\nand send the loss gradient down through the same-step Jacobians only.\n");
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "deep_lru: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "deep_lru: %s\n", error.what());
    return 1;
  }
  return 0;
}
