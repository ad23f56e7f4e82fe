// docs/math.md §6: the readout's loss and gradients, SGD and Adam against their formulas, clipping,
// the trainer's schedules and batches, and a small online run that learns.

#include <gtest/gtest.h>

#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

TEST(Readout, LossAndGradientsMatchFiniteDifferences) {
  Readout<double> readout(4, 3, 7);
  Random random(8);
  const Vector<double> state = randomVector(random, 6);  // an LSTM-like state [h; c], H = 4
  Vector<double> delta(6);
  readout.resetGradient();
  const double loss = readout.loss(state, 2, delta);
  // −ln softmax(W h + b)[2], written out.
  auto reference = [&](const Vector<double>& parameters, const Vector<double>& s) {
    const Eigen::Map<const RowMatrix<double>> w(parameters.data(), 3, 4);
    const Vector<double> logits = w * s.head(4) + parameters.tail(3);
    return -(logits[2] - std::log(logits.array().exp().sum()));
  };
  EXPECT_NEAR(loss, reference(readout.parameters(), state), 1e-14);
  const Matrix<double> numericState = finiteDifferences(
      [&](const Vector<double>& s) { return Vector<double>::Constant(1, reference(readout.parameters(), s)); }, state);
  EXPECT_LE(relativeError(delta, Vector<double>(numericState.row(0).transpose())), 1e-8);
  EXPECT_EQ(delta.tail(2), Vector<double>::Zero(2));  // the readout reads h only
  const Matrix<double> numericParameters = finiteDifferences(
      [&](const Vector<double>& p) { return Vector<double>::Constant(1, reference(p, state)); }, readout.parameters());
  EXPECT_LE(relativeError(readout.gradient(), Vector<double>(numericParameters.row(0).transpose())), 1e-8);
  EXPECT_NEAR(Readout<double>::bits(std::log(2.0)), 1.0, 1e-15);
}

TEST(Optimizers, SgdStepsAgainstTheGradient) {
  Vector<double> theta(2), gradient(2);
  theta << 1.0, -2.0;
  gradient << 0.5, -1.0;
  SGD sgd{.learningRate = 0.1};
  SGD::State<double> state(2);
  sgd.update<double>(state, theta, gradient);
  EXPECT_DOUBLE_EQ(theta[0], 1.0 - 0.1 * 0.5);
  EXPECT_DOUBLE_EQ(theta[1], -2.0 + 0.1 * 1.0);
}

TEST(Optimizers, AdamFollowsItsFormulasOnAHandWorkedCase) {
  // Two steps of Adam (η = 0.1, β1 = 0.9, β2 = 0.999, ε = 1e-8), worked by hand:
  // step 1, g = (0.5, −1): m = (0.05, −0.1), v = (0.00025, 0.001), m̂ = g, v̂ = g², Δ = −η g/(|g| + ε)
  // step 2, g = (0.25, 0.5): m = 0.9 m + 0.1 g = (0.07, −0.04),
  //         v = 0.999 v + 0.001 g² = (0.00031225, 0.001249), m̂ = m/0.19, v̂ = v/0.001999.
  const Adam adam{.learningRate = 0.1, .beta1 = 0.9, .beta2 = 0.999, .epsilon = 1e-8};
  Adam::State<double> state(2);
  Vector<double> theta = Vector<double>::Zero(2), g1(2), g2(2);
  g1 << 0.5, -1.0;
  g2 << 0.25, 0.5;
  adam.update<double>(state, theta, g1);
  EXPECT_NEAR(theta[0], -0.1 * 0.5 / (0.5 + 1e-8), 1e-15);
  EXPECT_NEAR(theta[1], 0.1 * 1.0 / (1.0 + 1e-8), 1e-15);
  adam.update<double>(state, theta, g2);
  const double m[2] = {0.07, -0.04}, v[2] = {0.00031225, 0.001249};
  for (int i = 0; i < 2; ++i) {
    const double step1 = i == 0 ? -0.1 * 0.5 / (0.5 + 1e-8) : 0.1 * 1.0 / (1.0 + 1e-8);
    const double expected = step1 - 0.1 * (m[i] / 0.19) / (std::sqrt(v[i] / 0.001999) + 1e-8);
    EXPECT_NEAR(theta[i], expected, 1e-12) << "parameter " << i;
    EXPECT_NEAR(state.first[i], m[i], 1e-15);
    EXPECT_NEAR(state.second[i], v[i], 1e-15);
  }
  EXPECT_EQ(state.steps, 2);
}

TEST(Optimizers, InvalidConfigurationsAreRefused) {
  EXPECT_THROW(SGD{.learningRate = 0}.validate(), ValueError);
  EXPECT_THROW(SGD{.learningRate = std::nan("")}.validate(), ValueError);
  EXPECT_THROW((Adam{.learningRate = -1}.validate()), ValueError);
  EXPECT_THROW((Adam{.beta1 = 1.0}.validate()), ValueError);
  EXPECT_THROW((Adam{.epsilon = 0}.validate()), ValueError);
}

TEST(Clipping, ScalesTheJointNormDownToTheLimit) {
  Vector<double> a(2), b(1);
  a << 3, 0;
  b << 4;  // joint norm 5
  EXPECT_DOUBLE_EQ(clipGlobalNorm<double>(10.0, {&a, &b}), 5.0);
  EXPECT_EQ(a[0], 3.0);  // below the limit: unchanged
  EXPECT_DOUBLE_EQ(clipGlobalNorm<double>(2.5, {&a, &b}), 5.0);
  EXPECT_DOUBLE_EQ(a[0], 1.5);
  EXPECT_DOUBLE_EQ(b[0], 2.0);
  EXPECT_NEAR(std::sqrt(a.squaredNorm() + b.squaredNorm()), 2.5, 1e-15);
  clipGlobalNorm<double>(0.0, {&a, &b});  // ≤ 0: off
  EXPECT_DOUBLE_EQ(b[0], 2.0);
}

/// Bit stream task: the target at step t is the input bit of step t − 1 (a one-step memory).
struct EchoTask {
  Random random{5};
  int previous = 0;
  Vector<double> input = Vector<double>::Zero(2);
  int next() {
    const int target = previous;
    previous = static_cast<int>(random.below(2));
    input.setZero();
    input[previous] = 1;
    return target;
  }
};

template <class Engine>
double learnEcho(const typename Engine::Options& engineOptions, Index updateEvery = 1) {
  using Cell = typename Engine::CellType;
  Cell cell(2, 8, {.recurrentDensity = 0.5, .seed = 3});
  Readout<double> readout(8, 2, 4);
  Trainer<Engine> trainer(cell, readout, Adam{.learningRate = 0.03}, {.updateEvery = updateEvery}, engineOptions);
  EchoTask task;
  double recent = 0;
  constexpr int steps = 3000, tail = 500;
  for (int t = 0; t < steps; ++t) {
    const int target = task.next();
    const double bits = Readout<double>::bits(trainer.step(task.input, t == 0 ? -1 : target));
    if (t >= steps - tail) recent += bits;
  }
  return recent / tail;
}

TEST(OnlineTraining, EveryEngineLearnsAOneStepMemoryOnline) {
  // Stated requirement: within 3000 online steps, the average loss over the last 500 steps is
  // below 0.1 bits (chance is 1 bit).
  EXPECT_LT(learnEcho<RTRL<GRU<double>>>({}), 0.1);
  EXPECT_LT(learnEcho<SnAp<GRU<double>>>({.n = 1}), 0.1);
  EXPECT_LT(learnEcho<SnAp<GRU<double>>>({.n = 2}), 0.1);
  EXPECT_LT(learnEcho<UORO<GRU<double>>>({.seed = 1}), 0.1);
  EXPECT_LT(learnEcho<BPTT<GRU<double>>>({.window = 4}, 4), 0.1);
  EXPECT_LT(learnEcho<SnAp<LSTM<double>>>({.n = 2}), 0.1);
}

TEST(Trainer, OnlineScheduleUpdatesEveryKSteps) {
  GRU<double> cell(2, 4, {.seed = 1});
  Readout<double> readout(4, 2, 2);
  Trainer<SnAp<GRU<double>>> trainer(cell, readout, SGD{.learningRate = 0.1}, {.updateEvery = 3});
  EchoTask task;
  for (int t = 0; t < 10; ++t) {
    const int target = task.next();
    trainer.step(task.input, target);
  }
  EXPECT_EQ(trainer.updates(), 3);
  EXPECT_EQ(trainer.pendingSteps(), 1);
}

TEST(Trainer, PerSequenceRtrlAndBpttMakeTheSameUpdates) {
  // One update per sequence with the exact gradient: RTRL and untruncated BPTT must leave the
  // same parameters after several sequences.
  auto train = [](auto engineTag) {
    using Engine = decltype(engineTag);
    GRU<double> cell(2, 5, {.recurrentDensity = 0.5, .seed = 9});
    Readout<double> readout(5, 2, 10);
    Trainer<Engine> trainer(cell, readout, Adam{.learningRate = 0.01}, {.schedule = UpdateSchedule::PerSequence});
    EchoTask task;
    for (int sequence = 0; sequence < 6; ++sequence) {
      for (int t = 0; t < 7; ++t) {
        const int target = task.next();
        trainer.step(task.input, target);
      }
      trainer.endSequence();
    }
    EXPECT_EQ(trainer.updates(), 6);
    Vector<double> all(cell.parameterCount() + readout.parameters().size());
    all << cell.parameters(), readout.parameters();
    return all;
  };
  const Vector<double> rtrl = train(RTRL<GRU<double>>(GRU<double>(1, 1)));
  const Vector<double> bptt = train(BPTT<GRU<double>>(GRU<double>(1, 1)));
  EXPECT_LE(relativeError(bptt, rtrl), 1e-10);
}

TEST(Trainer, BatchUpdateUsesTheMeanGradientOverStreams) {
  // Two streams with different data: one SGD update moves θ by −η (g_a + g_b) / 2, where g_a
  // and g_b are what each stream alone would give.
  auto gradientOf = [](std::uint64_t dataSeed) {
    GRU<double> cell(2, 4, {.seed = 1});
    Readout<double> readout(4, 2, 2);
    RTRL<GRU<double>> engine(cell);
    Random random(dataSeed);
    Vector<double> delta(4), x(2);
    for (int t = 0; t < 5; ++t) {
      x = randomVector(random, 2);
      readout.loss(engine.step(x), static_cast<Index>(random.below(2)), delta);
      engine.accumulate(delta);
    }
    Vector<double> all(engine.gradient().size() + readout.gradient().size());
    all << engine.gradient(), readout.gradient();
    return all;
  };
  GRU<double> cell(2, 4, {.seed = 1});
  Readout<double> readout(4, 2, 2);
  Vector<double> before(cell.parameterCount() + readout.parameters().size());
  before << cell.parameters(), readout.parameters();
  Trainer<RTRL<GRU<double>>> trainer(cell, readout, SGD{.learningRate = 0.5}, {.batch = 2, .updateEvery = 5});
  Random a(101), b(202);
  for (int t = 0; t < 5; ++t) {
    const Vector<double> xa = randomVector(a, 2);
    const auto ta = static_cast<Index>(a.below(2));
    const Vector<double> xb = randomVector(b, 2);
    const auto tb = static_cast<Index>(b.below(2));
    Matrix<double> inputs(2, 2);
    inputs << xa, xb;
    trainer.observe(inputs, std::vector<Index>{ta, tb});
    trainer.endStep();
  }
  ASSERT_EQ(trainer.updates(), 1);
  Vector<double> after(before.size());
  after << cell.parameters(), readout.parameters();
  const Vector<double> expected = before - 0.5 * (gradientOf(101) + gradientOf(202)) / 2;
  EXPECT_LE(relativeError(after, expected), 1e-13);
}

TEST(Trainer, RefusesBadOptions) {
  GRU<double> cell(2, 4);
  Readout<double> readout(4, 2), wrong(5, 2);
  using T = Trainer<SnAp<GRU<double>>>;
  EXPECT_THROW(T(cell, readout, SGD{}, {.batch = 0}), ValueError);
  EXPECT_THROW(T(cell, readout, SGD{}, {.threads = 0}), ValueError);
  EXPECT_THROW(T(cell, readout, SGD{}, {.threads = 257}), ValueError);
  EXPECT_THROW(T(cell, readout, SGD{}, {.updateEvery = 0}), ValueError);
  EXPECT_THROW(T(cell, readout, SGD{.learningRate = -1}), ValueError);
  EXPECT_THROW(T(cell, wrong, SGD{}), ShapeError);
}

}  // namespace
}  // namespace snap::test
