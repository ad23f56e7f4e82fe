// docs/math.md §7: the copy task's sequences, length sampling and curriculum.

#include <gtest/gtest.h>

#include <set>

#include <snap/snap.hpp>

namespace snap::test {
namespace {

TEST(CopyTask, SequenceLayout) {
  const CopySequence sequence({1, 0, 1}, 2);
  ASSERT_EQ(sequence.steps(), 7);
  Vector<double> x(3);
  const int expectedInput[7] = {1, 0, 1, 2, -1, -1, -1};  // symbols, delimiter, blanks
  const int expectedTarget[7] = {-1, -1, -1, -1, 1, 0, 1};
  for (Index t = 0; t < 7; ++t) {
    sequence.input(t, x);
    EXPECT_EQ(sequence.inputClass(t), expectedInput[t]);
    EXPECT_EQ(sequence.target(t), expectedTarget[t]) << "step " << t;
    if (expectedInput[t] < 0) {
      EXPECT_TRUE(x.isZero(0.0)) << "the recall input is blank";
    } else {
      EXPECT_EQ(x.sum(), 1.0);
      EXPECT_EQ(x[expectedInput[t]], 1.0);
    }
  }
  EXPECT_THROW(sequence.target(7), ShapeError);
}

TEST(CopyTask, LengthsAreUniformWithinTheCurriculumWindow) {
  for (Index level : {1, 3, 6, 10}) {
    CopyTask task({.initialLength = level, .seed = 3});
    std::set<Index> seen;
    for (int i = 0; i < 2000; ++i) {
      const CopySequence sequence = task.next();
      ASSERT_GE(sequence.length(), std::max<Index>(1, level - 5));
      ASSERT_LE(sequence.length(), level);
      for (int s : sequence.symbols()) ASSERT_TRUE(s == 0 || s == 1);
      seen.insert(sequence.length());
    }
    EXPECT_EQ(static_cast<Index>(seen.size()), level - std::max<Index>(1, level - 5) + 1) << "L = " << level;
  }
}

TEST(CopyTask, SameSeedSameSequences) {
  CopyTask a({.seed = 9}), b({.seed = 9}), c({.seed = 10});
  bool differs = false;
  for (int i = 0; i < 50; ++i) {
    const auto sa = a.next(), sb = b.next(), sc = c.next();
    EXPECT_EQ(sa.symbols(), sb.symbols());
    differs = differs || sa.symbols() != sc.symbols();
  }
  EXPECT_TRUE(differs);
}

TEST(Curriculum, RisesExactlyWhenTheRecentAverageFallsBelowTheThreshold) {
  // Dyadic losses keep every average exact, so "below" is tested at the boundary itself.
  Curriculum curriculum({.threshold = 0.25, .window = 4});
  for (int i = 0; i < 6; ++i) EXPECT_FALSE(curriculum.record(0.5 * 2, 2));  // 0.5 bits per step
  EXPECT_EQ(curriculum.length(), 1);
  // Window of 4: averages (0.5·3 + 0)/4 = 0.375, then 0.25 (equal: not below), then 0.125.
  EXPECT_FALSE(curriculum.record(0.0, 2));
  EXPECT_EQ(curriculum.recentLoss(), 0.375);
  EXPECT_FALSE(curriculum.record(0.0, 2));
  EXPECT_EQ(curriculum.recentLoss(), 0.25);
  EXPECT_TRUE(curriculum.record(0.0, 2));
  EXPECT_EQ(curriculum.length(), 2);
  // The window starts afresh: three good sequences are not enough, the fourth is.
  EXPECT_EQ(curriculum.recentCount(), 0);
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(curriculum.record(0.0, 3));
  EXPECT_TRUE(curriculum.record(0.0, 3));
  EXPECT_EQ(curriculum.length(), 3);
}

TEST(Curriculum, AverageIsPerRecallStepAcrossSequences) {
  Curriculum curriculum({.threshold = 0.15, .window = 2});
  EXPECT_FALSE(curriculum.record(0.5, 1));  // one step at 0.5 bits
  // Nine steps at 0.1 bits: per step (0.5 + 0.9) / 10 = 0.14 < 0.15 (a mean of the two
  // sequences' averages would be 0.3).
  EXPECT_TRUE(curriculum.record(0.9, 9));
  EXPECT_EQ(curriculum.length(), 2);
}

TEST(CopyTask, DataTimeCountsEveryInputStep) {
  CopyTask task({.seed = 1});
  long long expected = 0;
  for (int i = 0; i < 10; ++i) {
    const CopySequence sequence = task.next();
    expected += 2 * sequence.length() + 1;
    task.record(sequence, 5.0);
  }
  EXPECT_EQ(task.dataTime(), expected);
  EXPECT_EQ(task.sequences(), 10);
}

}  // namespace
}  // namespace snap::test
