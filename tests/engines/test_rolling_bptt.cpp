// Rolling truncated BPTT(L) (docs/math.md §8): with θ fixed, its gradient over a sequence is
// Σ_t ∇θ δ_tᵀ y_t through the last L steps only, the window starting from the state before it;
// computed here by finite differences of the reference equations run over each window, and by a
// fresh BPTT engine per window. With L at least the sequence's length it is full BPTT. With θ
// changed between steps (online updates), its states are those of the window recomputed under
// the current θ from the window's start, and each step's gradient is that of the window under the
// current θ.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kSteps = 14;

/// δ_tᵀ y_t after running the reference from `start` over inputs[first … last] under θ.
double windowLoss(const ReferenceModel& model, const Vector<double>& theta, const Vector<double>& start,
                  const std::vector<Vector<double>>& inputs, Index first, Index last, const Vector<double>& delta) {
  const ReferenceModel::Weights w = model.weights(theta);
  Vector<double> s = start, y;
  for (Index t = first; t <= last; ++t) {
    const ReferenceModel::Step step = model.step(w, inputs[static_cast<std::size_t>(t)], s);
    s = step.next;
    y = step.output;
  }
  return delta.dot(y);
}

Vector<double> windowGradient(const ReferenceModel& model, const Vector<double>& theta, const Vector<double>& start,
                              const std::vector<Vector<double>>& inputs, Index first, Index last, const Vector<double>& delta) {
  return finiteDifferences(
             [&](const Vector<double>& at) {
               return Vector<double>::Constant(1, windowLoss(model, at, start, inputs, first, last, delta));
             },
             theta)
      .row(0)
      .transpose();
}

/// The gradient of δ_tᵀ y_t through inputs[first … last] from `start`, by a fresh BPTT engine
/// that sees δ at the last step only.
template <class C>
Vector<double> bpttWindowGradient(const C& cell, const Vector<double>& start, const std::vector<Vector<double>>& inputs,
                                  Index first, Index last, const Vector<double>& delta) {
  BPTT<C> bptt(cell);
  bptt.resetState(start);
  for (Index t = first; t <= last; ++t) bptt.step(inputs[static_cast<std::size_t>(t)]);
  bptt.accumulate(delta);
  return bptt.gradient();
}

template <class C>
void expectTruncatedSum(const C& cell, const ReferenceModel& model, Index window, std::uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "L = " << window);
  const OutputStream stream(cell.inputSize(), cell.outputSize(), cell.stateSize(), seed, kSteps);
  const Vector<double> theta = cell.parameters();
  const ReferenceModel::Weights w = model.weights(theta);
  // The trajectory (θ fixed), and for each t the sum's reference terms.
  std::vector<Vector<double>> states;
  Vector<double> s = stream.initial;
  for (const Vector<double>& x : stream.inputs) states.push_back(s = model.step(w, x, s).next);
  Vector<double> numeric = Vector<double>::Zero(theta.size()), engines = Vector<double>::Zero(theta.size());
  RollingBPTT<C> rolling(cell, {.window = window});
  rolling.resetState(stream.initial);
  for (Index t = 0; t < kSteps; ++t) {
    const auto i = static_cast<std::size_t>(t);
    const Index first = std::max<Index>(0, t - window + 1);
    const Vector<double> start = first == 0 ? stream.initial : states[static_cast<std::size_t>(first - 1)];
    numeric += windowGradient(model, theta, start, stream.inputs, first, t, stream.deltas[i]);
    engines += bpttWindowGradient(cell, start, stream.inputs, first, t, stream.deltas[i]);
    const Matrix<double>& state = rolling.step(stream.inputs[i]);
    EXPECT_LE(relativeError(Vector<double>(state.col(0)), states[i]), 1e-12) << "state after step " << t;
    EXPECT_EQ(rolling.windowSteps(), std::min<Index>(t + 1, window));
    rolling.accumulate(stream.deltas[i]);
  }
  ASSERT_GT(numeric.norm(), 0.0);
  EXPECT_LE(relativeError(rolling.gradient(), engines), 1e-10);
  EXPECT_LE(relativeError(rolling.gradient(), numeric), 1e-6);
}

TEST(RollingBPTT, WithFixedParametersIsTheSumOfTruncatedGradients) {
  std::uint64_t seed = 1;
  const GRU<double> gru(3, 6, {.recurrentDensity = 0.5, .seed = seed++});
  const LSTM<double> lstm(3, 5, {.recurrentDensity = 0.5, .seed = seed++});
  const RNN<double> leaky(3, 6, {.recurrentDensity = 0.5, .seed = seed++}, {.leak = 0.3});
  const LRU<double> lru(3, 5, {.inputDensity = 0.6, .activation = LRUActivation::Tanh, .seed = seed++});
  const std::vector<StackCase> stacks = mixedStacks();
  for (Index window : {1, 3, 5}) {
    {
      SCOPED_TRACE("GRU");
      expectTruncatedSum(gru, ReferenceModel({referenceLayer(gru)}), window, seed++);
    }
    {
      SCOPED_TRACE("LSTM");
      expectTruncatedSum(lstm, ReferenceModel({referenceLayer(lstm)}), window, seed++);
    }
    {
      SCOPED_TRACE("leaky RNN");
      expectTruncatedSum(leaky, ReferenceModel({referenceLayer(leaky)}), window, seed++);
    }
    {
      SCOPED_TRACE("LRU");
      expectTruncatedSum(lru, ReferenceModel({referenceLayer(lru)}), window, seed++);
    }
    for (const StackCase& c : {stacks[1], stacks[2]}) {
      SCOPED_TRACE(c.name);
      expectTruncatedSum(c.stack, c.model, window, seed++);
    }
  }
}

template <class C>
void expectFullBptt(const C& cell, std::uint64_t seed) {
  const OutputStream stream(cell.inputSize(), cell.outputSize(), cell.stateSize(), seed, kSteps);
  BPTT<C> bptt(cell);
  const Vector<double> expected = gradientOverOutputs(bptt, stream);
  for (Index window : {kSteps, kSteps + 5}) {
    RollingBPTT<C> rolling(cell, {.window = window});
    EXPECT_LE(relativeError(gradientOverOutputs(rolling, stream), expected), 1e-10) << "L = " << window;
  }
  // A shorter window truncates: a different gradient (the comparison above could fail).
  RollingBPTT<C> shorter(cell, {.window = 2});
  EXPECT_GT(relativeError(gradientOverOutputs(shorter, stream), expected), 1e-3);
}

TEST(RollingBPTT, AWindowAsLongAsTheSequenceIsFullBptt) {
  expectFullBptt(GRU<double>(3, 6, {.recurrentDensity = 0.5, .seed = 20}), 21);
  expectFullBptt(LSTM<double>(3, 5, {.recurrentDensity = 0.5, .seed = 22}), 23);
  expectFullBptt(LRU<double>(3, 5, {.activation = LRUActivation::GELU, .seed = 24}), 25);
  expectFullBptt(mixedStacks()[2].stack, 26);
}

/// Online updates: θ_t changes before each step. The reference follows the engine's definition:
/// the window of step t covers steps a_t = max(0, t − L + 1) … t, recomputed under θ_t from its
/// start, which is the initial state while a_t = 0 and afterwards the first state of the previous
/// window as that window was recomputed (under θ_{t−1}). Each step's gradient is that of
/// δ_tᵀ y_t through its window under θ_t.
template <class C>
void expectOnline(C cell, const ReferenceModel& model, Index window, std::uint64_t seed) {
  SCOPED_TRACE(::testing::Message() << "L = " << window);
  const OutputStream stream(cell.inputSize(), cell.outputSize(), cell.stateSize(), seed, kSteps);
  Random random(seed + 1);
  RollingBPTT<C> rolling(cell, {.window = window});
  rolling.resetState(stream.initial);
  Vector<double> start = stream.initial;
  std::vector<Vector<double>> previousWindow;  // the states of the previous window, first step first
  const Vector<double> theta0 = cell.parameters();
  std::vector<Vector<double>> fixedStates;  // the trajectory under θ_0, to show that θ_t matters
  {
    Vector<double> s = stream.initial;
    const ReferenceModel::Weights w0 = model.weights(theta0);
    for (const Vector<double>& x : stream.inputs) fixedStates.push_back(s = model.step(w0, x, s).next);
  }
  double largestChange = 0;
  for (Index t = 0; t < kSteps; ++t) {
    const auto i = static_cast<std::size_t>(t);
    if (t > 0) cell.setParameters(cell.parameters() + randomVector(random, cell.parameterCount(), 0.02));
    const Vector<double> theta = cell.parameters();
    const Index first = std::max<Index>(0, t - window + 1);
    if (first > 0) start = previousWindow.front();
    std::vector<Vector<double>> current;
    Vector<double> s = start;
    const ReferenceModel::Weights w = model.weights(theta);
    for (Index tau = first; tau <= t; ++tau) current.push_back(s = model.step(w, stream.inputs[static_cast<std::size_t>(tau)], s).next);
    previousWindow = current;

    const Matrix<double>& state = rolling.step(stream.inputs[i]);
    EXPECT_LE(relativeError(Vector<double>(state.col(0)), current.back()), 1e-12) << "state after step " << t;
    largestChange = std::max(largestChange, relativeError(current.back(), fixedStates[i]));
    rolling.resetGradient();
    rolling.accumulate(stream.deltas[i]);
    const Vector<double> numeric = windowGradient(model, theta, start, stream.inputs, first, t, stream.deltas[i]);
    EXPECT_LE(relativeError(rolling.gradient(), bpttWindowGradient(cell, start, stream.inputs, first, t, stream.deltas[i])),
              1e-10)
        << "gradient of step " << t;
    EXPECT_LE(relativeError(rolling.gradient(), numeric), 1e-6) << "gradient of step " << t;
  }
  EXPECT_GT(largestChange, 1e-4) << "the updates did not change the states: the check could not fail";
}

TEST(RollingBPTT, OnlineUpdatesRecomputeTheWindowUnderTheCurrentParameters) {
  for (Index window : {1, 4}) {
    {
      SCOPED_TRACE("GRU");
      const GRU<double> gru(3, 6, {.recurrentDensity = 0.5, .seed = 30});
      expectOnline(gru, ReferenceModel({referenceLayer(gru)}), window, 31);
    }
    {
      SCOPED_TRACE("LRU");
      const LRU<double> lru(3, 5, {.inputDensity = 0.6, .activation = LRUActivation::Tanh, .seed = 32});
      expectOnline(lru, ReferenceModel({referenceLayer(lru)}), window, 33);
    }
    {
      const StackCase c = mixedStacks()[0];
      SCOPED_TRACE(c.name);
      expectOnline(c.stack, c.model, window, 34);
    }
  }
}

TEST(RollingBPTT, PrepareAndCommitAreOneStep) {
  const LRU<double> cell(3, 5, {.activation = LRUActivation::GELU, .seed = 40});
  const OutputStream stream(3, 3, 10, 41, kSteps);
  RollingBPTT<LRU<double>> whole(cell, {.window = 4}), split(cell, {.window = 4});
  whole.resetState(stream.initial);
  split.resetState(stream.initial);
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    const Matrix<double> prepared = split.prepareStep(stream.inputs[t]);
    const Matrix<double> outputs = split.preparedOutputs();
    split.commitStep();
    EXPECT_TRUE(whole.step(stream.inputs[t]) == prepared);
    EXPECT_TRUE(whole.outputs() == outputs);
    EXPECT_TRUE(split.outputs() == outputs);
    whole.accumulate(stream.deltas[t]);
    split.accumulate(stream.deltas[t]);
  }
  EXPECT_TRUE(whole.gradient() == split.gradient());
}

TEST(RollingBPTT, ResetStateStartsANewSequence) {
  const GRU<double> cell(3, 6, {.recurrentDensity = 0.5, .seed = 42});
  const OutputStream first(3, 6, 6, 43, kSteps), second(3, 6, 6, 44, kSteps);
  RollingBPTT<GRU<double>> both(cell, {.window = 5}), one(cell, {.window = 5}), other(cell, {.window = 5});
  gradientOverOutputs(both, first);
  const Vector<double> expected = gradientOverOutputs(one, first) + gradientOverOutputs(other, second);
  EXPECT_LE(relativeError(gradientOverOutputs(both, second), expected), 1e-14);
}

}  // namespace
}  // namespace snap::test
