// BPTT over B streams (docs/design.md, "Batches and threads"): one engine equals B single-stream
// engines, untruncated with streams resetting at any time, truncated with streams resetting on
// the batch's window boundaries; a reset inside a truncated window cuts only that stream, checked
// against central finite differences of the windowed losses; 2 threads are bit-identical, and a
// checkpoint saved on 2 threads resumes bit-identically on 1.

#include "../support/batched.hpp"
#include "../support/expect_error.hpp"

#include <set>
#include <utility>

namespace snap::test {
namespace {

template <class C>
class BatchedBPTT : public ::testing::Test {};
using Cells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(BatchedBPTT, Cells);

static_assert(Engine<BPTT<GRU<double>>> && Engine<BPTT<LSTM<float>>>);

constexpr Index kWindow = 4;

/// Stream b > 0 resets after the last step of window w when (w + b) % 3 == 0: on window
/// boundaries, at different windows per stream.
batched::Schedule onWindowBoundaries() {
  batched::Schedule schedule;
  schedule.resets = [](Index stream, int step) {
    return stream > 0 && (step + 1) % kWindow == 0 && ((step + 1) / kWindow + stream) % 3 == 0;
  };
  return schedule;
}

TYPED_TEST(BatchedBPTT, UntruncatedEqualsSingleStreamEngines) {
  using Engine = BPTT<TypeParam>;
  for (const TypeParam& cell : batched::cellsToCheck<TypeParam>(4, 6))
    batched::expectBatchedEqualsSingles<Engine>(cell, {}, [](Index) { return BPTTOptions{}; }, 5, 1e-12);
}

TYPED_TEST(BatchedBPTT, TruncatedEqualsSingleStreamEnginesWithResetsOnWindowBoundaries) {
  using Engine = BPTT<TypeParam>;
  const BPTTOptions options{.window = kWindow};
  for (const TypeParam& cell : batched::cellsToCheck<TypeParam>(4, 6))
    batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 5, 1e-12,
                                                onWindowBoundaries());
}

TYPED_TEST(BatchedBPTT, OneStreamIsTheSingleStreamEngine) {
  using Engine = BPTT<TypeParam>;
  TypeParam cell(3, 5, {.recurrentDensity = 0.5, .seed = 8});
  for (const BPTTOptions& options : {BPTTOptions{}, BPTTOptions{.window = kWindow}})
    batched::expectBatchedEqualsSingles<Engine>(cell, options, [&](Index) { return options; }, 1, 0.0);
}

/// Σ_b Σ_t δ_{t,b}ᵀ s_{t,b} of the windowed losses at parameters θ: each stream's steps split into
/// segments at the batch's window boundaries and at the stream's resets, each segment run by the
/// cell's forward step from the state the unperturbed run had at its start (zero after a reset).
template <class Cell>
double windowedLoss(const Cell& base, const Vector<double>& theta, const std::vector<Matrix<double>>& inputs,
                    const std::vector<Matrix<double>>& deltas, const std::vector<std::vector<Vector<double>>>& starts,
                    const std::set<std::pair<Index, int>>& resets) {
  Cell cell = base;
  cell.setParameters(theta);
  StepCache<double> cache = cell.makeCache();
  double loss = 0;
  const Index streams = inputs.front().cols();
  for (Index b = 0; b < streams; ++b) {
    Vector<double> state, next(cell.stateSize());
    for (std::size_t t = 0; t < inputs.size(); ++t) {
      const bool segmentStarts = t % kWindow == 0 || resets.count({b, static_cast<int>(t) - 1}) > 0;
      if (segmentStarts) state = starts[static_cast<std::size_t>(b)][t];
      const Vector<double> input = inputs[t].col(b);
      cell.forward(input, state, next, cache);
      state = next;
      loss += deltas[t].col(b).dot(state);
    }
  }
  return loss;
}

TYPED_TEST(BatchedBPTT, TruncatedResetInsideAWindowCutsThatStreamOnly) {
  constexpr Index streams = 3;
  constexpr int steps = 14;
  // Stream 1 resets inside window 1 (after step 5), stream 2 inside windows 0 and 2 (after 2, 9).
  const std::set<std::pair<Index, int>> resets = {{1, 5}, {2, 2}, {2, 9}};
  for (const TypeParam& cell : batched::cellsToCheck<TypeParam>(3, 5)) {
    std::vector<Matrix<double>> inputs(steps), deltas(steps);
    for (int t = 0; t < steps; ++t)
      batched::drawStep(11, t, cell.inputSize(), cell.stateSize(), streams, inputs[static_cast<std::size_t>(t)],
                        deltas[static_cast<std::size_t>(t)]);
    std::vector<Vector<double>> gradients;
    for (int threads : {1, 2}) {
      BPTT<TypeParam> engine(cell, {.window = kWindow}, Batch{.streams = streams, .threads = threads});
      for (int t = 0; t < steps; ++t) {
        engine.step(inputs[static_cast<std::size_t>(t)]);
        engine.accumulate(deltas[static_cast<std::size_t>(t)]);
        for (Index b = 0; b < streams; ++b)
          if (resets.count({b, t})) engine.resetStream(b);
      }
      ASSERT_EQ(engine.windowSteps(), steps % kWindow);
      gradients.push_back(engine.gradient());
    }
    EXPECT_TRUE(gradients[1] == gradients[0]) << "2 threads differ from 1";

    // The reference: each stream's states from the cell's forward step alone, then central
    // differences of the windowed losses.
    std::vector<std::vector<Vector<double>>> starts(streams);
    StepCache<double> cache = cell.makeCache();
    for (Index b = 0; b < streams; ++b) {
      Vector<double> state = Vector<double>::Zero(cell.stateSize()), next(cell.stateSize());
      for (int t = 0; t < steps; ++t) {
        if (resets.count({b, t - 1})) state.setZero();
        starts[static_cast<std::size_t>(b)].push_back(state);
        const Vector<double> input = inputs[static_cast<std::size_t>(t)].col(b);
        cell.forward(input, state, next, cache);
        state = next;
      }
    }
    const Vector<double> theta = cell.parameters();
    Vector<double> expected(theta.size());
    constexpr double h = 1e-5;
    for (Index j = 0; j < theta.size(); ++j) {
      Vector<double> plus = theta, minus = theta;
      plus[j] += h;
      minus[j] -= h;
      expected[j] = (windowedLoss(cell, plus, inputs, deltas, starts, resets) -
                     windowedLoss(cell, minus, inputs, deltas, starts, resets)) /
                    (2 * h);
    }
    ASSERT_GT(expected.norm(), 0.0);
    EXPECT_LE(batched::relativeDistance(gradients[0], expected), 1e-7);
  }
}

TYPED_TEST(BatchedBPTT, CheckpointSavedOnTwoThreadsResumesOnOne) {
  constexpr Index streams = 3;
  TypeParam cell(3, 5, {.recurrentDensity = 0.6, .seed = 5});
  for (const BPTTOptions& options : {BPTTOptions{.window = kWindow}, BPTTOptions{}}) {
    SCOPED_TRACE(options.window ? "truncated" : "untruncated");
    BPTT<TypeParam> original(cell, options, Batch{.streams = streams, .threads = 2});
    Matrix<double> x, delta;
    // Six steps: the open window holds steps 4 and 5 with their δ, a reset of stream 1 inside it
    // and a reset of stream 2 after its last step (cut at the next step).
    for (int t = 0; t < 6; ++t) {
      batched::drawStep(3, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      original.step(x);
      original.accumulate(delta);
      if (t == 4) original.resetStream(1);
    }
    original.resetStream(2);
    if (options.window) {
      ASSERT_EQ(original.windowSteps(), 2);
    }
    NpzArchive archive;
    original.saveState(archive, "bptt/");
    BPTT<TypeParam> loaded(cell, options, Batch{.streams = streams, .threads = 1});
    loaded.loadState(archive, "bptt/");
    ASSERT_EQ(loaded.windowSteps(), original.windowSteps());
    ASSERT_TRUE(loaded.state() == original.state());
    for (int t = 6; t < 15; ++t) {
      batched::drawStep(3, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
      ASSERT_TRUE(loaded.step(x) == original.step(x)) << "states after step " << t;
      original.accumulate(delta);
      loaded.accumulate(delta);
      if (t == 7 || t == 14) {
        ASSERT_GT(original.gradient().norm(), 0.0);
        EXPECT_TRUE(loaded.gradient() == original.gradient()) << "gradient after step " << t;
      }
    }
  }
}

TYPED_TEST(BatchedBPTT, RefusesBadCheckpointsAndStreamsOutOfRange) {
  TypeParam cell(3, 5, {.seed = 2});
  BPTT<TypeParam> engine(cell, {.window = kWindow}, Batch{.streams = 3});
  Matrix<double> x, delta;
  for (int t = 0; t < 2; ++t) {
    batched::drawStep(1, t, cell.inputSize(), cell.stateSize(), 3, x, delta);
    engine.step(x);
    engine.accumulate(delta);
  }
  expectError<ShapeError>([&] { engine.resetStream(3); }, "stream");
  expectError<ShapeError>([&] { engine.resetStream(-1); }, "stream");
  engine.resetStream(1);
  NpzArchive archive;
  engine.saveState(archive, "bptt/");
  // Each refused load leaves the loading engine as it was.
  BPTT<TypeParam> other(cell, {.window = kWindow}, Batch{.streams = 3});
  auto expectRefused = [&](const NpzArchive& file, const std::string& array) {
    expectError<FormatError>([&] { other.loadState(file, "bptt/"); }, "array 'bptt/" + array + "'");
    EXPECT_EQ(other.windowSteps(), 0);
    EXPECT_TRUE(other.state().isZero());
  };
  BPTT<TypeParam> twoStreams(cell, {.window = kWindow}, Batch{.streams = 2});
  expectError<FormatError>([&] { twoStreams.loadState(archive, "bptt/"); }, "array 'bptt/streams'");
  EXPECT_EQ(twoStreams.streams(), 2);
  NpzArchive longer = archive;  // a window longer than the steps taken
  longer["bptt/window_steps"] = NpyArray::of(std::vector<std::int64_t>{3}.data(), {});
  expectRefused(longer, "window_steps");
  NpzArchive cut = archive;  // a cut that is neither 0 nor 1
  std::vector<std::int64_t> cuts(6, 0);
  cuts[3] = 2;
  cut["bptt/window/cuts"] = NpyArray::of(cuts.data(), {3, 2});
  expectRefused(cut, "window/cuts");
  NpzArchive pending = archive;  // pending cuts of another batch
  pending["bptt/pending_cuts"] = NpyArray::of(std::vector<std::int64_t>{0, 1}.data(), {2});
  expectRefused(pending, "pending_cuts");
  other.loadState(archive, "bptt/");
  EXPECT_EQ(other.windowSteps(), 2);
}

}  // namespace
}  // namespace snap::test
