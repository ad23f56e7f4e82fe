// The batch for the new cells and engines (docs/design.md, "Batches and threads"): one engine of
// B = 3 streams equals three single-stream engines on the same streams (states, outputs and
// gradients, with streams starting new sequences at different steps), and is bit-identical on 2
// threads, for SnAp-n (joint and per layer, both block kernels) on stacks and on the LRU, e-prop,
// RTRL and rolling BPTT(L). Loss gradients are given over the outputs.

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kStreams = 3;
constexpr int kBatchSteps = 19;
constexpr int kResetGradientAfter = 9;

/// Stream b > 0 starts a new sequence after step t when t % (3 + 2b) == b.
bool resets(Index stream, int step) { return stream > 0 && step % static_cast<int>(3 + 2 * stream) == static_cast<int>(stream); }

/// The inputs (m × B) and output gradients (o × B) of step t, from the seed and t alone; stream
/// b's gradient is zero on every (b + 2)-th step.
void drawStep(std::uint64_t seed, int step, Index inputs, Index outputs, Matrix<double>& x, Matrix<double>& delta) {
  Random random(seed * 1000003u + static_cast<std::uint64_t>(step));
  x.resize(inputs, kStreams);
  delta.resize(outputs, kStreams);
  for (Index i = 0; i < x.size(); ++i) x(i) = random.uniform(-1, 1);
  for (Index i = 0; i < delta.size(); ++i) delta(i) = random.uniform(-1, 1);
  for (Index b = 0; b < kStreams; ++b)
    if ((step + 1) % static_cast<int>(b + 2) == 0) delta.col(b).setZero();
}

struct Trace {
  std::vector<Matrix<double>> states, outputs;
  std::vector<Vector<double>> gradients;
};

template <class Engine>
Trace runBatched(const typename Engine::CellType& cell, const typename Engine::Options& options, int threads, std::uint64_t seed) {
  Engine engine(cell, options, Batch{.streams = kStreams, .threads = threads});
  Trace trace;
  Matrix<double> x, delta;
  for (int t = 0; t < kBatchSteps; ++t) {
    drawStep(seed, t, cell.inputSize(), cell.outputSize(), x, delta);
    trace.states.push_back(engine.step(x));
    trace.outputs.push_back(engine.outputs());
    engine.accumulate(delta);
    if (t == kResetGradientAfter) {
      trace.gradients.push_back(engine.gradient());
      engine.resetGradient();
    }
    for (Index b = 0; b < kStreams; ++b)
      if (resets(b, t)) engine.resetStream(b);
  }
  trace.gradients.push_back(engine.gradient());
  return trace;
}

template <class Engine>
Trace runSingles(const typename Engine::CellType& cell, const typename Engine::Options& options, std::uint64_t seed) {
  std::vector<Engine> engines;
  for (Index b = 0; b < kStreams; ++b) engines.emplace_back(cell, options);
  auto sum = [&] {
    Vector<double> total = Vector<double>::Zero(cell.parameterCount());
    for (Engine& engine : engines) total += engine.gradient();
    return total;
  };
  Trace trace;
  Matrix<double> x, delta;
  for (int t = 0; t < kBatchSteps; ++t) {
    drawStep(seed, t, cell.inputSize(), cell.outputSize(), x, delta);
    Matrix<double> states(cell.stateSize(), kStreams), outputs(cell.outputSize(), kStreams);
    for (Index b = 0; b < kStreams; ++b) {
      Engine& engine = engines[static_cast<std::size_t>(b)];
      states.col(b) = engine.step(Vector<double>(x.col(b)));
      outputs.col(b) = engine.outputs();
      engine.accumulate(Vector<double>(delta.col(b)));
    }
    trace.states.push_back(states);
    trace.outputs.push_back(outputs);
    if (t == kResetGradientAfter) {
      trace.gradients.push_back(sum());
      for (Engine& engine : engines) engine.resetGradient();
    }
    for (Index b = 0; b < kStreams; ++b)
      if (resets(b, t)) engines[static_cast<std::size_t>(b)].resetState();
  }
  trace.gradients.push_back(sum());
  return trace;
}

template <class Engine>
void expectBatchedEqualsSingles(const typename Engine::CellType& cell, const typename Engine::Options& options,
                                std::uint64_t seed = 7) {
  const Trace one = runBatched<Engine>(cell, options, 1, seed);
  const Trace two = runBatched<Engine>(cell, options, 2, seed);
  const Trace singles = runSingles<Engine>(cell, options, seed);
  for (std::size_t t = 0; t < singles.states.size(); ++t) {
    for (Index b = 0; b < kStreams; ++b) {
      ASSERT_LE(relativeError(one.states[t].col(b), singles.states[t].col(b)), 1e-12) << "state of stream " << b << ", step " << t;
      ASSERT_LE(relativeError(one.outputs[t].col(b), singles.outputs[t].col(b)), 1e-12) << "output of stream " << b << ", step " << t;
    }
    ASSERT_TRUE(two.states[t] == one.states[t]) << "2 threads: states after step " << t;
    ASSERT_TRUE(two.outputs[t] == one.outputs[t]) << "2 threads: outputs after step " << t;
  }
  ASSERT_EQ(one.gradients.size(), singles.gradients.size());
  for (std::size_t i = 0; i < singles.gradients.size(); ++i) {
    ASSERT_GT(singles.gradients[i].norm(), 0.0) << "gradient read " << i << " is zero: the check could not fail";
    EXPECT_LE(relativeError(one.gradients[i], singles.gradients[i]), 1e-12) << "gradient read " << i;
    EXPECT_TRUE(two.gradients[i] == one.gradients[i]) << "2 threads: gradient read " << i;
  }
}

std::vector<SnApOptions> snapOptions() {
  std::vector<SnApOptions> all;
  for (bool perLayer : {false, true})
    for (int n : {1, 2, 4})
      for (double denseBlockAbove : {0.0, 2.0}) all.push_back({.n = n, .denseBlockAbove = denseBlockAbove, .perLayer = perLayer});
  return all;
}

TEST(BatchedNewCells, SnApOnStacks) {
  for (const StackCase& c : mixedStacks())
    for (const SnApOptions& options : snapOptions()) {
      SCOPED_TRACE(::testing::Message() << c.name << ", SnAp-" << options.n << (options.perLayer ? " per layer" : "")
                                        << ", denseBlockAbove " << options.denseBlockAbove);
      expectBatchedEqualsSingles<SnAp<Stack<double>>>(c.stack, options);
    }
}

TEST(BatchedNewCells, SnApOnTheLRU) {
  for (LRUActivation activation : {LRUActivation::None, LRUActivation::GELU})
    for (bool skip : {true, false}) {
      const LRU<double> cell(3, 5, {.outputSize = skip ? 0 : 2, .inputDensity = 0.6, .skip = skip, .activation = activation,
                                    .seed = 8});
      for (int n : {1, 2}) {
        SCOPED_TRACE(::testing::Message() << (skip ? "skip" : "no skip") << ", activation " << static_cast<int>(activation)
                                          << ", SnAp-" << n);
        expectBatchedEqualsSingles<SnAp<LRU<double>>>(cell, {.n = n});
      }
    }
}

TEST(BatchedNewCells, EPropAndRtrl) {
  const StackCase c = mixedStacks()[1];
  const LRU<double> lru(3, 5, {.inputDensity = 0.6, .activation = LRUActivation::Tanh, .seed = 9});
  const RNN<double> leaky(3, 6, {.recurrentDensity = 0.5, .seed = 10}, {.leak = 0.3});
  expectBatchedEqualsSingles<EProp<Stack<double>>>(c.stack, {});
  expectBatchedEqualsSingles<EProp<LRU<double>>>(lru, {});
  expectBatchedEqualsSingles<RFLO<RNN<double>>>(leaky, {});
  expectBatchedEqualsSingles<RTRL<Stack<double>>>(c.stack, {});
  expectBatchedEqualsSingles<RTRL<LRU<double>>>(lru, {});
}

TEST(BatchedNewCells, RollingBptt) {
  const GRU<double> gru(3, 6, {.recurrentDensity = 0.5, .seed = 11});
  const LRU<double> lru(3, 5, {.inputDensity = 0.6, .activation = LRUActivation::GELU, .seed = 12});
  for (Index window : {1, 3, 30}) {
    SCOPED_TRACE(::testing::Message() << "L = " << window);
    expectBatchedEqualsSingles<RollingBPTT<GRU<double>>>(gru, {.window = window});
    expectBatchedEqualsSingles<RollingBPTT<LRU<double>>>(lru, {.window = window});
    expectBatchedEqualsSingles<RollingBPTT<Stack<double>>>(mixedStacks()[0].stack, {.window = window});
  }
}

}  // namespace
}  // namespace snap::test
