// The in-memory API at its edges (docs/reliability.md, "Sizes, options and refused calls"):
// absurd sizes end in a snap::Error naming the argument, options are checked in the scalar
// type they are used in, every refused call changes nothing, a trainer never applies the
// gradient of masks that have changed, and an engine saved after a mask change resumes as the
// uninterrupted engine goes on. Each test compares the object's state before and after the
// refused call (its whole saved state where it has one).

#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <cstddef>
#include <limits>
#include <string>
#include <utility>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"
#include "../support/training.hpp"

namespace snap::test {
namespace {

constexpr Index kInputs = 3;
constexpr Index kHidden = 4;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// x_t: a function of t only.
Vector<double> inputAt(Index t) {
  Random random(static_cast<std::uint64_t>(100 + t));
  Vector<double> x(kInputs);
  for (Index i = 0; i < kInputs; ++i) x[i] = random.uniform(-1.0, 1.0);
  return x;
}

/// δ_t: a function of t only.
Vector<double> deltaAt(Index t, Index k) {
  Random random(static_cast<std::uint64_t>(200 + t));
  Vector<double> delta(k);
  for (Index i = 0; i < k; ++i) delta[i] = random.uniform(-1.0, 1.0);
  return delta;
}

/// The cell's recurrent mask with one kept weight removed and one removed weight restored:
/// the same number of parameters p, other positions. `restored` receives the new position.
template <class Cell>
RowMatrix<typename Cell::Scalar> swappedMask(const Cell& cell, std::pair<Index, Index>* restored = nullptr) {
  RowMatrix<typename Cell::Scalar> mask = cell.mask_hh();
  Index keptRow = -1, keptCol = -1, removedRow = -1, removedCol = -1;
  for (Index r = 0; r < mask.rows(); ++r)
    for (Index c = 0; c < mask.cols(); ++c) {
      if (mask(r, c) != 0 && keptRow < 0) keptRow = r, keptCol = c;
      if (mask(r, c) == 0 && removedRow < 0) removedRow = r, removedCol = c;
    }
  EXPECT_GE(keptRow, 0);
  EXPECT_GE(removedRow, 0);
  mask(keptRow, keptCol) = 0;
  mask(removedRow, removedCol) = 1;
  if (restored != nullptr) *restored = {removedRow, removedCol};
  return mask;
}

GRU<double> sparseGru() { return GRU<double>(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 3}); }

/// Steps [from, to) of an engine with δ after each step.
template <class Engine>
void runEngine(Engine& engine, Index from, Index to) {
  for (Index t = from; t < to; ++t) {
    engine.step(inputAt(t));
    engine.accumulate(deltaAt(t, engine.cell().stateSize()));
  }
}

/// Calls `check` with each engine type and options bound to a GRU<double>.
template <class Check>
void forEachEngineType(Check&& check) {
  check.template operator()<RTRL<GRU<double>>>(RTRLOptions{});
  check.template operator()<SnAp<GRU<double>>>(SnApOptions{.n = 2});
  check.template operator()<SnAp<GRU<double>>>(SnApOptions{.n = 1});
  check.template operator()<UORO<GRU<double>>>(UOROOptions{.seed = 5});
  check.template operator()<BPTT<GRU<double>>>(BPTTOptions{.window = 3});
  check.template operator()<BPTT<GRU<double>>>(BPTTOptions{});
}

// --- Item 8: absurd sizes end in a snap::Error naming the argument -----------------------------

TEST(AbsurdSizes, CellsRefuseSizesWhoseArraysOverflowOrExceedTheBudget) {
  constexpr Index two32 = Index(1) << 32, two62 = Index(1) << 62, tera = 1'000'000'000'000;
  expectError<ValueError>([] { RNN<double>(two32, two32); }, "hiddenSize");
  expectError<ValueError>([] { RNN<float>(two32, two32); }, "hiddenSize");
  expectError<ValueError>([] { GRU<double>(1, two62); }, "hiddenSize");
  expectError<ValueError>([] { LSTM<double>(1, two62); }, "hiddenSize");
  expectError<ValueError>([] { GRU<double>(1, tera); }, "hiddenSize");
  expectError<ValueError>([] { GRU<float>(1, 100'000); }, "hiddenSize");  // 3·10^10 weights
  expectError<ValueError>([] { LSTM<double>(two62, 2); }, "inputSize");
  expectError<ValueError>([] { RNN<double>(tera, 1); }, "inputSize");
  expectError<ValueError>([] { GRU<float>(Index(1) << 31, 1); }, "inputSize");
  // Sizes within the budget still build.
  EXPECT_EQ(RNN<float>(1, 300).parameterCount(), 300 * 301 + 600);
}

TEST(AbsurdSizes, ReadoutAndTask) {
  constexpr Index two32 = Index(1) << 32, tera = 1'000'000'000'000;
  expectError<ValueError>([] { Readout<double>(two32, two32); }, "hiddenSize");
  expectError<ValueError>([] { Readout<float>(4, two32); }, "outputs");
  expectError<ValueError>([] { Readout<double>(4, Index(1) << 62); }, "outputs");
  expectError<ValueError>([] { CopyTask({.alphabet = INT_MAX}); }, "CopyTaskOptions::alphabet");
  expectError<ValueError>([] { CopySequence({0}, INT_MAX); }, "alphabet");
  expectError<ValueError>([] { CopyTask({.initialLength = tera}); }, "CopyTaskOptions::initialLength");
  expectError<ValueError>([] { CopyTask({.initialLength = INT64_MAX}); }, "CopyTaskOptions::initialLength");
  expectError<ValueError>([] { CopyTask({.window = INT64_MAX}); }, "CopyTaskOptions::window");
  CopyTask task;
  expectError<ValueError>([&] { task.curriculum().restore(Index(1) << 40, {}); }, "length");
  EXPECT_EQ(task.length(), 1);
  // The largest alphabet still works, in 64-bit sizes.
  const CopySequence sequence({0, 1}, static_cast<int>(CopySequence::maxAlphabet()));
  EXPECT_EQ(sequence.inputClass(2), CopySequence::maxAlphabet());
}

TEST(AbsurdSizes, EnginesAndTrainers) {
  constexpr Index tera = 1'000'000'000'000;
  const GRU<double> cell = sparseGru();
  expectError<ValueError>([&] { BPTT<GRU<double>>(cell, {.window = tera}); }, "BPTTOptions::window");
  expectError<ValueError>([&] { BPTT<GRU<double>>(cell, {.window = INT64_MAX}); }, "BPTTOptions::window");
  Readout<double> readout(kHidden, 2);
  GRU<double> trained = cell;
  expectError<ValueError>([&] { Trainer<SnAp<GRU<double>>>(trained, readout, SGD{}, {.batch = tera}); },
                          "TrainerOptions::batch");
  expectError<ValueError>([&] { Trainer<RTRL<GRU<double>>>(trained, readout, SGD{}, {.batch = Index(1) << 40}); },
                          "TrainerOptions::batch");
  // An engine's own batch: B streams whose states alone exceed the bound, and thread counts.
  expectError<ValueError>([&] { UORO<GRU<double>>(cell, {}, {.streams = tera}); }, "Batch::streams");
  expectError<ValueError>([&] { RTRL<GRU<double>>(cell, {}, {.streams = Index(1) << 40}); }, "Batch::streams");
  expectError<ValueError>([&] { SnAp<GRU<double>>(cell, {}, {.streams = 0}); }, "Batch::streams");
  expectError<ValueError>([&] { BPTT<GRU<double>>(cell, {.window = 4}, {.threads = 0}); }, "Batch::threads");
  expectError<ValueError>([&] { BPTT<GRU<double>>(cell, {.window = 4}, {.threads = 257}); }, "Batch::threads");
  expectError<ValueError>([&] { Trainer<SnAp<GRU<double>>>(trained, readout, SGD{}, {.threads = 0}); },
                          "TrainerOptions::threads");
  // k·p = 1000 × 1 003 000 influence values: over 4 GiB of doubles, for RTRL and for SnAp-2
  // (which keeps all of it on a dense cell).
  const RNN<double> dense(1, 1000);
  expectError<ValueError>([&] { RTRL<RNN<double>>{dense}; }, "cell");
  expectError<ValueError>([&] { SnAp<RNN<double>>(dense, {.n = 2}); }, "cell");
  EXPECT_NO_THROW(SnAp<RNN<double>>(dense, {.n = 1}));  // p values
}

TEST(AbsurdSizes, CheckedArithmetic) {
  expectError<ValueError>([] { detail::checkedProduct("rows", INT64_MAX, 2); }, "rows");
  expectError<ValueError>([] { detail::checkedSum("rows", INT64_MAX, 1); }, "rows");
  expectError<ValueError>([] { detail::requireArray<double>("count", maxArrayBytes / 8 + 1, "array"); }, "count");
  EXPECT_EQ(detail::requireArray<double>("count", maxArrayBytes / 8, "array"), maxArrayBytes / 8);
  EXPECT_EQ(detail::checkedProduct("rows", Index(1) << 31, Index(1) << 31), Index(1) << 62);
}

// --- Item 9: options checked in the scalar type they are used in --------------------------------

TEST(OptionsInTheScalarType, UoroEpsilon) {
  const GRU<float> cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 3});
  for (double epsilon : {1e-300, 1e-40, 1e300})
    expectError<ValueError>([&] { UORO<GRU<float>>(cell, {.epsilon = epsilon}); }, "UOROOptions::epsilon");
  // In double, 1e-300 is a normal number: the estimate stays finite.
  const GRU<double> doubleCell = sparseGru();
  UORO<GRU<double>> uoro(doubleCell, {.epsilon = 1e-300});
  runEngine(uoro, 0, 3);
  EXPECT_TRUE(uoro.stateEstimate().allFinite());
  EXPECT_TRUE(uoro.parameterEstimate().allFinite());
  EXPECT_TRUE(uoro.gradient().allFinite());
}

TEST(OptionsInTheScalarType, Optimizers) {
  expectError<ValueError>([] { Adam{.epsilon = 1e-50}.validate<float>(); }, "epsilon");
  expectError<ValueError>([] { Adam{.epsilon = 1e-40}.validate<float>(); }, "epsilon");  // subnormal
  EXPECT_NO_THROW(Adam{.epsilon = 1e-50}.validate<double>());
  expectError<ValueError>([] { SGD{.learningRate = 1e-50}.validate<float>(); }, "learningRate");
  expectError<ValueError>([] { Adam{.learningRate = 1e300}.validate<float>(); }, "learningRate");
  EXPECT_NO_THROW(SGD{.learningRate = 1e-50}.validate<double>());
  expectError<ValueError>([] { Adam{.beta2 = 1 - 1e-10}.validate<float>(); }, "beta2");  // 1 in float
  EXPECT_NO_THROW(Adam{.beta2 = 1 - 1e-10}.validate<double>());
  // update() checks them too, before anything changes.
  Vector<float> parameters = Vector<float>::Ones(3), gradient = Vector<float>::Ones(3);
  Adam::State<float> state(3);
  expectError<ValueError>([&] { Adam{.epsilon = 1e-50}.update<float>(state, parameters, gradient); }, "epsilon");
  SGD::State<float> none(3);
  expectError<ValueError>([&] { SGD{.learningRate = 1e-50}.update<float>(none, parameters, gradient); },
                          "learningRate");
  EXPECT_EQ(parameters, Vector<float>::Ones(3));
  EXPECT_EQ(state.steps, 0);
  EXPECT_EQ(state.first, Vector<float>::Zero(3));
}

TEST(OptionsInTheScalarType, TrainersOfFloatCells) {
  GRU<float> cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 3});
  Readout<float> readout(kHidden, 2);
  using T = Trainer<SnAp<GRU<float>>>;
  expectError<ValueError>([&] { T(cell, readout, Adam{.epsilon = 1e-50}); }, "epsilon");
  expectError<ValueError>([&] { T(cell, readout, SGD{.learningRate = 1e-50}); }, "learningRate");
  expectError<ValueError>([&] { T(cell, readout, SGD{}, {.clipNorm = 1e-50}); }, "TrainerOptions::clipNorm");
  // Adam's ε = 1e-50 on a double cell trains, with finite parameters from finite data.
  GRU<double> doubleCell = sparseGru();
  Readout<double> doubleReadout(kHidden, 2);
  Trainer<SnAp<GRU<double>>> trainer(doubleCell, doubleReadout, Adam{.epsilon = 1e-50});
  for (Index t = 0; t < 4; ++t) trainer.step(inputAt(t), t % 2);
  EXPECT_TRUE(doubleCell.parameters().allFinite());
}

TEST(OptionsInTheScalarType, MasksAreExactlyZeroOrOneBeforeConversion) {
  GRU<float> cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 3});
  const GRU<float> before = cell;
  RowMatrix<double> maskIh = cell.mask_ih().cast<double>(), maskHh = cell.mask_hh().cast<double>();
  maskIh(0, 0) = 1 + 1e-9;  // 1.0f once converted
  expectError<ValueError>([&] { cell.setMasks(maskIh, maskHh); }, "mask_ih");
  maskIh(0, 0) = 1;
  maskHh(1, 1) = 1e-60;  // 0.0f once converted
  expectError<ValueError>([&] { cell.setMasks(maskIh, maskHh); }, "mask_hh");
  EXPECT_EQ(cell.mask_ih(), before.mask_ih());
  EXPECT_EQ(cell.mask_hh(), before.mask_hh());
  EXPECT_EQ(cell.maskVersion(), before.maskVersion());
  EXPECT_EQ(cell.weight_hh(), before.weight_hh());
  // Integer masks are read as they are.
  Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> bytes =
      cell.mask_hh().cast<std::uint8_t>();
  bytes(0, 0) = 2;
  expectError<ValueError>([&] { cell.setMasks(cell.mask_ih(), bytes); }, "mask_hh");
}

TEST(OptionsInTheScalarType, SnApThresholdIsANumberAsRtrls) {
  const GRU<double> cell = sparseGru();
  expectError<ValueError>([&] { SnAp<GRU<double>>(cell, {.denseBlockAbove = kNaN}); }, "SnApOptions::denseBlockAbove");
  EXPECT_NO_THROW(SnAp<GRU<double>>(cell, {.denseBlockAbove = std::numeric_limits<double>::infinity()}));
}

TEST(OptionsInTheScalarType, ReadoutWeightsFiniteInFloat) {
  Readout<float> readout(kHidden, 2, 3);
  const Vector<float> parameters = readout.parameters();
  RowMatrix<double> weight = RowMatrix<double>::Zero(2, kHidden);
  weight(1, 2) = 1e300;
  expectError<ValueError>([&] { readout.setWeights(weight, Vector<double>::Zero(2)); }, "readout weights");
  EXPECT_EQ(readout.parameters(), parameters);
}

// --- Item 5: refused calls change nothing -------------------------------------------------------

/// An RNN whose h is tanh(10) ≈ 1 in every unit, and a readout whose logits are then +∞ and −∞.
struct OverflowingReadout {
  RNN<double> cell{kInputs, kHidden};
  Readout<double> readout{kHidden, 2, 4};
  OverflowingReadout() {
    const Index rows = cell.gateRows();
    cell.setWeights(RowMatrix<double>::Zero(rows, kInputs), RowMatrix<double>::Zero(rows, kHidden),
                    Vector<double>::Constant(rows, 10.0), Vector<double>::Zero(rows));
    RowMatrix<double> weight(2, kHidden);
    weight.row(0).setConstant(1e308);
    weight.row(1).setConstant(-1e308);
    readout.setWeights(weight, Vector<double>::Zero(2));
  }
};

TEST(RefusedCalls, ReadoutLossAndPredictLeaveTheReadoutAsItWas) {
  OverflowingReadout setup;
  Readout<double>& readout = setup.readout;
  const Vector<double> state = Vector<double>::Constant(kHidden, 0.5), quiet = Vector<double>::Zero(kHidden);
  Vector<double> delta = Vector<double>::Constant(kHidden, 7.0);
  readout.predict(quiet);  // p = (1/2, 1/2)
  const Vector<double> probabilities = readout.probabilities(), gradient = readout.gradient();
  expectError<NonFiniteError>([&] { readout.loss(state, 0, delta); }, "loss");
  expectError<NonFiniteError>([&] { readout.predict(state); }, "probabilities");
  EXPECT_EQ(readout.probabilities(), probabilities);
  EXPECT_EQ(readout.gradient(), gradient);
  EXPECT_EQ(delta, Vector<double>::Constant(kHidden, 7.0));
  expectError<UsageError>([&] { readout.commitLoss(); }, "commitLoss");
  // δ that overflows (W large, the logits finite: p ≈ (0, 1) for target 0, so δ_0 ≈ −2 W_00):
  // refused, nothing changed either.
  Readout<double> wide(kHidden, 2, 5);
  RowMatrix<double> weight = RowMatrix<double>::Zero(2, kHidden);
  weight(0, 0) = 1.5e308;
  weight(1, 0) = -1.5e308;
  wide.setWeights(weight, Vector<double>{{-50.0, 50.0}});
  Vector<double> nudged = quiet;
  nudged[0] = 1e-300;  // logits ±1.5e8: p = (1, 0)
  wide.predict(nudged);
  const Vector<double> wideProbabilities = wide.probabilities();
  expectError<NonFiniteError>([&] { wide.loss(quiet, 0, delta); }, "loss gradient");
  EXPECT_EQ(wide.probabilities(), wideProbabilities);
  EXPECT_EQ(wide.gradient(), Vector<double>::Zero(wide.gradient().size()));
}

TEST(RefusedCalls, TrainerObserveOfAnOverflowingLossChangesNothing) {
  const auto check = [&]<class Engine>(const typename Engine::Options& options) {
    SCOPED_TRACE(::testing::Message() << typeid(Engine).name());
    OverflowingReadout setup;
    Trainer<Engine> trainer(setup.cell, setup.readout, Adam{}, {.batch = 2}, options);
    for (Index t = 0; t < 2; ++t) {
      observeEach(trainer, [&](Index b) { return inputAt(t + 7 * b); }, [](Index) { return -1; });
      trainer.endStep();
    }
    const NpzArchive before = stateOf(trainer);
    const Vector<double> probabilities = setup.readout.probabilities();
    // Stream 1 scored (its loss overflows), stream 0 not: the whole batch step is refused.
    expectError<NonFiniteError>(
        [&] { observeEach(trainer, [&](Index b) { return inputAt(5 + b); }, [](Index b) { return b == 1 ? 1 : -1; }); },
        "loss");
    EXPECT_TRUE(sameArchive(stateOf(trainer), before));
    EXPECT_EQ(trainer.engine().steps(), 2);
    EXPECT_EQ(setup.readout.probabilities(), probabilities);
  };
  check.operator()<RTRL<RNN<double>>>({});
  check.operator()<SnAp<RNN<double>>>({.n = 2});
  check.operator()<UORO<RNN<double>>>({});
  check.operator()<BPTT<RNN<double>>>({.window = 3});
}

/// A built-in engine seen through the Engine concept only (no prepareStep/commitStep), as a
/// user's engine: the trainer then computes the step itself before stepping the engine.
template <class Inner>
class ConceptOnly {
public:
  using CellType = typename Inner::CellType;
  using Scalar = typename Inner::Scalar;
  using Options = typename Inner::Options;
  ConceptOnly(const CellType& cell, const Options& options, const Batch& batch = {}) : m_inner(cell, options, batch) {}
  const Matrix<Scalar>& step(const MatrixView<Scalar>& inputs) { return m_inner.step(inputs); }
  void accumulate(const MatrixView<Scalar>& deltas) { m_inner.accumulate(deltas); }
  const Vector<Scalar>& gradient() { return m_inner.gradient(); }
  void resetGradient() { m_inner.resetGradient(); }
  void resetState() { m_inner.resetState(); }
  void resetStream(Index stream) { m_inner.resetStream(stream); }
  const Matrix<Scalar>& state() const { return m_inner.state(); }
  const CellType& cell() const { return m_inner.cell(); }
  Index streams() const { return m_inner.streams(); }
  Index steps() const { return m_inner.steps(); }
  std::size_t bytes() const { return m_inner.bytes(); }
  void saveState(NpzArchive& archive, const std::string& prefix) const { m_inner.saveState(archive, prefix); }

private:
  Inner m_inner;
};

TEST(RefusedCalls, AnEngineWithoutPrepareStepIsSteppedOnlyAfterTheLossIsKnown) {
  OverflowingReadout setup;
  Trainer<ConceptOnly<SnAp<RNN<double>>>> trainer(setup.cell, setup.readout, Adam{}, {}, {.n = 2});
  trainer.observe(inputAt(0), -1);
  const NpzArchive before = stateOf(trainer);
  expectError<NonFiniteError>([&] { trainer.observe(inputAt(1), 1); }, "loss");
  EXPECT_TRUE(sameArchive(stateOf(trainer), before));
  EXPECT_EQ(trainer.engine().steps(), 1);
  // With a readout that scores finitely, both paths train the same.
  GRU<double> a = sparseGru(), b = sparseGru();
  Readout<double> ra(kHidden, 2, 4), rb(kHidden, 2, 4);
  Trainer<SnAp<GRU<double>>> direct(a, ra, Adam{.learningRate = 0.05}, {.updateEvery = 2});
  Trainer<ConceptOnly<SnAp<GRU<double>>>> wrapped(b, rb, Adam{.learningRate = 0.05}, {.updateEvery = 2});
  for (Index t = 0; t < 9; ++t) EXPECT_EQ(direct.step(inputAt(t), t % 2), wrapped.step(inputAt(t), t % 2));
  EXPECT_EQ(a.parameters(), b.parameters());
  EXPECT_EQ(ra.parameters(), rb.parameters());
}

TEST(RefusedCalls, PrepareStepChangesNothingUntilCommitStep) {
  forEachEngineType([&]<class Engine>(const typename Engine::Options& options) {
    SCOPED_TRACE(::testing::Message() << typeid(Engine).name());
    const GRU<double> cell = sparseGru();
    Engine engine(cell, options), straight(cell, options);
    runEngine(engine, 0, 3);
    runEngine(straight, 0, 3);
    expectError<UsageError>([&] { engine.commitStep(); }, "commitStep");
    const NpzArchive before = stateOf(engine);
    const Matrix<double> next = engine.prepareStep(inputAt(3));
    EXPECT_TRUE(sameArchive(stateOf(engine), before));
    engine.commitStep();
    EXPECT_EQ(engine.state(), next);
    expectError<UsageError>([&] { engine.commitStep(); }, "commitStep");
    engine.accumulate(deltaAt(3, cell.stateSize()));
    runEngine(straight, 3, 4);
    EXPECT_TRUE(sameArchive(stateOf(engine), stateOf(straight)));
    // A reset drops a prepared step.
    engine.prepareStep(inputAt(4));
    engine.resetState();
    expectError<UsageError>([&] { engine.commitStep(); }, "commitStep");
  });
}

TEST(RefusedCalls, TrainerUnderSkipStillTakesTheStepWithoutItsLoss) {
  // NonFinitePolicy::Skip keeps its documented behaviour: the state advances, no gradient.
  OverflowingReadout setup;
  Trainer<SnAp<RNN<double>>> trainer(setup.cell, setup.readout, Adam{}, {.nonFinite = NonFinitePolicy::Skip});
  EXPECT_EQ(trainer.observe(inputAt(0), 1), 0.0);
  EXPECT_EQ(trainer.engine().steps(), 1);
  EXPECT_EQ(trainer.skippedSteps(), 1);
  EXPECT_EQ(setup.readout.gradient(), Vector<double>::Zero(setup.readout.gradient().size()));
}

TEST(RefusedCalls, CopyTaskRecordOfABadLossChangesNothing) {
  CopyTask task({.seed = 3});
  const CopySequence first = task.next();
  task.record(first, 1.5);
  const CopySequence sequence = task.next();
  const NpzArchive before = stateOf(task);
  expectError<NonFiniteError>([&] { task.record(sequence, kNaN); }, "lossBits");
  expectError<NonFiniteError>([&] { task.record(sequence, std::numeric_limits<double>::infinity()); }, "lossBits");
  expectError<ValueError>([&] { task.record(sequence, -0.5); }, "lossBits");
  // A sequence longer than L: the task never draws one, and its records would not load again.
  const CopySequence longer(std::vector<int>(static_cast<std::size_t>(task.length() + 1), 0), 2);
  expectError<ValueError>([&] { task.record(longer, 0.5); }, "sequence");
  EXPECT_TRUE(sameArchive(stateOf(task), before));
  EXPECT_EQ(task.sequences(), 1);
  EXPECT_EQ(task.dataTime(), first.steps());
  EXPECT_EQ(task.curriculum().recentCount(), 1);
  // Counters at their largest refuse to wrap, and nothing moves either.
  task.restoreCounters(counterLimit - 1, 5);
  expectError<UsageError>([&] { task.record(sequence, 0.5); }, "data time");
  task.restoreCounters(5, counterLimit);
  expectError<UsageError>([&] { task.record(sequence, 0.5); }, "sequences");
  expectError<ValueError>([&] { task.restoreCounters(counterLimit + 1, 5); }, "dataTime");
  expectError<ValueError>([&] { task.restoreCounters(5, LLONG_MAX); }, "sequences");
  EXPECT_EQ(task.dataTime(), 5);
  EXPECT_EQ(task.curriculum().recentCount(), 1);
}

TEST(RefusedCalls, EngineStepWithABadInputAfterAMaskChangeKeepsTheGradient) {
  forEachEngineType([&]<class Engine>(const typename Engine::Options& options) {
    SCOPED_TRACE(::testing::Message() << typeid(Engine).name());
    GRU<double> cell = sparseGru();
    Engine engine(cell, options);
    runEngine(engine, 0, 4);
    const Index p = cell.parameterCount();
    cell.setMasks(cell.mask_ih(), swappedMask(cell));
    ASSERT_EQ(cell.parameterCount(), p);
    // (BPTT's gradient reads the cell's current weights: taken after the mask change.)
    const Vector<double> gradient = engine.gradient();
    const Matrix<double> state = engine.state();
    EXPECT_NE(gradient, Vector<double>::Zero(p));
    Vector<double> nan = inputAt(4);
    nan[1] = kNaN;
    expectError<ShapeError>([&] { engine.step(Vector<double>::Ones(kInputs + 1)); }, "input");
    expectError<ShapeError>([&] { engine.step(Vector<double>::Ones(kInputs - 1)); }, "input");
    expectError<NonFiniteError>([&] { engine.step(nan); }, "input");
    EXPECT_EQ(engine.gradient(), gradient);
    EXPECT_EQ(engine.state(), state);
    EXPECT_EQ(engine.steps(), 4);
    // The next good step rebuilds for the new masks, as before.
    engine.step(inputAt(4));
    EXPECT_EQ(engine.gradient(), Vector<double>::Zero(p));
  });
}

TEST(RefusedCalls, OptimizerUpdatesCheckLengthsAndSteps) {
  Vector<double> parameters = Vector<double>::Ones(3);
  Adam::State<double> state(3);
  const Adam adam;
  expectError<ShapeError>([&] { adam.update<double>(state, parameters, Vector<double>::Ones(2)); }, "gradient");
  Adam::State<double> small(2);
  expectError<ShapeError>([&] { adam.update<double>(small, parameters, Vector<double>::Ones(3)); }, "optimizer state");
  state.steps = LLONG_MAX;
  expectError<UsageError>([&] { adam.update<double>(state, parameters, Vector<double>::Ones(3)); }, "Adam steps");
  SGD::State<double> none(3);
  expectError<ShapeError>([&] { SGD{}.update<double>(none, parameters, Vector<double>::Ones(4)); }, "gradient");
  EXPECT_EQ(parameters, Vector<double>::Ones(3));
  EXPECT_EQ(state.first, Vector<double>::Zero(3));
  EXPECT_EQ(state.second, Vector<double>::Zero(3));
}

TEST(RefusedCalls, AnUpdateWhoseParametersOverflowKeepsTheOptimizerState) {
  // Adam's first moment at 1e307 (from a checkpoint): m̂ = m / (1 − β1) overflows, and so do the
  // new parameters. The refused update keeps the moments, the step count and the open step.
  GRU<double> cell = sparseGru();
  Readout<double> readout(kHidden, 2, 4);
  Trainer<SnAp<GRU<double>>> trainer(cell, readout, Adam{});
  NpzArchive archive = stateOf(trainer);
  archive["optimizer/cell/first"] = NpyArray::of(Vector<double>::Constant(cell.parameterCount(), 1e307));
  trainer.loadState(archive);
  trainer.observe(inputAt(0), 1);
  const NpzArchive before = stateOf(trainer);
  expectError<NonFiniteError>([&] { trainer.endStep(); }, "parameters");
  EXPECT_TRUE(sameArchive(stateOf(trainer), before));
  expectError<NonFiniteError>([&] { trainer.update(); }, "parameters");
  EXPECT_TRUE(sameArchive(stateOf(trainer), before));
  EXPECT_EQ(trainer.pendingSteps(), 0);
  EXPECT_EQ(trainer.updates(), 0);
}

// --- Item 7: the trainer never applies the gradient of old masks --------------------------------

TEST(StaleGradient, MaskChangeBetweenAccumulationAndUpdateIsRefused) {
  GRU<double> cell = sparseGru();
  Readout<double> readout(kHidden, 2, 4);
  Trainer<SnAp<GRU<double>>> trainer(cell, readout, SGD{.learningRate = 0.5}, {.updateEvery = 100});
  for (Index t = 0; t < 3; ++t) trainer.step(inputAt(t), t % 2);
  std::pair<Index, Index> restored;
  const Index p = cell.parameterCount();
  cell.setMasks(cell.mask_ih(), swappedMask(cell, &restored));
  ASSERT_EQ(cell.parameterCount(), p);
  const GRU<double> before = cell;
  const Vector<double> readoutBefore = readout.parameters();
  expectError<UsageError>([&] { trainer.update(); }, "cell");
  expectError<UsageError>([&] { trainer.observe(inputAt(3), 1); }, "cell");
  expectError<UsageError>([&] { stateOf(trainer); }, "cell");
  EXPECT_EQ(cell.weight_hh()(restored.first, restored.second), 0.0);  // the newly unmasked weight
  EXPECT_EQ(cell.tensors().weight_hh, before.weight_hh());
  EXPECT_EQ(cell.tensors().weight_ih, before.weight_ih());
  EXPECT_EQ(readout.parameters(), readoutBefore);
  EXPECT_EQ(trainer.updates(), 0);
  // A trainer built for the new masks trains them, the restored weight included.
  Trainer<SnAp<GRU<double>>> retrained(cell, readout, SGD{.learningRate = 0.5});
  for (Index t = 0; t < 3; ++t) retrained.step(inputAt(t), t % 2);
  EXPECT_EQ(retrained.updates(), 3);
  EXPECT_NE(cell.weight_hh()(restored.first, restored.second), 0.0);
}

TEST(StaleGradient, MaskChangeWithANewParameterCountIsRefusedAlike) {
  GRU<double> cell = sparseGru();
  Readout<double> readout(kHidden, 2, 4);
  Trainer<RTRL<GRU<double>>> trainer(cell, readout, Adam{});
  trainer.step(inputAt(0), 1);
  const NpzArchive before = stateOf(trainer);
  cell.setMasks(cell.mask_ih(), RowMatrix<double>::Ones(cell.gateRows(), kHidden));
  expectError<UsageError>([&] { trainer.observe(inputAt(1), 0); }, "cell");
  // A checkpoint of the masks the trainer had restores it, and it goes on.
  trainer.loadState(before);
  EXPECT_TRUE(sameArchive(stateOf(trainer), before));
  EXPECT_NO_THROW(trainer.step(inputAt(1), 0));
}

// --- Item 6: after setMasks keeping p, a saved and loaded run goes on as the straight run -------

TEST(ResumeAfterMaskChange, AnEngineSavedBeforeItsRebuildResumesExactly) {
  forEachEngineType([&]<class Engine>(const typename Engine::Options& options) {
    SCOPED_TRACE(::testing::Message() << typeid(Engine).name());
    GRU<double> cell = sparseGru();
    Engine straight(cell, options);
    runEngine(straight, 0, 4);
    cell.setMasks(cell.mask_ih(), swappedMask(cell));
    const NpzArchive saved = stateOf(straight);
    GRU<double> copy = cell;  // the same tensors and masks, as a fresh process would load them
    Engine resumed(copy, options);
    resumed.loadState(saved, "");
    EXPECT_TRUE(sameArchive(stateOf(resumed), saved));
    runEngine(straight, 4, 10);
    runEngine(resumed, 4, 10);
    EXPECT_EQ(straight.gradient(), resumed.gradient());
    EXPECT_TRUE(sameArchive(stateOf(straight), stateOf(resumed)));
  });
}

TEST(ResumeAfterMaskChange, ATrainerBuiltAfterSetMasksResumesExactly) {
  const auto check = [&]<class Engine>(const typename Engine::Options& options) {
    SCOPED_TRACE(::testing::Message() << typeid(Engine).name());
    const auto run = [](Trainer<Engine>& trainer, Index from, Index to) {
      for (Index t = from; t < to; ++t) {
        observeEach(trainer, [&](Index b) { return inputAt(t + 11 * b); },
                    [&](Index b) { return (t + b) % 3 == 0 ? Index(-1) : (t + b) % 2; });
        trainer.endStep();
        if (t % 5 == 4) trainer.resetStream(t % 2);
      }
    };
    GRU<double> cell = sparseGru();
    cell.setMasks(cell.mask_ih(), swappedMask(cell));
    Readout<double> readout(kHidden, 2, 4);
    Trainer<Engine> straight(cell, readout, Adam{.learningRate = 0.05}, {.batch = 2, .updateEvery = 3}, options);
    run(straight, 0, 8);
    const NpzArchive saved = stateOf(straight);
    run(straight, 8, 20);
    GRU<double> fresh = sparseGru();  // the masks it is built with, before the checkpoint's
    Readout<double> freshReadout(kHidden, 2, 4);
    Trainer<Engine> resumed(fresh, freshReadout, Adam{.learningRate = 0.05}, {.batch = 2, .updateEvery = 3}, options);
    resumed.loadState(saved);
    EXPECT_EQ(fresh.mask_hh(), cell.mask_hh());
    run(resumed, 8, 20);
    EXPECT_TRUE(sameArchive(stateOf(straight), stateOf(resumed)));
    EXPECT_EQ(fresh.parameters(), cell.parameters());
  };
  check.operator()<RTRL<GRU<double>>>({});
  check.operator()<SnAp<GRU<double>>>({.n = 2});
  check.operator()<UORO<GRU<double>>>({.seed = 2});
  check.operator()<BPTT<GRU<double>>>({.window = 3});
}

}  // namespace
}  // namespace snap::test
