// Misuse of the training pieces, the copy task and the generator: each throws the documented
// snap::Error subclass with the message "snap: <argument>: expected …, got …", and a rejected
// call changes nothing (tests/core/test_errors.cpp has the cells and engines).

#include <gtest/gtest.h>

#include <vector>

#include <deque>
#include <limits>
#include <string>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"
#include "../support/reference.hpp"
#include "../support/training.hpp"

namespace snap::test {
namespace {

constexpr Index kInputs = 3;
constexpr Index kHidden = 4;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

TEST(OptimizerErrors, Configurations) {
  for (double rate : {0.0, -0.1, kNaN, kInfinity}) {
    SCOPED_TRACE(::testing::Message() << "learning rate " << rate);
    expectError<ValueError>([&] { SGD{.learningRate = rate}.validate(); }, "learningRate");
    expectError<ValueError>([&] { Adam{.learningRate = rate}.validate(); }, "learningRate");
  }
  expectError<ValueError>([] { Adam{.beta1 = 1.0}.validate(); }, "beta1");
  expectError<ValueError>([] { Adam{.beta1 = kNaN}.validate(); }, "beta1");
  expectError<ValueError>([] { Adam{.beta2 = -0.1}.validate(); }, "beta2");
  expectError<ValueError>([] { Adam{.epsilon = 0}.validate(); }, "epsilon");
  Vector<double> g = Vector<double>::Ones(3);
  expectError<ValueError>([&] { clipGlobalNorm<double>(kNaN, {&g}); }, "maxNorm");
  EXPECT_EQ(g, Vector<double>::Ones(3));
}

TEST(ReadoutErrors, SizesWeightsTargetsAndStates) {
  expectError<ShapeError>([] { Readout<double>(0, 2); }, "hiddenSize");
  expectError<ShapeError>([] { Readout<double>(4, 1); }, "outputs");
  Readout<double> readout(4, 3, 1);
  const Readout<double> before = readout;
  expectError<ShapeError>([&] { readout.setWeights(RowMatrix<double>::Zero(3, 5), Vector<double>::Zero(3)); },
                          "readout weight");
  expectError<ShapeError>([&] { readout.setWeights(RowMatrix<double>::Zero(3, 4), Vector<double>::Zero(2)); },
                          "readout bias");
  expectError<ValueError>([&] { readout.setWeights(RowMatrix<double>::Constant(3, 4, kNaN), Vector<double>::Zero(3)); },
                          "readout weights");
  Vector<double> state = Vector<double>::Constant(4, 0.5), delta(4);
  for (Index target : {Index{-1}, Index{3}})
    expectError<ValueError>([&] { readout.loss(state, target, delta); }, "target");
  expectError<ShapeError>([&] { readout.loss(Vector<double>::Zero(3), 0, delta); }, "state");
  Vector<double> longDelta(5);
  expectError<ShapeError>([&] { readout.loss(state, 0, longDelta); }, "state gradient");
  state[2] = kNaN;
  expectError<NonFiniteError>([&] { readout.loss(state, 0, delta); }, "state");
  expectError<NonFiniteError>([&] { readout.predict(state); }, "state");
  EXPECT_EQ(readout.parameters(), before.parameters());
  EXPECT_EQ(readout.gradient(), before.gradient());
}

TEST(ReadoutErrors, ALossThatOverflowsLeavesTheGradientAlone) {
  // Finite weights and state whose logits overflow (float): the loss is refused before the
  // readout's own gradient changes.
  Readout<float> readout(2, 2, 1);
  RowMatrix<float> w(2, 2);
  w << 3e38f, 3e38f, -3e38f, -3e38f;
  readout.setWeights(w, Vector<float>::Zero(2));
  Vector<float> delta(2);
  expectError<NonFiniteError>([&] { readout.loss(Vector<float>::Ones(2), 1, delta); }, "loss");
  EXPECT_EQ(readout.gradient(), Vector<float>::Zero(readout.parameters().size()));
}

TEST(TrainerErrors, Options) {
  GRU<double> cell(kInputs, kHidden);
  Readout<double> readout(kHidden, 2), wrong(kHidden + 1, 2);
  using T = Trainer<SnAp<GRU<double>>>;
  expectError<ValueError>([&] { T(cell, readout, SGD{}, {.batch = 0}); }, "TrainerOptions::batch");
  expectError<ValueError>([&] { T(cell, readout, SGD{}, {.updateEvery = 0}); }, "TrainerOptions::updateEvery");
  expectError<ValueError>([&] { T(cell, readout, SGD{}, {.clipNorm = kNaN}); }, "TrainerOptions::clipNorm");
  expectError<ValueError>([&] { T(cell, readout, SGD{}, {.nonFinite = static_cast<NonFinitePolicy>(7)}); },
                          "TrainerOptions::nonFinite");
  expectError<ValueError>([&] { T(cell, readout, Adam{.learningRate = 0}); }, "learningRate");
  expectError<ShapeError>([&] { T(cell, wrong, SGD{}); }, "readout");
  expectError<ValueError>([&] { T(cell, readout, SGD{}, {}, {.n = 0}); }, "SnApOptions::n");
}

TEST(TrainerErrors, UntruncatedBPTTUpdatedOnlineIsRefusedWithWhatToWrite) {
  GRU<double> cell(kInputs, kHidden);
  Readout<double> readout(kHidden, 2);
  using T = Trainer<BPTT<GRU<double>>>;
  // The defaults: untruncated BPTT, an update after every step.
  expectError<UsageError>([&] { T(cell, readout, SGD{}); }, "BPTTOptions::window");
  expectError<UsageError>([&] { T(cell, readout, SGD{}, {.updateEvery = 8}); }, "BPTTOptions::window");
  try {
    T(cell, readout, SGD{});
  } catch (const UsageError& error) {  // the message says what to write instead
    const std::string message = error.what();
    EXPECT_NE(message.find("{.updateEvery = T} with {.window = T}"), std::string::npos) << message;
    EXPECT_NE(message.find("{.schedule = snap::UpdateSchedule::PerSequence}"), std::string::npos) << message;
  }
  // What the message says to write instead is accepted.
  T windowed(cell, readout, SGD{}, {.updateEvery = 8}, {.window = 8});
  T perSequence(cell, readout, SGD{}, {.schedule = UpdateSchedule::PerSequence});
  EXPECT_EQ(windowed.updates(), 0);
  EXPECT_EQ(perSequence.updates(), 0);
}

TEST(TrainerErrors, CallsLeaveTheTrainerAsItWas) {
  GRU<double> cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 3});
  Readout<double> readout(kHidden, 2, 4);
  Trainer<RTRL<GRU<double>>> trainer(cell, readout, Adam{.learningRate = 0.01}, {.batch = 2});
  const Vector<double> x = Vector<double>::Ones(kInputs);
  const Matrix<double> inputs = Matrix<double>::Ones(kInputs, 2);
  const std::vector<Index> scored{1, -1};
  trainer.observe(inputs, scored);
  const NpzArchive before = stateOf(trainer);
  for (Index stream : {Index{-1}, Index{2}}) expectError<ShapeError>([&] { trainer.resetStream(stream); }, "stream");
  expectError<ValueError>([&] { trainer.observe(inputs, std::vector<Index>{1, 2}); }, "targets[1]");
  expectError<ValueError>([&] { trainer.observe(inputs, std::vector<Index>{-2, 0}); }, "targets[0]");
  expectError<ShapeError>([&] { trainer.observe(inputs, std::vector<Index>{1}); }, "targets");
  expectError<ShapeError>([&] { trainer.observe(Matrix<double>::Ones(kInputs + 1, 2), scored); }, "inputs");
  expectError<ShapeError>([&] { trainer.observe(Matrix<double>::Ones(kInputs, 3), std::vector<Index>{0, 0, 0}); },
                          "inputs");
  expectError<ShapeError>([&] { trainer.observe(x, 0); }, "inputs");  // one stream's input for a batch of 2
  Matrix<double> bad = inputs;
  bad(1, 1) = kInfinity;
  expectError<NonFiniteError>([&] { trainer.observe(bad, scored); }, "inputs");
  EXPECT_TRUE(sameArchive(stateOf(trainer), before));
  EXPECT_EQ(trainer.skipped(), 0);
  // A mask change after the trainer was built: its update refuses the new parameter count.
  RowMatrix<double> mask = cell.mask_hh();
  mask(0, 0) = 1 - mask(0, 0);
  cell.setMasks(cell.mask_ih(), mask);
  expectError<UsageError>([&] { trainer.update(); }, "cell");
}

// --- The copy task, the curriculum and the generator ---

TEST(CopyTaskErrors, Options) {
  expectError<ValueError>([] { CopyTask({.alphabet = 1}); }, "CopyTaskOptions::alphabet");
  expectError<ValueError>([] { CopyTask({.initialLength = 0}); }, "CopyTaskOptions::initialLength");
  expectError<ValueError>([] { CopyTask({.lengthSpread = -1}); }, "CopyTaskOptions::lengthSpread");
  expectError<ValueError>([] { CopyTask({.threshold = 0}); }, "CopyTaskOptions::threshold");
  expectError<ValueError>([] { CopyTask({.threshold = kNaN}); }, "CopyTaskOptions::threshold");
  expectError<ValueError>([] { CopyTask({.window = 0}); }, "CopyTaskOptions::window");
}

TEST(CopyTaskErrors, Sequences) {
  expectError<ValueError>([] { CopySequence({0, 2}, 2); }, "symbols");
  expectError<ValueError>([] { CopySequence({-1}, 2); }, "symbols");
  expectError<ValueError>([] { CopySequence({}, 2); }, "symbols");
  expectError<ValueError>([] { CopySequence({0}, 1); }, "alphabet");
  const CopySequence sequence({1, 0}, 2);
  expectError<ShapeError>([&] { sequence.target(5); }, "step");
  expectError<ShapeError>([&] { sequence.inputClass(-1); }, "step");
  Vector<double> x(2);
  expectError<ShapeError>([&] { sequence.input(0, x); }, "copy-task input");
}

TEST(CopyTaskErrors, CurriculumRecordsAndRestores) {
  CopyTask task({.window = 3});
  task.record(CopySequence({1}, 2), 0.5);
  Curriculum& curriculum = task.curriculum();
  expectError<ValueError>([&] { curriculum.record(1.0, 0); }, "recallSteps");
  expectError<NonFiniteError>([&] { curriculum.record(kNaN, 2); }, "lossBits");
  expectError<ValueError>([&] { curriculum.record(-1.0, 2); }, "lossBits");
  expectError<ValueError>([&] { curriculum.restore(0, {}); }, "length");
  expectError<ValueError>([&] { curriculum.restore(2, std::deque<Curriculum::Record>(4, {0.1, 1})); }, "recent");
  expectError<ValueError>([&] { curriculum.restore(2, {{kInfinity, 1}}); }, "recent");
  expectError<ValueError>([&] { curriculum.restore(2, {{0.5, 0}}); }, "recent");
  expectError<ValueError>([&] { task.restoreCounters(-1, 0); }, "dataTime");
  expectError<ValueError>([&] { task.restoreCounters(0, -1); }, "sequences");
  EXPECT_EQ(task.length(), 1);
  EXPECT_EQ(curriculum.recentCount(), 1);
  EXPECT_EQ(task.dataTime(), 3);
}

TEST(RandomErrors, DrawsAndMasks) {
  Random random(1);
  expectError<ValueError>([&] { random.below(0); }, "count");
  expectError<ValueError>([&] { random.choose(3, 4); }, "count");
  expectError<ValueError>([&] { random.choose(3, -1); }, "count");
  expectError<ShapeError>([&] { random.choose(-1, 0); }, "size");
  expectError<ShapeError>([&] { randomMask<double>(0, 4, 5, 0.5, MaskSharing::PerGate, random); }, "gates");
  expectError<ShapeError>([&] { randomMask<double>(3, 0, 5, 0.5, MaskSharing::PerGate, random); }, "blockRows");
  expectError<ShapeError>([&] { randomMask<double>(3, 4, 0, 0.5, MaskSharing::Shared, random); }, "cols");
}

}  // namespace
}  // namespace snap::test
