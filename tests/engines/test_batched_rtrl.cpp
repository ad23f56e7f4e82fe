// RTRL over B streams (docs/design.md, "Batches and threads"): one engine equals B single-stream
// engines and a dense reference recursion per stream, on the dense and the sparse dynamics
// paths, streams resetting at different times (with and without a pending update), bit-identical
// on 2 threads, and a checkpoint saved with 2 threads resumes bit-identically with 1.

#include "../support/batched.hpp"
#include "../support/reference.hpp"

#include <iterator>
#include <string>
#include <type_traits>
#include <vector>

namespace snap::test {
namespace {

static_assert(Engine<RTRL<RNN<double>>> && Engine<RTRL<LSTM<float>>>);

template <class C>
class BatchedRTRL : public ::testing::Test {};
using Cells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(BatchedRTRL, Cells);

/// denseDynamicsAbove 0 forces the dense product, 2 the sparse one.
constexpr double kDensePath = 0.0, kSparsePath = 2.0;

std::string describePath(double denseDynamicsAbove) {
  return denseDynamicsAbove == kDensePath ? "dense dynamics" : "sparse dynamics";
}

TYPED_TEST(BatchedRTRL, EqualsSingleStreamEngines) {
  using Engine = RTRL<TypeParam>;
  const std::vector<TypeParam> cells = batched::cellsToCheck<TypeParam>(4, 6);
  // cellsToCheck's order: per-gate then shared masks, each at densities 1 and 0.4.
  const std::string described[] = {batched::describeCell(MaskSharing::PerGate, 1.0),
                                   batched::describeCell(MaskSharing::PerGate, 0.4),
                                   batched::describeCell(MaskSharing::Shared, 1.0),
                                   batched::describeCell(MaskSharing::Shared, 0.4)};
  ASSERT_EQ(cells.size(), std::size(described));
  for (std::size_t c = 0; c < cells.size(); ++c)
    for (double path : {kDensePath, kSparsePath}) {
      const TypeParam& cell = cells[c];
      SCOPED_TRACE(describePath(path) + ", " + described[c]);
      const RTRLOptions options{.denseDynamicsAbove = path};
      batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 5, 1e-12);
    }
}

TYPED_TEST(BatchedRTRL, OneStreamIsTheSingleStreamEngine) {
  using Engine = RTRL<TypeParam>;
  TypeParam cell(3, 5, {.recurrentDensity = 0.5, .seed = 8});
  for (double path : {kDensePath, kSparsePath}) {
    SCOPED_TRACE(describePath(path));
    const RTRLOptions options{.denseDynamicsAbove = path};
    batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 1, 0.0);
  }
}

TYPED_TEST(BatchedRTRL, ManyTilesOfParametersOnTwoThreads) {
  // Enough parameters for several tiles of columns, the last one partial, so that both threads
  // update and sum their own tiles.
  using Engine = RTRL<TypeParam>;
  // Many inputs, few units: many parameters at a small cost per step.
  const Index hidden = std::is_same_v<TypeParam, RNN<double>> ? 20 : 8;
  TypeParam cell(56, hidden, {.recurrentDensity = 0.8, .seed = 14});
  ASSERT_GT(cell.parameterCount(), 3 * Engine::columnTile);
  ASSERT_NE(cell.parameterCount() % Engine::columnTile, 0);
  const batched::Schedule schedule{.steps = 12, .resetGradientAfter = 5};
  for (double path : {kDensePath, kSparsePath}) {
    SCOPED_TRACE(describePath(path));
    const RTRLOptions options{.denseDynamicsAbove = path};
    batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 3, 1e-12, schedule);
  }
}

/// Runs B streams through the engine and, independently, through the dense recursion
/// J_b ← D_t J_b + I_t (D_t and I_t assembled densely from the cell's products), resetting
/// streams as the default schedule does; the states, each stream's J_b and the gradients agree.
template <class C>
void expectEqualsDenseReference(const C& cell, const RTRLOptions& options, Index streams, int threads) {
  const batched::Schedule schedule;
  const Index k = cell.stateSize(), p = cell.parameterCount();
  RTRL<C> engine(cell, options, Batch{.streams = streams, .threads = threads});
  std::vector<Vector<double>> states(static_cast<std::size_t>(streams), Vector<double>::Zero(k));
  std::vector<Matrix<double>> influences(static_cast<std::size_t>(streams), Matrix<double>::Zero(k, p));
  Vector<double> gradient = Vector<double>::Zero(p);
  Matrix<double> x, delta;
  for (int t = 0; t < schedule.steps; ++t) {
    batched::drawStep(3, t, cell.inputSize(), k, streams, x, delta);
    const Matrix<double> next = engine.step(x);
    engine.accumulate(delta);
    for (Index b = 0; b < streams; ++b) {
      const auto i = static_cast<std::size_t>(b);
      LibraryStep<C> step(cell, x.col(b), states[i]);
      influences[i] =
          (denseDynamics(cell, step.cache) * influences[i] + denseImmediate(cell, step.cache, step.z)).eval();
      gradient += influences[i].transpose() * delta.col(b);
      states[i] = step.next;
      ASSERT_LE(relativeError(next.col(b), states[i]), 1e-13) << "state of stream " << b << " after step " << t;
    }
    const RowMatrix<double>& influence = engine.influence();
    ASSERT_EQ(influence.rows(), streams * k);
    for (Index b = 0; b < streams; ++b)
      ASSERT_LE(relativeError(Matrix<double>(influence.middleRows(b * k, k)), influences[static_cast<std::size_t>(b)]),
                1e-12)
          << "J of stream " << b << " after step " << t;
    for (Index b = 0; b < streams; ++b)
      if (schedule.resets(b, t)) {
        engine.resetStream(b);
        states[static_cast<std::size_t>(b)].setZero();
        influences[static_cast<std::size_t>(b)].setZero();
      }
  }
  ASSERT_GT(gradient.norm(), 0.0);
  EXPECT_LE(relativeError(engine.gradient(), gradient), 1e-12);
}

TYPED_TEST(BatchedRTRL, EqualsTheDenseReferenceRecursion) {
  TypeParam cell(3, 4, {.inputDensity = 0.7, .recurrentDensity = 0.5, .seed = 12});
  for (double path : {kDensePath, kSparsePath}) {
    SCOPED_TRACE(describePath(path));
    expectEqualsDenseReference(cell, {.denseDynamicsAbove = path}, 4, 2);
  }
}

TYPED_TEST(BatchedRTRL, ResettingAStreamKeepsThePendingUpdateOfTheOthers) {
  // resetStream() between step() and accumulate(): the other streams' pending update must be
  // neither lost nor taken twice. The singles reset the same streams at the same points.
  TypeParam cell(4, 6, {.recurrentDensity = 0.4, .seed = 17});
  constexpr Index streams = 3;
  constexpr int steps = 20;
  const auto resets = [](Index b, int t) { return b > 0 && t % static_cast<int>(2 + b) == 1; };
  for (double path : {kDensePath, kSparsePath}) {
    SCOPED_TRACE(describePath(path));
    const RTRLOptions options{.denseDynamicsAbove = path};
    std::vector<RTRL<TypeParam>> singles(streams, RTRL<TypeParam>(cell, options));
    std::vector<RTRL<TypeParam>> batchedEngines;
    for (int threads : {1, 2})
      batchedEngines.emplace_back(cell, options, Batch{.streams = streams, .threads = threads});
    Matrix<double> x, delta;
    for (int t = 0; t < steps; ++t) {
      batched::drawStep(5, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      bool reset = false;
      for (Index b = 0; b < streams; ++b) reset = reset || resets(b, t);
      for (Index b = 0; b < streams; ++b) {
        RTRL<TypeParam>& single = singles[static_cast<std::size_t>(b)];
        single.step(Vector<double>(x.col(b)));
        if (resets(b, t)) single.resetState();
        if (!reset) single.accumulate(Vector<double>(delta.col(b)));
      }
      for (RTRL<TypeParam>& engine : batchedEngines) {
        engine.step(x);
        for (Index b = 0; b < streams; ++b)
          if (resets(b, t)) engine.resetStream(b);
        if (!reset) engine.accumulate(delta);
        for (Index b = 0; b < streams; ++b)
          ASSERT_LE(relativeError(engine.state().col(b), singles[static_cast<std::size_t>(b)].state()), 1e-12)
              << "state of stream " << b << " after step " << t;
      }
      ASSERT_TRUE(batchedEngines[1].state() == batchedEngines[0].state()) << "2 threads, after step " << t;
    }
    Vector<double> sum = Vector<double>::Zero(cell.parameterCount());
    for (const RTRL<TypeParam>& single : singles) sum += single.gradient();
    ASSERT_GT(sum.norm(), 0.0);
    EXPECT_LE(batched::relativeDistance(batchedEngines[0].gradient(), sum), 1e-12);
    EXPECT_TRUE(batchedEngines[1].gradient() == batchedEngines[0].gradient());
    for (Index b = 0; b < streams; ++b)
      EXPECT_LE(relativeError(
                    Matrix<double>(batchedEngines[0].influence().middleRows(b * cell.stateSize(), cell.stateSize())),
                    Matrix<double>(singles[static_cast<std::size_t>(b)].influence())),
                1e-12)
          << "J of stream " << b;
    EXPECT_TRUE(batchedEngines[1].influence() == batchedEngines[0].influence());
  }
}

TYPED_TEST(BatchedRTRL, CheckpointSavedWithTwoThreadsResumesExactlyWithOne) {
  TypeParam cell(4, 6, {.recurrentDensity = 0.4, .seed = 23});
  constexpr Index streams = 3;
  const batched::Schedule schedule;
  for (double path : {kDensePath, kSparsePath}) {
    SCOPED_TRACE(describePath(path));
    const RTRLOptions options{.denseDynamicsAbove = path};
    RTRL<TypeParam> saved(cell, options, Batch{.streams = streams, .threads = 2});
    Matrix<double> x, delta;
    int t = 0;
    for (; t < 9; ++t) {
      batched::drawStep(9, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      saved.step(x);
      saved.accumulate(delta);
      for (Index b = 0; b < streams; ++b)
        if (schedule.resets(b, t)) saved.resetStream(b);
    }
    // Step t = 9 without its accumulate(): its influence update is pending in the checkpoint.
    batched::drawStep(9, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
    saved.step(x);
    NpzArchive archive;
    saved.saveState(archive, "rtrl/");
    ASSERT_EQ(readScalar<std::int64_t>(archive, "rtrl/pending", 0, 1), 1);
    RTRL<TypeParam> resumed(cell, options, Batch{.streams = streams, .threads = 1});
    resumed.loadState(archive, "rtrl/");
    EXPECT_EQ(resumed.batch().threads, 1);
    EXPECT_EQ(resumed.steps(), saved.steps());
    ASSERT_TRUE(resumed.state() == saved.state());
    // From step t (taken, not yet accumulated) on: δ_t, the resets after t, then step t + 1.
    for (; t < 18; ++t) {
      batched::drawStep(9, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      saved.accumulate(delta);
      resumed.accumulate(delta);
      ASSERT_TRUE(resumed.gradient() == saved.gradient()) << "gradient after step " << t;
      for (Index b = 0; b < streams; ++b)
        if (schedule.resets(b, t)) {
          saved.resetStream(b);
          resumed.resetStream(b);
        }
      batched::drawStep(9, t + 1, cell.inputSize(), cell.stateSize(), streams, x, delta);
      saved.step(x);
      resumed.step(x);
      ASSERT_TRUE(resumed.state() == saved.state()) << "states after step " << t + 1;
    }
    ASSERT_GT(saved.gradient().norm(), 0.0);
    EXPECT_TRUE(resumed.influence() == saved.influence());
    EXPECT_TRUE(resumed.gradient() == saved.gradient());
  }
}

TYPED_TEST(BatchedRTRL, CheckpointForAnotherStreamCountIsRefused) {
  TypeParam cell(3, 4, {.seed = 29});
  RTRL<TypeParam> saved(cell, {}, Batch{.streams = 3});
  saved.step(Matrix<double>::Ones(cell.inputSize(), 3));
  NpzArchive archive;
  saved.saveState(archive, "");
  RTRL<TypeParam> other(cell, {}, Batch{.streams = 2});
  EXPECT_THROW(other.loadState(archive, ""), FormatError);
  EXPECT_EQ(other.steps(), 0);
}

}  // namespace
}  // namespace snap::test
