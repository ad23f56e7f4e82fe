// The hot loops allocate nothing (design.md): once an engine is built and has taken its first
// steps, step(), accumulate(), gradient() and resetGradient() — and a Trainer's online update —
// never call malloc. Counted by wrapping glibc's malloc in this test binary.

#include <gtest/gtest.h>

#include <vector>

#include <atomic>
#include <cstdlib>

#include "../support/reference.hpp"
#include "../support/sanitizers.hpp"

#if SNAP_TEST_SANITIZED
#define SNAP_COUNT_ALLOCATIONS 0  // the sanitizers own malloc
#else
#define SNAP_COUNT_ALLOCATIONS 1
#endif

#if SNAP_COUNT_ALLOCATIONS
namespace {
std::atomic<long> allocations{0};
}
extern "C" void* __libc_malloc(std::size_t size);
extern "C" void* malloc(std::size_t size) {
  allocations.fetch_add(1, std::memory_order_relaxed);
  return __libc_malloc(size);
}
#endif

namespace snap::test {
namespace {

/// Allocations made by `body`.
template <class Body>
long countAllocations(Body&& body) {
#if SNAP_COUNT_ALLOCATIONS
  const long before = allocations.load();
  body();
  return allocations.load() - before;
#else
  body();
  return 0;
#endif
}

/// Steps (with gradient reads, resets of the gradient and, for B > 1, of one stream) after a
/// warm-up allocate nothing, for the engine's B streams.
template <class Engine>
void expectAllocationFree(Engine& engine, Index inputs, Index steps = 40) {
  Random random(1);
  const Index streams = engine.streams(), k = engine.cell().stateSize();
  std::vector<Matrix<float>> xs, deltas;
  for (int i = 0; i < 8; ++i) {
    xs.emplace_back(inputs, streams);
    deltas.emplace_back(k, streams);
    for (Index b = 0; b < streams; ++b) {
      xs.back().col(b) = randomVector(random, inputs).template cast<float>();
      deltas.back().col(b) = randomVector(random, k).template cast<float>();
    }
  }
  auto run = [&](Index count) {
    for (Index t = 0; t < count; ++t) {
      engine.step(xs[static_cast<std::size_t>(t % 8)]);
      engine.accumulate(deltas[static_cast<std::size_t>(t % 8)]);
      if (t % 5 == 4) {
        engine.gradient();
        engine.resetGradient();
      }
      if (streams > 1 && t % 7 == 6) engine.resetStream(t % streams);
    }
  };
  run(steps);  // warm-up: first-use sizing
  EXPECT_EQ(countAllocations([&] { run(steps); }), 0);
}

TEST(Allocations, CountingWorks) {
#if SNAP_COUNT_ALLOCATIONS
  EXPECT_GT(countAllocations([] { std::free(std::malloc(64)); }), 0);
#else
  GTEST_SKIP() << "allocation counting is off under sanitizers";
#endif
}

TEST(Allocations, EnginesAllocateNothingPerStep) {
  constexpr Index inputs = 8, hidden = 24;
  for (double density : {1.0, 0.2}) {
    SCOPED_TRACE(::testing::Message() << "density " << density);
    GRU<float> gru(inputs, hidden, {.recurrentDensity = density, .maskSharing = MaskSharing::Shared, .seed = 1});
    LSTM<float> lstm(inputs, hidden, {.recurrentDensity = density, .seed = 2});
    RTRL<GRU<float>> rtrlDense(gru, {.denseDynamicsAbove = 0.0}), rtrlSparse(gru, {.denseDynamicsAbove = 2.0});
    expectAllocationFree(rtrlDense, inputs);
    expectAllocationFree(rtrlSparse, inputs);
    for (int n : {1, 2, 3}) {
      SnAp<GRU<float>> sparse(gru, {.n = n, .denseBlockAbove = 2.0}), dense(gru, {.n = n, .denseBlockAbove = 0.0});
      SnAp<LSTM<float>> snapLstm(lstm, {.n = n});
      expectAllocationFree(sparse, inputs);
      expectAllocationFree(dense, inputs);
      expectAllocationFree(snapLstm, inputs);
    }
    UORO<GRU<float>> uoro(gru, {.seed = 3});
    UORO<LSTM<float>> uoroLstm(lstm, {.seed = 4});
    expectAllocationFree(uoro, inputs);
    expectAllocationFree(uoroLstm, inputs);
    BPTT<GRU<float>> bptt(gru, {.window = 7});
    BPTT<LSTM<float>> bpttLstm(lstm, {.window = 16});
    expectAllocationFree(bptt, inputs);
    expectAllocationFree(bpttLstm, inputs);
  }
}

TEST(Allocations, BatchedEnginesOnTwoThreadsAllocateNothingPerStep) {
  constexpr Index inputs = 8, hidden = 24;
  const Batch batch{.streams = 3, .threads = 2};
  GRU<float> gru(inputs, hidden, {.recurrentDensity = 0.3, .maskSharing = MaskSharing::Shared, .seed = 1});
  LSTM<float> lstm(inputs, hidden, {.recurrentDensity = 0.3, .seed = 2});
  RTRL<GRU<float>> rtrlDense(gru, {.denseDynamicsAbove = 0.0}, batch), rtrlSparse(gru, {.denseDynamicsAbove = 2.0}, batch);
  expectAllocationFree(rtrlDense, inputs);
  expectAllocationFree(rtrlSparse, inputs);
  for (int n : {1, 2}) {
    SnAp<GRU<float>> snapGru(gru, {.n = n}, batch);
    SnAp<LSTM<float>> snapLstm(lstm, {.n = n}, batch);
    expectAllocationFree(snapGru, inputs);
    expectAllocationFree(snapLstm, inputs);
  }
  UORO<LSTM<float>> uoro(lstm, {.seed = 4}, batch);
  expectAllocationFree(uoro, inputs);
  BPTT<GRU<float>> bptt(gru, {.window = 7}, batch);
  BPTT<LSTM<float>> bpttLstm(lstm, {.window = 16}, batch);
  expectAllocationFree(bptt, inputs);
  expectAllocationFree(bpttLstm, inputs);
}

TEST(Allocations, LargeDenseProductsUseTheirPreparedWorkspace) {
  // Sizes where Eigen's own matrix products would allocate their packing buffers on the heap.
  constexpr Index inputs = 16, hidden = 96;
  GRU<float> gru(inputs, hidden, {.seed = 8});
  RTRL<GRU<float>> rtrl(gru);
  SnAp<GRU<float>> snap2(gru, {.n = 2});  // one dense group: the whole influence matrix
  BPTT<GRU<float>> bptt(gru, {.window = 64});
  expectAllocationFree(rtrl, inputs, 10);
  expectAllocationFree(snap2, inputs, 10);
  expectAllocationFree(bptt, inputs, 130);
}

TEST(Allocations, OnlineTrainingAllocatesNothingPerStep) {
  GRU<float> cell(4, 16, {.recurrentDensity = 0.25, .seed = 5});
  Readout<float> readout(16, 3, 6);
  Trainer<SnAp<GRU<float>>> trainer(cell, readout, Adam{.learningRate = 1e-3},
                                     {.batch = 2, .threads = 2, .clipNorm = 1.0}, {.n = 2});
  Random random(7);
  const Vector<float> x = randomVector(random, 4).cast<float>();
  const Matrix<float> inputs = x.replicate(1, 2);
  std::vector<Index> targets(2);
  auto run = [&] {
    for (int t = 0; t < 30; ++t) {
      targets = {t % 3, (t + 1) % 3};
      trainer.observe(inputs, targets);
      trainer.endStep();
      if (t % 10 == 9) trainer.resetStream(0);
    }
  };
  run();
  EXPECT_EQ(countAllocations(run), 0);
}

}  // namespace
}  // namespace snap::test
