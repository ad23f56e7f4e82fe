// docs/math.md §3: the regression readout's loss ½‖W y + b − target‖² and its gradients against
// central finite differences, the refusals of both readouts, random feedback (Murray 2019) and
// symmetric feedback, and their states saved and loaded.

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include <snap/train/regression_readout.hpp>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInfinity = std::numeric_limits<double>::infinity();

/// ½ Σ_i (W y + b − target)_i², written out with loops from [W row-major; b].
double referenceSquaredError(const Vector<double>& parameters, const Vector<double>& y, const Vector<double>& target,
                             Index hidden) {
  const Index outputs = target.size();
  double loss = 0;
  for (Index i = 0; i < outputs; ++i) {
    double prediction = parameters[outputs * hidden + i];
    for (Index j = 0; j < hidden; ++j) prediction += parameters[i * hidden + j] * y[j];
    loss += 0.5 * (prediction - target[i]) * (prediction - target[i]);
  }
  return loss;
}

TEST(RegressionReadout, LossAndGradientsMatchFiniteDifferences) {
  constexpr Index H = 5, outputs = 3;
  RegressionReadout<double> readout(H, outputs, 7);
  Random random(8);
  const Vector<double> y = randomVector(random, H + 2);  // an LSTM-like state [h; c…]: reads the first H
  const Vector<double> target = randomVector(random, outputs, 2.0);
  Vector<double> delta(H + 2);
  const double loss = readout.loss(y, target, delta);
  EXPECT_NEAR(loss, referenceSquaredError(readout.parameters(), y, target, H), 1e-14);
  // The loss is half the squared error summed (not averaged) over the outputs.
  const Vector<double> prediction = readout.weight() * y.head(H) + readout.bias();
  EXPECT_NEAR(loss, 0.5 * (prediction - target).squaredNorm(), 1e-14);
  EXPECT_LE(relativeError(readout.prediction(), prediction), 1e-15);
  const auto lossOf = [&](const Vector<double>& parameters, const Vector<double>& at) {
    return Vector<double>::Constant(1, referenceSquaredError(parameters, at, target, H));
  };
  const Matrix<double> numericOutput =
      finiteDifferences([&](const Vector<double>& at) { return lossOf(readout.parameters(), at); }, y);
  EXPECT_LE(relativeError(delta, Vector<double>(numericOutput.row(0).transpose())), 1e-8);
  EXPECT_EQ(delta.tail(2), Vector<double>::Zero(2));  // nothing beyond the first H entries
  const Matrix<double> numericParameters =
      finiteDifferences([&](const Vector<double>& p) { return lossOf(p, y); }, readout.parameters());
  EXPECT_LE(relativeError(readout.gradient(), Vector<double>(numericParameters.row(0).transpose())), 1e-8);
  // And exactly the formulas: δ = Wᵀ e, ∂W = e yᵀ, ∂b = e.
  const Vector<double> error = prediction - target;
  EXPECT_LE(relativeError(delta.head(H), Vector<double>(readout.weight().transpose() * error)), 1e-15);
  RowMatrix<double> weightGradient = error * y.head(H).transpose();
  EXPECT_LE(relativeError(readout.gradient().head(outputs * H),
                          Eigen::Map<const Vector<double>>(weightGradient.data(), outputs * H)),
            1e-15);
  EXPECT_LE(relativeError(readout.gradient().tail(outputs), error), 1e-15);
}

TEST(RegressionReadout, GradientsAccumulateOverLossesAndSlots) {
  RegressionReadout<double> readout(3, 2, 1), alone(3, 2, 1);
  Random random(2);
  const Vector<double> y0 = randomVector(random, 3), y1 = randomVector(random, 3);
  const Vector<double> t0 = randomVector(random, 2), t1 = randomVector(random, 2);
  Vector<double> d0(3), d1(3), d(3);
  // Two slots committed together add what two loss() calls add, in slot order.
  const double l0 = readout.evaluateLoss(y0, t0, d0, 0);
  const double l1 = readout.evaluateLoss(y1, t1, d1, 1);
  EXPECT_EQ(readout.gradient(), Vector<double>::Zero(8));  // nothing until commitLoss()
  readout.commitLoss();
  EXPECT_EQ(alone.loss(y0, t0, d), l0);
  EXPECT_EQ(d, d0);
  EXPECT_EQ(alone.loss(y1, t1, d), l1);
  EXPECT_EQ(d, d1);
  EXPECT_EQ(readout.gradient(), alone.gradient());
  EXPECT_EQ(readout.prediction(), alone.prediction());  // the last slot's
  // predict() is the map alone and changes no gradient.
  EXPECT_EQ(readout.predict(y0), Vector<double>(readout.weight() * y0 + readout.bias()));
  EXPECT_EQ(readout.gradient(), alone.gradient());
  readout.resetGradient();
  EXPECT_EQ(readout.gradient(), Vector<double>::Zero(8));
  // A discarded evaluation leaves nothing to commit.
  readout.evaluateLoss(y0, t0, d0, 0);
  readout.discardLosses();
  expectError<UsageError>([&] { readout.commitLoss(); }, "commitLoss");
}

TEST(RegressionReadout, RefusalsChangeNothing) {
  expectError<ShapeError>([] { RegressionReadout<double>(0, 1); }, "hiddenSize");
  expectError<ShapeError>([] { RegressionReadout<double>(3, 0); }, "outputs");
  expectError<ValueError>([] { RegressionReadout<double>(3, 1, 0, {.feedback = static_cast<Feedback>(5)}); },
                          "ReadoutOptions::feedback");
  RegressionReadout<double> readout(4, 2, 3);
  Vector<double> y = Vector<double>::Constant(4, 0.5), target = Vector<double>::Ones(2), delta(4);
  readout.loss(y, target, delta);
  const RegressionReadout<double> before = readout;
  const Vector<double> deltaBefore = delta;
  const auto unchanged = [&] {
    EXPECT_EQ(readout.parameters(), before.parameters());
    EXPECT_EQ(readout.gradient(), before.gradient());
    EXPECT_EQ(readout.prediction(), before.prediction());
    EXPECT_EQ(delta, deltaBefore);
    expectError<UsageError>([&] { readout.commitLoss(); }, "commitLoss");  // nothing left waiting
  };
  expectError<ShapeError>([&] { readout.loss(Vector<double>::Zero(3), target, delta); }, "output");
  expectError<ShapeError>([&] { readout.loss(y, Vector<double>::Ones(3), delta); }, "target");
  Vector<double> longDelta(5);
  expectError<ShapeError>([&] { readout.loss(y, target, longDelta); }, "output gradient");
  expectError<ShapeError>([&] { readout.evaluateLoss(y, target, delta, -1); }, "slot");
  expectError<ShapeError>([&] { readout.setWeights(RowMatrix<double>::Zero(2, 5), Vector<double>::Zero(2)); },
                          "readout weight");
  expectError<ShapeError>([&] { readout.setWeights(RowMatrix<double>::Zero(2, 4), Vector<double>::Zero(3)); },
                          "readout bias");
  expectError<ValueError>([&] { readout.setWeights(RowMatrix<double>::Constant(2, 4, kNaN), Vector<double>::Zero(2)); },
                          "readout weights");
  expectError<UsageError>([&] { readout.setFeedback(Matrix<double>::Zero(4, 2)); }, "feedback");
  for (double bad : {kNaN, kInfinity, -kInfinity}) {
    Vector<double> badTarget = target, badOutput = y;
    badTarget[1] = bad;
    badOutput[3] = bad;
    expectError<NonFiniteError>([&] { readout.loss(y, badTarget, delta); }, "target");
    expectError<NonFiniteError>([&] { readout.loss(badOutput, target, delta); }, "output");
    expectError<NonFiniteError>([&] { readout.predict(badOutput); }, "output");
  }
  unchanged();
  // Entries beyond H are not read: a NaN there is no error.
  Vector<double> longOutput(5);
  longOutput << y, kNaN;
  Vector<double> longGradient(5);
  EXPECT_NO_THROW(readout.evaluateLoss(longOutput, target, longGradient, 0));
  readout.discardLosses();
}

TEST(RegressionReadout, ALossThatOverflowsIsRefusedAndChangesNothing) {
  // Finite weights, output and target whose prediction overflows (float), then whose squared
  // error overflows while the prediction is finite.
  RegressionReadout<float> readout(2, 1, 1);
  readout.setWeights(RowMatrix<float>::Constant(1, 2, 3e38f), Vector<float>::Zero(1));
  Vector<float> delta = Vector<float>::Constant(2, 7.0f);
  expectError<NonFiniteError>([&] { readout.loss(Vector<float>::Ones(2), Vector<float>::Zero(1), delta); }, "loss");
  expectError<NonFiniteError>([&] { readout.predict(Vector<float>::Ones(2)); }, "prediction");
  readout.setWeights(RowMatrix<float>::Constant(1, 2, 1e20f), Vector<float>::Zero(1));
  expectError<NonFiniteError>([&] { readout.loss(Vector<float>::Ones(2), Vector<float>::Zero(1), delta); }, "loss");
  EXPECT_EQ(readout.gradient(), Vector<float>::Zero(3));
  EXPECT_EQ(delta, Vector<float>::Constant(2, 7.0f));
  EXPECT_EQ(readout.prediction(), Vector<float>::Zero(1));
}

// --- Feedback: symmetric (Wᵀ e) and random (B e, Murray 2019) ---

TEST(Feedback, SymmetricIsTheDefaultAndTheOldBehaviour) {
  // The weights are those drawn before the option existed (the same draws from the seed), and
  // δ = Wᵀ (p − onehot) exactly.
  Readout<double> defaulted(5, 3, 11), symmetric(5, 3, 11, {.feedback = Feedback::Symmetric}),
      random(5, 3, 11, {.feedback = Feedback::Random});
  EXPECT_EQ(symmetric.parameters(), defaulted.parameters());
  EXPECT_EQ(random.parameters(), defaulted.parameters());  // B is drawn after [W; b]
  EXPECT_EQ(defaulted.feedback().size(), 0);
  Random draws(11);
  for (Index i = 0; i < defaulted.parameters().size(); ++i)
    ASSERT_EQ(defaulted.parameters()[i], draws.uniform(-1 / std::sqrt(5.0), 1 / std::sqrt(5.0))) << i;
  Random values(3);
  const Vector<double> h = randomVector(values, 5);
  Vector<double> delta(5);
  const double loss = defaulted.loss(h, 1, delta);
  Vector<double> logits = defaulted.weight() * h + defaulted.bias();
  const Vector<double> p = (logits.array() - logits.maxCoeff()).exp() / (logits.array() - logits.maxCoeff()).exp().sum();
  Vector<double> error = p;
  error[1] -= 1;
  EXPECT_EQ(delta, Vector<double>(defaulted.weight().transpose() * error));
  EXPECT_NEAR(loss, -std::log(p[1]), 1e-15);
}

TEST(Feedback, RandomFeedbackSendsBTimesTheErrorAndKeepsTheReadoutsGradient) {
  constexpr Index H = 6, classes = 4;
  Readout<double> symmetric(H, classes, 21), random(H, classes, 21, {.feedback = Feedback::Random});
  // B is H × outputs, drawn after [W; b] from the seed, column by column, uniform in ±1/√H.
  const Matrix<double> B = random.feedback();
  ASSERT_EQ(B.rows(), H);
  ASSERT_EQ(B.cols(), classes);
  Random draws(21);
  const double bound = 1 / std::sqrt(static_cast<double>(H));
  for (Index i = 0; i < symmetric.parameters().size(); ++i) draws.uniform(-bound, bound);
  for (Index i = 0; i < B.size(); ++i) ASSERT_EQ(B(i), draws.uniform(-bound, bound)) << i;
  EXPECT_EQ(Readout<double>(H, classes, 21, {.feedback = Feedback::Random}).feedback(), B);  // a function of the seed
  EXPECT_NE(Readout<double>(H, classes, 22, {.feedback = Feedback::Random}).feedback(), B);
  Random values(5);
  Vector<double> deltaSymmetric(H), deltaRandom(H);
  for (int t = 0; t < 3; ++t) {
    const Vector<double> h = randomVector(values, H);
    const Index target = t % classes;
    EXPECT_EQ(random.loss(h, target, deltaRandom), symmetric.loss(h, target, deltaSymmetric));
    Vector<double> error = random.probabilities();
    error[target] -= 1;
    EXPECT_EQ(deltaRandom, Vector<double>(B * error));  // δ = B (p − onehot)
    EXPECT_EQ(deltaSymmetric, Vector<double>(symmetric.weight().transpose() * error));
    EXPECT_EQ(random.gradient(), symmetric.gradient());  // the readout's own gradient is unchanged
  }
  // Training moves W, never B.
  random.parameters() -= 0.5 * random.gradient();
  random.resetGradient();
  random.loss(randomVector(values, H), 0, deltaRandom);
  EXPECT_EQ(random.feedback(), B);
}

TEST(Feedback, RandomFeedbackOfTheRegressionReadout) {
  constexpr Index H = 4, outputs = 2;
  RegressionReadout<double> symmetric(H, outputs, 3), random(H, outputs, 3, {.feedback = Feedback::Random});
  EXPECT_EQ(random.parameters(), symmetric.parameters());
  ASSERT_EQ(random.feedback().rows(), H);
  ASSERT_EQ(random.feedback().cols(), outputs);
  Random values(9);
  const Vector<double> y = randomVector(values, H), target = randomVector(values, outputs);
  Vector<double> deltaSymmetric(H), deltaRandom(H);
  EXPECT_EQ(random.loss(y, target, deltaRandom), symmetric.loss(y, target, deltaSymmetric));
  const Vector<double> error = random.prediction() - target;
  EXPECT_EQ(deltaRandom, Vector<double>(random.feedback() * error));  // δ = B (ŷ − target)
  EXPECT_EQ(random.gradient(), symmetric.gradient());
  // setFeedback: a B of one's own, checked.
  const Matrix<double> mine = Matrix<double>::Constant(H, outputs, 0.25);
  expectError<ShapeError>([&] { random.setFeedback(Matrix<double>::Zero(outputs, H)); }, "feedback");
  expectError<ValueError>([&] { random.setFeedback(Matrix<double>::Constant(H, outputs, kNaN)); }, "feedback");
  EXPECT_NE(random.feedback(), mine);
  random.setFeedback(mine);
  random.loss(y, target, deltaRandom);
  EXPECT_EQ(deltaRandom, Vector<double>(mine * (random.prediction() - target)));
}

// --- States saved and loaded ---

TEST(ReadoutStates, RoundTripsOfBothReadoutsAndBothFeedbacks) {
  Random values(4);
  const Vector<double> y = randomVector(values, 3), target = randomVector(values, 2);
  Vector<double> delta(3);
  for (Feedback feedback : {Feedback::Symmetric, Feedback::Random}) {
    SCOPED_TRACE(feedback == Feedback::Random ? "random feedback" : "symmetric feedback");
    RegressionReadout<double> regression(3, 2, 1, {.feedback = feedback});
    regression.loss(y, target, delta);
    RegressionReadout<double> restored(3, 2, 99, {.feedback = feedback});  // other weights and B
    restored.loadState(stateOf(regression), "");
    EXPECT_TRUE(sameArchive(stateOf(restored), stateOf(regression)));
    EXPECT_EQ(restored.parameters(), regression.parameters());
    EXPECT_EQ(restored.gradient(), regression.gradient());
    EXPECT_EQ(restored.feedback(), regression.feedback());
    const NpzArchive saved = stateOf(regression);
    EXPECT_EQ(saved.count("feedback"), feedback == Feedback::Random ? 1U : 0U);
    EXPECT_EQ(saved.count("loss"), 1U);

    Readout<double> classes(3, 2, 1, {.feedback = feedback});
    classes.loss(y, 1, delta);
    Readout<double> classesRestored(3, 2, 99, {.feedback = feedback});
    classesRestored.loadState(stateOf(classes), "");
    EXPECT_TRUE(sameArchive(stateOf(classesRestored), stateOf(classes)));
    EXPECT_EQ(stateOf(classes).count("loss"), 0U);  // a Readout's state is what it was before
  }
}

TEST(ReadoutStates, ForeignStatesAreNamedAndChangeNothing) {
  RegressionReadout<double> regression(3, 2, 1), randomRegression(3, 2, 1, {.feedback = Feedback::Random});
  Readout<double> classes(3, 2, 1), randomClasses(3, 2, 1, {.feedback = Feedback::Random});
  const RegressionReadout<double> regressionBefore = regression;
  const Readout<double> classesBefore = classes;
  // A readout of the other loss.
  expectError<FormatError>([&] { regression.loadState(stateOf(classes), ""); }, "array 'loss'");
  expectError<FormatError>([&] { classes.loadState(stateOf(regression), ""); }, "array 'loss'");
  // The other feedback: the trained run's must go on.
  expectError<FormatError>([&] { regression.loadState(stateOf(randomRegression), ""); }, "array 'feedback'");
  expectError<FormatError>([&] { randomRegression.loadState(stateOf(regression), ""); }, "array 'feedback'");
  expectError<FormatError>([&] { classes.loadState(stateOf(randomClasses), ""); }, "array 'feedback'");
  expectError<FormatError>([&] { randomClasses.loadState(stateOf(classes), ""); }, "array 'feedback'");
  // Wrong shapes and non-finite values.
  NpzArchive wrong = stateOf(randomRegression);
  putArray(wrong, "feedback", Matrix<double>::Zero(2, 3));
  expectError<FormatError>([&] { randomRegression.loadState(wrong, ""); }, "array 'feedback'");
  Matrix<double> nan = Matrix<double>::Zero(3, 2);
  nan(1, 1) = kNaN;
  putArray(wrong, "feedback", nan);
  expectError<FormatError>([&] { randomRegression.loadState(wrong, ""); }, "array 'feedback'");
  wrong = stateOf(regression);
  putArray(wrong, "weight", RowMatrix<double>::Zero(2, 4));
  expectError<FormatError>([&] { regression.loadState(wrong, ""); }, "array 'weight'");
  putText(wrong, "loss", "cross_entropy");
  expectError<FormatError>([&] { regression.loadState(wrong, ""); }, "array 'loss'");
  EXPECT_TRUE(sameArchive(stateOf(regression), stateOf(regressionBefore)));
  EXPECT_TRUE(sameArchive(stateOf(classes), stateOf(classesBefore)));
  EXPECT_TRUE(sameArchive(stateOf(randomRegression), stateOf(RegressionReadout<double>(3, 2, 1, {.feedback = Feedback::Random}))));
}

}  // namespace
}  // namespace snap::test
