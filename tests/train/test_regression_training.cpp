// The trainer over real targets (Trainer<Engine, RegressionReadout>): exactly the gradients of an
// engine and a readout run by hand, random feedback with RFLO (Murray 2019), the per-stream
// flags of scored targets, refusals that change nothing, checkpoints, and a GRU trained with
// RTRL on the adding problem against the constant prediction's loss.

#include <gtest/gtest.h>

#include <array>
#include <limits>
#include <vector>

#include <snap/tasks/adding_task.hpp>
#include <snap/train/regression_readout.hpp>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

template <class Engine>
using RegressionTrainer = Trainer<Engine, RegressionReadout<typename Engine::Scalar>>;

/// The batch's inputs at step t of its sequences (stream b in column b), and their targets.
void fill(const std::vector<AddingSequence>& sequences, Index t, Matrix<double>& inputs, Matrix<double>& targets) {
  for (std::size_t b = 0; b < sequences.size(); ++b) {
    sequences[b].input(t, inputs.col(static_cast<Index>(b)));
    targets(0, static_cast<Index>(b)) = sequences[b].target();
  }
}

/// A trainer of one readout type and a copy of its cell and readout stepped by hand, with SGD
/// and one update per sequence: the trainer's engine gradient, readout gradient, states,
/// losses and parameters must be the hand-run ones bit for bit, step by step. `lossOf(readout,
/// output, sequence, δ)` scores the last step by hand; `observeLast(trainer, x, sequence)` by the trainer.
template <class Engine, class ReadoutType, class MakeCell, class HandLoss, class TrainerLoss>
void expectTheHandRunsGradients(MakeCell makeCell, const ReadoutType& initial, HandLoss lossOf, TrainerLoss observeLast) {
  using Cell = typename Engine::CellType;
  Cell cell = makeCell(), handCell = makeCell();
  ReadoutType readout = initial, handReadout = initial;
  constexpr double eta = 0.2;
  Trainer<Engine, ReadoutType> trainer(cell, readout, SGD{.learningRate = eta}, {.schedule = UpdateSchedule::PerSequence});
  Engine engine(handCell);
  AddingTask task({.length = 5, .seed = 6});
  Vector<double> x(2), delta(handCell.outputSize());
  for (int sequence = 0; sequence < 3; ++sequence) {
    const AddingSequence s = task.next();
    for (Index t = 0; t < s.length(); ++t) {
      s.input(t, x);
      if (s.scored(t)) {
        const double loss = observeLast(trainer, x, s);
        engine.step(x);
        EXPECT_EQ(loss, lossOf(handReadout, Vector<double>(engine.outputs().col(0)), s, delta));
        engine.accumulate(delta);
      } else {
        EXPECT_EQ(trainer.observe(x), 0.0);
        engine.step(x);
      }
      trainer.endStep();
      ASSERT_EQ(trainer.engine().state(), engine.state()) << "sequence " << sequence << ", step " << t;
      ASSERT_EQ(trainer.engine().gradient(), engine.gradient()) << "sequence " << sequence << ", step " << t;
      ASSERT_EQ(readout.gradient(), handReadout.gradient()) << "sequence " << sequence << ", step " << t;
    }
    trainer.endSequence();
    Vector<double> theta = handCell.parameters();
    theta -= eta * engine.gradient();
    handCell.setParameters(theta);
    handReadout.parameters() -= eta * handReadout.gradient();
    engine.resetGradient();
    handReadout.resetGradient();
    engine.resetState();
    ASSERT_EQ(cell.parameters(), handCell.parameters()) << "after sequence " << sequence;
    ASSERT_EQ(readout.parameters(), handReadout.parameters()) << "after sequence " << sequence;
  }
  EXPECT_EQ(trainer.updates(), 3);
  EXPECT_EQ(readout.feedback(), initial.feedback());  // never trained
}

/// The regression readout scored by hand and by the trainer.
double handRegression(RegressionReadout<double>& readout, const Vector<double>& y, const AddingSequence& s,
                      Vector<double>& delta) {
  const double loss = readout.loss(y, Vector<double>::Constant(1, s.target()), delta);
  // δ = Wᵀ e, or B e with random feedback: written out.
  const Vector<double> error = readout.prediction() - Vector<double>::Constant(1, s.target());
  const Vector<double> expected = readout.options().feedback == Feedback::Random
                                      ? Vector<double>(readout.feedback() * error)
                                      : Vector<double>(readout.weight().transpose() * error);
  EXPECT_EQ(delta, expected);
  return loss;
}
template <class TrainerType>
double trainerRegression(TrainerType& trainer, const Vector<double>& x, const AddingSequence& s) {
  return trainer.observe(x, Vector<double>::Constant(1, s.target()));
}

TEST(RegressionTraining, TheTrainersGradientsAreTheHandRunEnginesAndReadoutsExactly) {
  const auto gru = [] { return GRU<double>(2, 6, {.recurrentDensity = 0.5, .seed = 3}); };
  expectTheHandRunsGradients<RTRL<GRU<double>>>(gru, RegressionReadout<double>(6, 1, 4), handRegression,
                                                trainerRegression<RegressionTrainer<RTRL<GRU<double>>>>);
  expectTheHandRunsGradients<SnAp<GRU<double>>>(gru, RegressionReadout<double>(6, 1, 4), handRegression,
                                                trainerRegression<RegressionTrainer<SnAp<GRU<double>>>>);
}

TEST(RegressionTraining, RandomFeedbackWithRFLO) {
  // Murray's setting: a leaky RNN, RFLO's traces, and δ = B (ŷ − target) with B fixed.
  const auto leaky = [] { return RNN<double>(2, 5, {.seed = 7}, {.leak = 0.3}); };
  const RegressionReadout<double> regression(5, 1, 8, {.feedback = Feedback::Random});
  expectTheHandRunsGradients<RFLO<RNN<double>>>(leaky, regression, handRegression,
                                                trainerRegression<RegressionTrainer<RFLO<RNN<double>>>>);
  // And with the classification readout: δ = B (p − onehot), the class "sum > 1".
  const Readout<double> classes(5, 2, 9, {.feedback = Feedback::Random});
  const auto classOf = [](const AddingSequence& s) { return static_cast<Index>(s.target() > 1.0); };
  expectTheHandRunsGradients<RFLO<RNN<double>>>(
      leaky, classes,
      [&](Readout<double>& readout, const Vector<double>& y, const AddingSequence& s, Vector<double>& delta) {
        const double loss = readout.loss(y, classOf(s), delta);
        Vector<double> error = readout.probabilities();
        error[classOf(s)] -= 1;
        EXPECT_EQ(delta, Vector<double>(readout.feedback() * error));
        return loss;
      },
      [&](Trainer<RFLO<RNN<double>>>& trainer, const Vector<double>& x, const AddingSequence& s) {
        return trainer.observe(x, classOf(s));
      });
}

TEST(RegressionTraining, UnscoredStreamsAreNotRead) {
  // B = 2, stream 1 unscored: a NaN in its target column changes nothing, and the flags may
  // come as a span or a std::vector<bool>.
  auto run = [](double unscoredTarget, bool asVector) {
    GRU<double> cell(2, 4, {.seed = 1});
    RegressionReadout<double> readout(4, 1, 2);
    RegressionTrainer<RTRL<GRU<double>>> trainer(cell, readout, Adam{.learningRate = 0.01}, {.batch = 2});
    Random random(3);
    Matrix<double> inputs(2, 2), targets(1, 2);
    for (int t = 0; t < 6; ++t) {
      for (Index i = 0; i < inputs.size(); ++i) inputs(i) = random.uniform(-1.0, 1.0);
      targets << random.uniform(), unscoredTarget;
      const std::array<bool, 2> scored{true, false};
      const double loss = asVector ? trainer.observe(inputs, targets, std::vector<bool>{true, false})
                                   : trainer.observe(inputs, targets, scored);
      EXPECT_EQ(trainer.losses()[1], 0.0);
      EXPECT_EQ(loss, trainer.losses()[0]);
      EXPECT_GT(loss, 0.0);
      trainer.endStep();
    }
    EXPECT_EQ(trainer.updates(), 6);
    return stateOf(trainer);
  };
  const NpzArchive reference = run(0.5, false);
  EXPECT_TRUE(sameArchive(run(kNaN, false), reference));
  EXPECT_TRUE(sameArchive(run(123.0, true), reference));
}

TEST(RegressionTraining, RefusalsChangeNothing) {
  GRU<double> cell(2, 4, {.seed = 1});
  RegressionReadout<double> readout(4, 1, 2);
  RegressionTrainer<RTRL<GRU<double>>> trainer(cell, readout, Adam{.learningRate = 0.01}, {.batch = 2});
  const Matrix<double> inputs = Matrix<double>::Constant(2, 2, 0.5), targets = Matrix<double>::Ones(1, 2);
  trainer.observe(inputs, targets);
  const NpzArchive before = stateOf(trainer);
  const std::array<bool, 2> both{true, true};
  const std::array<bool, 3> three{true, true, true};
  expectError<ShapeError>([&] { trainer.observe(inputs, Matrix<double>::Ones(2, 2)); }, "targets");
  expectError<ShapeError>([&] { trainer.observe(inputs, Matrix<double>::Ones(1, 3)); }, "targets");
  expectError<ShapeError>([&] { trainer.observe(inputs, targets, three); }, "scored");
  expectError<ShapeError>([&] { trainer.observe(inputs, targets, std::vector<bool>{true}); }, "scored");
  expectError<ShapeError>([&] { trainer.observe(Matrix<double>::Ones(3, 2), targets, both); }, "inputs");
  expectError<ShapeError>([&] { trainer.observe(Matrix<double>::Ones(2, 1)); }, "inputs");
  Matrix<double> bad = targets;
  bad(0, 1) = kNaN;
  expectError<NonFiniteError>([&] { trainer.observe(inputs, bad); }, "targets[1]");
  expectError<NonFiniteError>([&] { trainer.observe(inputs, bad, both); }, "targets[1]");
  Matrix<double> badInputs = inputs;
  badInputs(1, 0) = kNaN;
  expectError<NonFiniteError>([&] { trainer.observe(badInputs, targets); }, "inputs");
  expectError<NonFiniteError>([&] { trainer.observe(badInputs); }, "inputs");
  EXPECT_TRUE(sameArchive(stateOf(trainer), before));

  // One stream: the singular names.
  GRU<double> one(2, 4, {.seed = 1});
  RegressionReadout<double> oneReadout(4, 1, 2);
  RegressionTrainer<RTRL<GRU<double>>> single(one, oneReadout, Adam{.learningRate = 0.01});
  const NpzArchive singleBefore = stateOf(single);
  expectError<NonFiniteError>([&] { single.observe(Vector<double>::Zero(2), Vector<double>::Constant(1, kNaN)); },
                              "target");
  expectError<ShapeError>([&] { single.observe(Vector<double>::Zero(2), Vector<double>::Zero(2)); }, "target");
  EXPECT_TRUE(sameArchive(stateOf(single), singleBefore));

  // The trainer refuses a readout of another hidden size.
  RegressionReadout<double> wrong(5, 1);
  expectError<ShapeError>([&] { RegressionTrainer<RTRL<GRU<double>>>(cell, wrong, SGD{}); }, "readout");
}

TEST(RegressionTraining, ANonFiniteTargetIsSkippedWithTheSkipPolicy) {
  GRU<double> cell(2, 4, {.seed = 1});
  RegressionReadout<double> readout(4, 1, 2);
  RegressionTrainer<RTRL<GRU<double>>> trainer(cell, readout, Adam{.learningRate = 0.01},
                                               {.batch = 2, .nonFinite = NonFinitePolicy::Skip});
  Matrix<double> targets(1, 2);
  targets << 0.5, kNaN;
  const double loss = trainer.observe(Matrix<double>::Constant(2, 2, 0.5), targets);
  EXPECT_EQ(trainer.skippedSteps(), 1);
  EXPECT_EQ(trainer.losses()[1], 0.0);
  EXPECT_GT(loss, 0.0);
  EXPECT_EQ(trainer.engine().steps(), 1);
  EXPECT_TRUE(trainer.endStep());
}

TEST(RegressionTraining, AnUnscoredObserveIsTargetsOfMinusOneForAReadout) {
  auto run = [](bool unscoredOverload) {
    GRU<double> cell(2, 4, {.seed = 1});
    Readout<double> readout(4, 3, 2);
    Trainer<SnAp<GRU<double>>> trainer(cell, readout, Adam{.learningRate = 0.01}, {.batch = 2});
    for (int t = 0; t < 6; ++t) {
      const Matrix<double> inputs = Matrix<double>::Constant(2, 2, 0.1 * t);
      if (t % 2 == 0) {
        trainer.step(inputs, std::vector<Index>{t % 3, 1});
      } else if (unscoredOverload) {
        EXPECT_EQ(trainer.step(inputs), 0.0);
      } else {
        trainer.step(inputs, std::vector<Index>{-1, -1});
      }
    }
    return stateOf(trainer);
  };
  EXPECT_TRUE(sameArchive(run(true), run(false)));
}

// --- Checkpoints ---

/// A regression trainer over B = 2 streams of the adding task, updated online every 3 steps.
template <class Engine>
struct AddingRun {
  using Cell = typename Engine::CellType;
  Cell cell;
  RegressionReadout<double> readout;
  RegressionTrainer<Engine> trainer;
  AddingTask task{{.length = 5, .seed = 12}};

  AddingRun(Cell initialCell, std::uint64_t readoutSeed, Feedback feedback)
      : cell(std::move(initialCell)),
        readout(cell.outputSize(), 1, readoutSeed, {.feedback = feedback}),
        trainer(cell, readout, Adam{.learningRate = 0.02}, {.batch = 2, .updateEvery = 3}) {}

  void sequences(int count) {
    Matrix<double> inputs(2, 2), targets(1, 2);
    for (int i = 0; i < count; ++i) {
      const std::vector<AddingSequence> batch{task.next(), task.next()};
      for (Index t = 0; t < task.length(); ++t) {
        fill(batch, t, inputs, targets);
        if (batch[0].scored(t)) trainer.observe(inputs, targets); else trainer.observe(inputs);
        trainer.endStep();
      }
      trainer.endSequence();
    }
  }
  NpzArchive save() const {
    NpzArchive archive;
    trainer.saveState(archive, "trainer/");
    task.saveState(archive, "task/");
    return archive;
  }
  void load(const NpzArchive& archive) {
    trainer.loadState(archive, "trainer/");
    task.loadState(archive, "task/");
  }
};

template <class Engine>
void expectResumesExactly(const typename Engine::CellType& cell, const typename Engine::CellType& otherCell,
                          Feedback feedback) {
  AddingRun<Engine> run(cell, 4, feedback);
  run.sequences(3);
  const NpzArchive saved = run.save();
  EXPECT_EQ(saved.count("trainer/readout/feedback"), feedback == Feedback::Random ? 1U : 0U);
  run.sequences(3);
  AddingRun<Engine> resumed(otherCell, 5, feedback);  // other weights, other B
  resumed.load(saved);
  EXPECT_TRUE(sameArchive(resumed.save(), saved));
  resumed.sequences(3);
  EXPECT_TRUE(sameArchive(resumed.save(), run.save()));
  EXPECT_EQ(resumed.readout.feedback(), run.readout.feedback());
}

TEST(RegressionCheckpoints, ATrainerAndItsTaskResumeBitForBit) {
  for (Feedback feedback : {Feedback::Symmetric, Feedback::Random}) {
    SCOPED_TRACE(feedback == Feedback::Random ? "random feedback" : "symmetric feedback");
    expectResumesExactly<RTRL<GRU<double>>>(GRU<double>(2, 5, {.recurrentDensity = 0.5, .seed = 1}),
                                            GRU<double>(2, 5, {.recurrentDensity = 0.5, .seed = 2}), feedback);
    expectResumesExactly<RFLO<RNN<double>>>(RNN<double>(2, 5, {.seed = 1}, {.leak = 0.5}),
                                            RNN<double>(2, 5, {.seed = 2}, {.leak = 0.5}), feedback);
  }
  // A cell that is not gated: the LRU (output y of o = 3 values).
  expectResumesExactly<SnAp<LRU<double>>>(LRU<double>(2, 4, {.outputSize = 3, .skip = false, .seed = 1}),
                                          LRU<double>(2, 4, {.outputSize = 3, .skip = false, .seed = 2}),
                                          Feedback::Symmetric);
}

TEST(RegressionCheckpoints, AForeignReadoutsStateIsRefusedAndChangesNothing) {
  // A classification trainer's checkpoint into a regression trainer, random feedback into
  // symmetric: FormatError naming the array, nothing changed.
  GRU<double> classCell(2, 5, {.seed = 1});
  Readout<double> classes(5, 2, 3);
  Trainer<RTRL<GRU<double>>> classTrainer(classCell, classes, Adam{.learningRate = 0.02}, {.batch = 2});
  AddingRun<RTRL<GRU<double>>> run(GRU<double>(2, 5, {.seed = 1}), 4, Feedback::Symmetric);
  AddingRun<RTRL<GRU<double>>> randomRun(GRU<double>(2, 5, {.seed = 1}), 4, Feedback::Random);
  run.sequences(1);
  randomRun.sequences(1);
  const NpzArchive before = run.save();
  NpzArchive foreign;
  classTrainer.saveState(foreign, "trainer/");
  expectError<FormatError>([&] { run.trainer.loadState(foreign, "trainer/"); }, "array 'trainer/readout/loss'");
  expectError<FormatError>([&] { run.trainer.loadState(randomRun.save(), "trainer/"); },
                           "array 'trainer/readout/feedback'");
  expectError<FormatError>([&] { randomRun.trainer.loadState(before, "trainer/"); }, "array 'trainer/readout/feedback'");
  EXPECT_TRUE(sameArchive(run.save(), before));
  NpzArchive regression;
  run.trainer.saveState(regression, "trainer/");
  const NpzArchive classBefore = stateOf(classTrainer);
  expectError<FormatError>([&] { classTrainer.loadState(regression, "trainer/"); }, "array 'trainer/readout/loss'");
  EXPECT_TRUE(sameArchive(stateOf(classTrainer), classBefore));
}

// --- Learning ---

TEST(RegressionTraining, AGruTrainedWithRtrlBeatsTheConstantPredictionOnTheAddingProblem) {
  // 400 updates of 8 sequences of T = 10 (4000 batch steps), one update per batch of
  // sequences. Stated requirement: the mean loss of the last 100 batches, each scored before
  // its update, is below a quarter of the constant prediction's, 1/12 (RegressionReadout's
  // ½ (ŷ − target)²; it falls to about 0.002 with this seed and most others).
  GRU<double> cell(2, 8, {.seed = 1});
  RegressionReadout<double> readout(8, 1, 2);
  constexpr Index streams = 8;
  RegressionTrainer<RTRL<GRU<double>>> trainer(cell, readout, Adam{.learningRate = 0.01},
                                               {.batch = streams, .schedule = UpdateSchedule::PerSequence});
  AddingTask task({.length = 10, .seed = 3});
  Matrix<double> inputs(2, streams), targets(1, streams);
  double first = 0, last = 0;
  constexpr int updates = 400, tail = 100;
  for (int update = 0; update < updates; ++update) {
    std::vector<AddingSequence> batch;
    for (Index b = 0; b < streams; ++b) batch.push_back(task.next());
    double loss = 0;
    for (Index t = 0; t < task.length(); ++t) {
      fill(batch, t, inputs, targets);
      if (t == task.length() - 1) loss = trainer.observe(inputs, targets) / streams; else trainer.observe(inputs);
      trainer.endStep();
    }
    trainer.endSequence();
    if (update < tail) first += loss / tail;
    if (update >= updates - tail) last += loss / tail;
  }
  EXPECT_EQ(trainer.updates(), updates);
  EXPECT_LT(last, 0.25 * AddingTask::baselineLoss()) << "the first 100 batches: " << first;
  EXPECT_LT(last, 0.25 * first);
}

}  // namespace
}  // namespace snap::test
