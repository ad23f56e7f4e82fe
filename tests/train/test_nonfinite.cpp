// The trainer's non-finite policy (docs/reliability.md): a NaN or an infinity in an input, a
// next state, a loss or a gradient is caught where it enters; NonFinitePolicy::Throw throws and
// changes nothing, NonFinitePolicy::Skip skips and counts, leaving parameters, engine state and
// optimizer state untouched.

#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "../support/archive.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInfinity = std::numeric_limits<float>::infinity();

/// A GRU trainer fed a short deterministic stream: input(t), target(t).
template <class Engine = SnAp<GRU<float>>>
struct Fixture {
  GRU<float> cell{3, 6, {.recurrentDensity = 0.5, .seed = 11}};
  Readout<float> readout{6, 2, 12};
  Trainer<Engine> trainer;
  explicit Fixture(NonFinitePolicy policy, Index batch = 1, const typename Engine::Options& options = {})
      : trainer(cell, readout, Adam{.learningRate = 0.01}, {.batch = batch, .nonFinite = policy}, options) {}

  static Vector<float> input(int t) {
    Random random(static_cast<std::uint64_t>(100 + t));
    return randomVector(random, 3).cast<float>();
  }
  static Index target(int t) { return t % 4 == 0 ? -1 : t % 2; }
  /// Everything training changes: parameters, optimizer moments, engine states, counters.
  NpzArchive state() const { return stateOf(trainer); }
  /// Readout weights so large that δ = Wᵀ(p − onehot) is finite but the cell gradient's square
  /// overflows in float (what would put an infinity into Adam's second moment).
  void hugeReadout() {
    RowMatrix<float> w(2, 6);
    w.row(0).setConstant(1e30f);
    w.row(1).setConstant(-1e30f);
    readout.setWeights(w, Vector<float>::Zero(2));
  }
};

/// The parameters and optimizer state, without the counters of skipped steps and updates.
NpzArchive trainedState(NpzArchive archive) {
  archive.erase("skipped_steps");
  archive.erase("skipped_updates");
  return archive;
}

TEST(NonFinitePolicy, SkippingAnInputIsAsIfTheStepHadNotBeenTaken) {
  // B = 1, an update every step: the run with a NaN input at step 5 ends bit-identical to the
  // run without step 5, but for the count.
  for (float bad : {kNaN, kInfinity, -kInfinity}) {
    SCOPED_TRACE(::testing::Message() << "value " << bad);
    Fixture<> skipping(NonFinitePolicy::Skip), clean(NonFinitePolicy::Skip);
    for (int t = 0; t < 12; ++t) {
      Vector<float> x = Fixture<>::input(t);
      if (t == 5) {
        x[1] = bad;
        EXPECT_EQ(skipping.trainer.step(x, Fixture<>::target(t)), 0.0f);
        continue;
      }
      EXPECT_EQ(skipping.trainer.step(x, Fixture<>::target(t)), clean.trainer.step(x, Fixture<>::target(t)));
    }
    EXPECT_EQ(skipping.trainer.skippedSteps(), 1);
    EXPECT_EQ(skipping.trainer.skipped(), 1);
    EXPECT_EQ(skipping.trainer.updates(), 11);
    EXPECT_EQ(skipping.cell.parameters(), clean.cell.parameters());
    EXPECT_TRUE(sameArchive(trainedState(skipping.state()), trainedState(clean.state())));
  }
}

TEST(NonFinitePolicy, ThrowingOnAnInputChangesNothing) {
  Fixture<> setup(NonFinitePolicy::Throw);
  for (int t = 0; t < 5; ++t) setup.trainer.step(Fixture<>::input(t), Fixture<>::target(t));
  const NpzArchive before = setup.state();
  Vector<float> x = Fixture<>::input(5);
  x[0] = kNaN;
  EXPECT_THROW(setup.trainer.step(x, 1), NonFiniteError);
  EXPECT_TRUE(sameArchive(setup.state(), before));
  EXPECT_EQ(setup.trainer.skipped(), 0);
}

TEST(NonFinitePolicy, ANonFiniteInputOfOneStreamSkipsTheBatchStep) {
  // B = 2: the streams advance together, so the batch step is skipped as a whole (counted
  // once) and the batch step does not count: no update, no stream moved.
  Fixture<> setup(NonFinitePolicy::Skip, 2);
  Matrix<float> inputs(3, 2);
  inputs << Fixture<>::input(0), Fixture<>::input(0);
  inputs(2, 0) = kInfinity;
  const NpzArchive before = setup.state();
  EXPECT_EQ(setup.trainer.observe(inputs, std::vector<Index>{1, 1}), 0.0f);
  EXPECT_FALSE(setup.trainer.endStep());
  EXPECT_EQ(setup.trainer.skippedSteps(), 1);
  EXPECT_EQ(setup.trainer.updates(), 0);
  EXPECT_EQ(setup.trainer.engine().steps(), 0);
  EXPECT_TRUE(sameArchive(trainedState(setup.state()), trainedState(before)));
  // The next finite batch step trains both streams.
  inputs(2, 0) = 0.5f;
  setup.trainer.observe(inputs, std::vector<Index>{1, 0});
  EXPECT_TRUE(setup.trainer.endStep());
  EXPECT_EQ(setup.trainer.updates(), 1);
}

TEST(NonFinitePolicy, AGradientThatOverflowsSkipsTheUpdate) {
  Fixture<> setup(NonFinitePolicy::Skip);
  for (int t = 1; t < 4; ++t) setup.trainer.step(Fixture<>::input(t), Fixture<>::target(t));
  setup.hugeReadout();
  const NpzArchive before = setup.state();
  setup.trainer.observe(Fixture<>::input(5), 1);
  EXPECT_FALSE(setup.trainer.endStep());
  EXPECT_EQ(setup.trainer.skippedUpdates(), 1);
  EXPECT_EQ(setup.trainer.skippedSteps(), 0);
  EXPECT_EQ(setup.trainer.updates(), 3);
  // Parameters and Adam's moments are those before the refused update; the gradients are cleared.
  const NpzArchive after = setup.state();
  for (const char* name : {"cell/weight_ih", "cell/weight_hh", "cell/bias_ih", "cell/bias_hh", "readout/weight",
                           "readout/bias", "optimizer/cell/first", "optimizer/cell/second", "optimizer/cell/steps",
                           "optimizer/readout/first", "optimizer/readout/second", "optimizer/readout/steps"})
    EXPECT_EQ(after.at(name).bytes, before.at(name).bytes) << name;
  EXPECT_EQ(setup.trainer.engine().gradient(), Vector<float>::Zero(setup.cell.parameterCount()));
  EXPECT_EQ(setup.readout.gradient(), Vector<float>::Zero(setup.readout.parameters().size()));
  EXPECT_EQ(setup.trainer.pendingSteps(), 0);
}

TEST(NonFinitePolicy, AGradientThatOverflowsThrowsAndKeepsEverything) {
  Fixture<> setup(NonFinitePolicy::Throw);
  setup.trainer.step(Fixture<>::input(1), Fixture<>::target(1));
  setup.hugeReadout();
  setup.trainer.observe(Fixture<>::input(2), 1);
  const NpzArchive before = setup.state();
  EXPECT_THROW(setup.trainer.endStep(), NonFiniteError);
  // The refused update leaves the step open: pending steps and the batch step's flags too.
  EXPECT_TRUE(sameArchive(setup.state(), before));
  EXPECT_NE(setup.trainer.engine().gradient(), Vector<float>::Zero(setup.cell.parameterCount()));
}

TEST(NonFinitePolicy, ANextStateThatOverflowsSkipsTheStep) {
  // Finite input and weights whose preactivations overflow to −∞ and +∞ (docs/math.md §1, RNN).
  RNN<double> cell(1, 1);
  cell.setWeights(RowMatrix<double>::Constant(1, 1, -10.0), RowMatrix<double>::Constant(1, 1, 1e308),
                  Vector<double>::Zero(1), Vector<double>::Constant(1, 1e308));
  Readout<double> readout(1, 2);
  Trainer<RTRL<RNN<double>>> trainer(cell, readout, SGD{}, {.nonFinite = NonFinitePolicy::Skip});
  trainer.engine().resetState(Vector<double>::Ones(1));
  const NpzArchive before = stateOf(trainer.engine());
  EXPECT_EQ(trainer.observe(Vector<double>::Constant(1, 1e308), 1), 0.0);
  EXPECT_EQ(trainer.skippedSteps(), 1);
  EXPECT_TRUE(sameArchive(stateOf(trainer.engine()), before));
  EXPECT_FALSE(trainer.endStep());  // nothing was observed: the batch step does not count
  EXPECT_EQ(trainer.pendingSteps(), 0);
}

TEST(NonFinitePolicy, ALossThatOverflowsSkipsTheStepsContribution) {
  // Readout logits that overflow (float): the state has advanced (it is finite), but neither
  // the readout nor the engine receives a gradient from this step.
  Fixture<RTRL<GRU<float>>> setup(NonFinitePolicy::Skip);
  RowMatrix<float> w(2, 6);
  w.row(0).setConstant(3e38f);
  w.row(1).setConstant(-3e38f);
  setup.readout.setWeights(w, Vector<float>::Zero(2));
  const Vector<float> x = Vector<float>::Constant(3, 5.0f);  // drives h towards ±1
  for (int t = 0; t < 3; ++t) setup.trainer.observe(x, -1);
  setup.trainer.observe(x, 0);
  EXPECT_EQ(setup.trainer.skippedSteps(), 1);
  EXPECT_EQ(setup.trainer.engine().steps(), 4);
  EXPECT_EQ(setup.readout.gradient(), Vector<float>::Zero(setup.readout.parameters().size()));
  EXPECT_EQ(setup.trainer.engine().gradient(), Vector<float>::Zero(setup.cell.parameterCount()));
  Fixture<RTRL<GRU<float>>> throwing(NonFinitePolicy::Throw);
  throwing.readout.setWeights(w, Vector<float>::Zero(2));
  for (int t = 0; t < 3; ++t) throwing.trainer.observe(x, -1);
  EXPECT_THROW(throwing.trainer.observe(x, 0), NonFiniteError);
}

}  // namespace
}  // namespace snap::test
