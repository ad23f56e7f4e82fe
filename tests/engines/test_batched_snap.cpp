// SnAp-n over B streams (docs/design.md, "Batches and threads"): one engine equals B single-stream
// engines for every cell, mask sharing, n and block kernel, streams resetting at different times,
// and is bit-identical on 2 threads; a checkpoint saved with 2 threads resumes bit-identically
// with 1.

#include "../support/batched.hpp"

namespace snap::test {
namespace {

template <class C>
class BatchedSnAp : public ::testing::Test {};
using Cells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(BatchedSnAp, Cells);

/// Every n with both block kernels: denseBlockAbove 0 makes every block of 3 rows or more a
/// dense product, 2 makes it sparse rows (blocks of 1 or 2 rows are the home kernels).
std::vector<SnApOptions> optionsToCheck() {
  std::vector<SnApOptions> options;
  for (int n : {1, 2, 3})
    for (double denseBlockAbove : {0.0, 2.0}) options.push_back({.n = n, .denseBlockAbove = denseBlockAbove});
  return options;
}

TYPED_TEST(BatchedSnAp, EqualsSingleStreamEngines) {
  using Engine = SnAp<TypeParam>;
  for (const TypeParam& cell : batched::cellsToCheck<TypeParam>(4, 6))
    for (const SnApOptions& options : optionsToCheck()) {
      SCOPED_TRACE(::testing::Message() << "SnAp-" << options.n << ", denseBlockAbove " << options.denseBlockAbove);
      batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 5, 1e-12);
    }
}

TYPED_TEST(BatchedSnAp, OneStreamIsTheSingleStreamEngine) {
  using Engine = SnAp<TypeParam>;
  for (const TypeParam& cell : batched::cellsToCheck<TypeParam>(3, 5))
    for (const SnApOptions& options : optionsToCheck())
      batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 1, 0.0);
}

TYPED_TEST(BatchedSnAp, FullLanesOfStreamsAndSeveralUnits) {
  // 11 streams: a full chunk of the home kernel's stream loop (8 doubles) and a tail of 3; cells
  // large enough that the update has several units, so 2 threads do different work: SnAp-1 on
  // cells of a few thousand parameters, SnAp-2 on a dense cell (one group cut into column tiles).
  using Engine = SnAp<TypeParam>;
  const batched::Schedule schedule{.steps = 12, .resetGradientAfter = 6};
  for (MaskSharing sharing : {MaskSharing::PerGate, MaskSharing::Shared}) {
    SCOPED_TRACE(batched::describeCell(sharing, 0.3));
    const Index hidden = std::is_same_v<TypeParam, RNN<double>> ? 128 : std::is_same_v<TypeParam, GRU<double>> ? 48 : 24;
    TypeParam cell(hidden == 128 ? 32 : 8, hidden, {.recurrentDensity = 0.3, .maskSharing = sharing, .seed = 61});
    const SnApOptions options{.n = 1};
    ASSERT_GT(Engine(cell, options).workUnits(), 1);
    batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 11, 1e-12, schedule);
  }
  TypeParam dense(4, 12, {.maskSharing = MaskSharing::PerGate, .seed = 62});
  for (double denseBlockAbove : {0.0, 2.0}) {
    const SnApOptions options{.n = 2, .denseBlockAbove = denseBlockAbove};
    SCOPED_TRACE(::testing::Message() << "SnAp-2, denseBlockAbove " << denseBlockAbove);
    ASSERT_GT(Engine(dense, options).workUnits(), 1);
    batched::expectBatchedEqualsSingles<Engine>(dense, options, [&](Index) { return options; }, 11, 1e-12, schedule);
  }
}

TYPED_TEST(BatchedSnAp, ResetStreamKeepsThePendingUpdateOfTheOthers) {
  // A step without accumulate() leaves the update pending; resetStream(1) must perform it for
  // streams 0 and 2 before zeroing stream 1, as if each were its own engine.
  using Engine = SnAp<TypeParam>;
  TypeParam cell(3, 6, {.recurrentDensity = 0.5, .seed = 62});
  for (const SnApOptions& options : optionsToCheck()) {
    SCOPED_TRACE(::testing::Message() << "SnAp-" << options.n << ", denseBlockAbove " << options.denseBlockAbove);
    constexpr Index streams = 3;
    Engine batch(cell, options, Batch{.streams = streams, .threads = 2});
    std::vector<Engine> singles(streams, Engine(cell, options));
    Matrix<double> x, delta;
    for (int t = 0; t < 9; ++t) {
      batched::drawStep<double>(5, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      batch.step(x);
      for (Index b = 0; b < streams; ++b) singles[static_cast<std::size_t>(b)].step(Vector<double>(x.col(b)));
      if (t % 3 != 1) {
        batch.accumulate(delta);
        for (Index b = 0; b < streams; ++b)
          singles[static_cast<std::size_t>(b)].accumulate(Vector<double>(delta.col(b)));
      }
      if (t % 3 == 1) {
        batch.resetStream(1);
        singles[1].resetState();
      }
    }
    Vector<double> expected = Vector<double>::Zero(cell.parameterCount());
    for (Engine& single : singles) expected += single.gradient();
    ASSERT_GT(expected.norm(), 0.0);
    EXPECT_LE(batched::relativeDistance(batch.gradient(), expected), 1e-12);
    for (Index b = 0; b < streams; ++b)
      for (Index j = 0; j < cell.parameterCount(); j += 7)
        for (Index row = 0; row < cell.stateSize(); ++row)
          EXPECT_NEAR(batch.influence(row, j, b), singles[static_cast<std::size_t>(b)].influence(row, j), 1e-12);
  }
}

TYPED_TEST(BatchedSnAp, CheckpointFromTwoThreadsResumesOnOne) {
  using Engine = SnAp<TypeParam>;
  constexpr Index streams = 3;
  TypeParam cell(4, 8, {.recurrentDensity = 0.4, .seed = 63});
  for (const SnApOptions& options : optionsToCheck()) {
    SCOPED_TRACE(::testing::Message() << "SnAp-" << options.n << ", denseBlockAbove " << options.denseBlockAbove);
    Engine original(cell, options, Batch{.streams = streams, .threads = 2});
    Matrix<double> x, delta;
    int t = 0;
    for (; t < 7; ++t) {
      batched::drawStep<double>(9, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      original.step(x);
      original.accumulate(delta);
      if (t == 3) original.resetStream(2);
    }
    // One more step without accumulate(): the influence update is pending in the checkpoint.
    batched::drawStep<double>(9, t++, cell.inputSize(), cell.stateSize(), streams, x, delta);
    original.step(x);
    NpzArchive archive;
    original.saveState(archive, "snap/");
    Engine resumed(cell, options, Batch{.streams = streams, .threads = 1});
    resumed.loadState(archive, "snap/");
    EXPECT_TRUE(resumed.state() == original.state());
    EXPECT_TRUE(resumed.gradient() == original.gradient());
    bool first = true;
    for (; t < 14; ++t) {
      batched::drawStep<double>(9, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      if (first) {
        // The pending step's δ, fused with its update on both engines.
        original.accumulate(delta);
        resumed.accumulate(delta);
        first = false;
      }
      ASSERT_TRUE(resumed.step(x) == original.step(x)) << "states after step " << t;
      original.accumulate(delta);
      resumed.accumulate(delta);
      if (t == 10) {
        original.resetStream(0);
        resumed.resetStream(0);
      }
      ASSERT_TRUE(resumed.gradient() == original.gradient()) << "gradient after step " << t;
    }
    ASSERT_GT(original.gradient().norm(), 0.0);
  }
}

TEST(BatchedSnApCheckpoint, RefusesAnotherStreamCountAndChangesNothing) {
  GRU<double> cell(3, 5, {.recurrentDensity = 0.5, .seed = 64});
  SnAp<GRU<double>> three(cell, {.n = 2}, Batch{.streams = 3});
  three.step(Matrix<double>::Ones(3, 3));
  NpzArchive archive;
  three.saveState(archive, "");
  SnAp<GRU<double>> two(cell, {.n = 2}, Batch{.streams = 2, .threads = 2});
  two.step(Matrix<double>::Ones(3, 2) * 0.5);
  const Matrix<double> state = two.state();
  EXPECT_THROW(two.loadState(archive, ""), FormatError);
  EXPECT_TRUE(two.state() == state);
  EXPECT_EQ(two.streams(), 2);
  EXPECT_EQ(two.steps(), 1);
}

}  // namespace
}  // namespace snap::test
