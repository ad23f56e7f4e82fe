// The regression readout and the trainer over real targets allocate nothing per step
// (STYLE.md): once built and warmed up, observe() (scored, unscored, with per-stream flags),
// endStep() with its online update, random feedback and stream resets never call malloc.
// Counted by wrapping glibc's malloc in this test binary, as tests/engines/test_allocations.cpp does.

#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <cstdlib>

#include <snap/tasks/adding_task.hpp>
#include <snap/train/regression_readout.hpp>

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

TEST(Allocations, TheCountSeesAnAllocation) {
  if (!SNAP_COUNT_ALLOCATIONS) GTEST_SKIP() << "the sanitizers own malloc";
  EXPECT_GT(countAllocations([] { Vector<double> grown = Vector<double>::Zero(1000); }), 0);
}

TEST(Allocations, RegressionTrainingAllocatesNothingPerStep) {
  for (Feedback feedback : {Feedback::Symmetric, Feedback::Random}) {
    SCOPED_TRACE(feedback == Feedback::Random ? "random feedback" : "symmetric feedback");
    GRU<float> cell(2, 16, {.recurrentDensity = 0.25, .seed = 5});
    RegressionReadout<float> readout(16, 2, 6, {.feedback = feedback});
    Trainer<SnAp<GRU<float>>, RegressionReadout<float>> trainer(
        cell, readout, Adam{.learningRate = 1e-3}, {.batch = 2, .threads = 2, .clipNorm = 1.0}, {.n = 2});
    AddingTask task({.length = 6, .seed = 7});
    const AddingSequence a = task.next(), b = task.next();
    Matrix<float> inputs(2, 2), targets(2, 2);
    const std::array<bool, 2> firstOnly{true, false};
    auto run = [&] {
      for (Index t = 0; t < 30; ++t) {
        a.input(t % 6, inputs.col(0));
        b.input(t % 6, inputs.col(1));
        targets.setConstant(static_cast<float>(a.target()));
        if (t % 3 == 0) {
          trainer.observe(inputs, targets);
        } else if (t % 3 == 1) {
          trainer.observe(inputs, targets, firstOnly);
        } else {
          trainer.observe(inputs);
        }
        trainer.endStep();
        if (t % 10 == 9) trainer.resetStream(0);
      }
    };
    run();
    EXPECT_EQ(countAllocations(run), 0);
    // The readout alone, by loss() and by predict().
    Vector<float> y = Vector<float>::Constant(16, 0.25f), delta(16), target = Vector<float>::Ones(2);
    readout.loss(y, target, delta);
    EXPECT_EQ(countAllocations([&] {
                for (int i = 0; i < 10; ++i) {
                  readout.loss(y, target, delta);
                  readout.predict(y);
                }
              }),
              0);
  }
}

}  // namespace
}  // namespace snap::test
