// The adding problem (include/snap/tasks/adding_task.hpp): a sequence's inputs, markers and
// target, the statistics of the drawn sequences (markers in their halves, uniform values, the
// constant prediction's squared error 1/6), determinism under a seed, the state saved and
// loaded, and the refusals.

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include <snap/tasks/adding_task.hpp>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"

namespace snap::test {
namespace {

TEST(AddingTask, SequenceLayout) {
  const AddingSequence sequence({0.25, 0.5, 0.125, 0.75, 0.0}, 1, 3);  // T = 5: halves [0, 2) and [2, 5)
  ASSERT_EQ(sequence.length(), 5);
  EXPECT_EQ(sequence.target(), 0.5 + 0.75);
  Vector<double> x(2);
  for (Index t = 0; t < 5; ++t) {
    sequence.input(t, x);
    EXPECT_EQ(x[0], sequence.values()[static_cast<std::size_t>(t)]);
    EXPECT_EQ(x[1], t == 1 || t == 3 ? 1.0 : 0.0) << "step " << t;
    EXPECT_EQ(sequence.marked(t), t == 1 || t == 3);
    EXPECT_EQ(sequence.scored(t), t == 4) << "only the last step is scored";
  }
  // Into a column of a batch's inputs, in float.
  Matrix<float> inputs = Matrix<float>::Zero(2, 3);
  sequence.input(3, inputs.col(2));
  EXPECT_EQ(inputs(0, 2), 0.75f);
  EXPECT_EQ(inputs(1, 2), 1.0f);
  EXPECT_EQ(inputs.leftCols(2), Matrix<float>::Zero(2, 2));
}

TEST(AddingTask, MarkersAreOneInEachHalfAndTheTargetIsTheirSum) {
  for (Index length : {2, 3, 8, 11}) {
    SCOPED_TRACE(::testing::Message() << "T = " << length);
    AddingTask task({.length = length, .seed = 5});
    const Index half = length / 2;
    std::set<Index> firsts, seconds;
    Vector<double> x(2);
    for (int i = 0; i < 2000; ++i) {
      const AddingSequence sequence = task.next();
      ASSERT_EQ(sequence.length(), length);
      int markers = 0;
      double sum = 0;
      for (Index t = 0; t < length; ++t) {
        sequence.input(t, x);
        ASSERT_GE(x[0], 0.0);
        ASSERT_LT(x[0], 1.0);
        ASSERT_TRUE(x[1] == 0.0 || x[1] == 1.0);
        if (x[1] == 1.0) {
          ++markers;
          sum += x[0];
          (t < half ? firsts : seconds).insert(t);
        }
      }
      ASSERT_EQ(markers, 2);
      ASSERT_LT(sequence.first(), half);
      ASSERT_GE(sequence.second(), half);
      ASSERT_EQ(sequence.target(), sum);
    }
    // Every step of each half is marked at some point.
    EXPECT_EQ(static_cast<Index>(firsts.size()), half);
    EXPECT_EQ(static_cast<Index>(seconds.size()), length - half);
    EXPECT_EQ(task.sequences(), 2000);
  }
}

TEST(AddingTask, TheConstantPredictionsSquaredErrorIsTheVarianceOfTheSum) {
  // 10^5 sequences of a fixed seed: the target's mean is 1, and the squared error of the
  // prediction 1 is Var(U1 + U2) = 1/6 (RegressionReadout's loss ½ (ŷ − target)²: 1/12). The
  // squared error's standard deviation is √(1/15 − 1/36) ≈ 0.197, so the mean of 10^5 is within
  // 0.0006 of 1/6 one time in three and within 0.003 (five of those) almost surely; the margin
  // holds for this seed.
  AddingTask task({.length = 4, .seed = 17});
  constexpr int count = 100000;
  double sum = 0, squaredError = 0, values = 0, squaredValues = 0;
  for (int i = 0; i < count; ++i) {
    const AddingSequence sequence = task.next();
    sum += sequence.target();
    const double error = AddingTask::baselinePrediction() - sequence.target();
    squaredError += error * error;
    for (double v : sequence.values()) {
      values += v;
      squaredValues += v * v;
    }
  }
  EXPECT_NEAR(sum / count, 1.0, 0.003);
  EXPECT_NEAR(squaredError / count, AddingTask::baselineSquaredError(), 0.003);
  EXPECT_NEAR(0.5 * squaredError / count, AddingTask::baselineLoss(), 0.0015);
  EXPECT_DOUBLE_EQ(AddingTask::baselineSquaredError(), 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(AddingTask::baselineLoss(), 1.0 / 12.0);
  EXPECT_NEAR(values / (4.0 * count), 0.5, 0.002);          // U[0, 1): mean 1/2
  EXPECT_NEAR(squaredValues / (4.0 * count), 1.0 / 3, 0.002);  // and E[U²] = 1/3
}

TEST(AddingTask, SameSeedSameSequences) {
  AddingTask a({.length = 9, .seed = 3}), b({.length = 9, .seed = 3}), c({.length = 9, .seed = 4});
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    const AddingSequence sa = a.next(), sb = b.next(), sc = c.next();
    EXPECT_EQ(sa.values(), sb.values());
    EXPECT_EQ(sa.first(), sb.first());
    EXPECT_EQ(sa.second(), sb.second());
    differs = differs || sa.values() != sc.values();
  }
  EXPECT_TRUE(differs);
}

TEST(AddingTask, StateRoundTrip) {
  AddingTask task({.length = 6, .seed = 8});
  for (int i = 0; i < 7; ++i) task.next();
  const NpzArchive saved = stateOf(task);
  std::vector<AddingSequence> expected;
  for (int i = 0; i < 5; ++i) expected.push_back(task.next());
  AddingTask restored({.length = 6, .seed = 99});
  restored.loadState(saved, "");
  EXPECT_EQ(restored.sequences(), 7);
  EXPECT_TRUE(sameArchive(stateOf(restored), saved));
  for (const AddingSequence& sequence : expected) {
    const AddingSequence again = restored.next();
    EXPECT_EQ(again.values(), sequence.values());
    EXPECT_EQ(again.first(), sequence.first());
    EXPECT_EQ(again.second(), sequence.second());
  }
  EXPECT_TRUE(sameArchive(stateOf(restored), stateOf(task)));
}

TEST(AddingTaskErrors, RefusalsChangeNothing) {
  for (Index length : {Index{-1}, Index{0}, Index{1}, AddingSequence::maxLength() + 1})
    expectError<ValueError>([&] { AddingTask({.length = length}); }, "AddingTaskOptions::length");
  expectError<ValueError>([] { AddingSequence({0.5}, 0, 0); }, "values");
  expectError<ValueError>([] { AddingSequence({0.5, 1.0, 0.5}, 0, 2); }, "values");
  expectError<ValueError>([] { AddingSequence({0.5, -0.1, 0.5}, 0, 2); }, "values");
  expectError<ValueError>([] { AddingSequence({0.5, std::nan(""), 0.5}, 0, 2); }, "values");
  expectError<ValueError>([] { AddingSequence({0.5, 0.5, 0.5, 0.5}, 2, 3); }, "first");
  expectError<ValueError>([] { AddingSequence({0.5, 0.5, 0.5, 0.5}, -1, 3); }, "first");
  expectError<ValueError>([] { AddingSequence({0.5, 0.5, 0.5, 0.5}, 0, 1); }, "second");
  expectError<ValueError>([] { AddingSequence({0.5, 0.5, 0.5, 0.5}, 0, 4); }, "second");
  const AddingSequence sequence({0.5, 0.5, 0.5, 0.5}, 0, 3);
  Vector<double> x = Vector<double>::Constant(2, 7.0), wrong(3);
  expectError<ShapeError>([&] { sequence.input(4, x); }, "step");
  expectError<ShapeError>([&] { sequence.input(-1, x); }, "step");
  expectError<ShapeError>([&] { sequence.marked(4); }, "step");
  expectError<ShapeError>([&] { sequence.scored(-1); }, "step");
  expectError<ShapeError>([&] { sequence.input(0, wrong); }, "adding-task input");
  EXPECT_EQ(x, Vector<double>::Constant(2, 7.0));

  AddingTask task({.length = 6, .seed = 1});
  task.next();
  const NpzArchive before = stateOf(task);
  NpzArchive other = stateOf(AddingTask({.length = 7, .seed = 1}));
  expectError<FormatError>([&] { task.loadState(other, ""); }, "array 'length'");
  NpzArchive corrupt = before;
  putText(corrupt, "random", "not a generator");
  expectError<FormatError>([&] { task.loadState(corrupt, ""); }, "array 'random'");
  corrupt = before;
  putScalar<std::int64_t>(corrupt, "sequences", -1);
  expectError<FormatError>([&] { task.loadState(corrupt, ""); }, "array 'sequences'");
  corrupt.erase("sequences");
  expectError<FormatError>([&] { task.loadState(corrupt, ""); }, "array 'sequences'");
  EXPECT_TRUE(sameArchive(stateOf(task), before));
}

}  // namespace
}  // namespace snap::test
