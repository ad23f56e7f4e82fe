// docs/math.md §3: RTRL and untruncated BPTT give the same gradient, both equal central finite
// differences of the total loss, and truncated BPTT is exactly the windowed recursion.

#include <gtest/gtest.h>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

template <class C>
class ExactEngines : public ::testing::Test {};
using DoubleCells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(ExactEngines, DoubleCells);

constexpr Index kInputs = 3;
constexpr Index kHidden = 7;
constexpr Index kSteps = 24;

/// L(θ) = Σ_t δ_tᵀ s_t(θ), with the states from the reference equations.
template <class C>
double referenceLoss(const C& cell, const CellTensors<double>& w, const Stream& stream) {
  Vector<double> s = stream.initial;
  double loss = 0;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    s = referenceStep(cell, w, stream.inputs[t], s);
    loss += stream.deltas[t].dot(s);
  }
  return loss;
}

template <class C>
Vector<double> finiteDifferenceGradient(const C& cell, const Stream& stream) {
  const auto loss = [&](const Vector<double>& theta) {
    return Vector<double>::Constant(1, referenceLoss(cell, cell.unflatten(theta), stream));
  };
  return finiteDifferences(loss, cell.parameters()).row(0).transpose();
}

TYPED_TEST(ExactEngines, RtrlEqualsBpttEqualsFiniteDifferences) {
  std::uint64_t seed = 11;
  for (double density : {1.0, 0.25, 0.1}) {
    SCOPED_TRACE(::testing::Message() << "recurrent density " << density);
    TypeParam cell(kInputs, kHidden, {.inputDensity = 0.7, .recurrentDensity = density, .seed = seed++});
    const Stream stream(kInputs, cell.stateSize(), seed++, kSteps);
    RTRL<TypeParam> rtrl(cell);
    BPTT<TypeParam> bptt(cell);
    const Vector<double> gradientRtrl = gradientOver(rtrl, stream);
    const Vector<double> gradientBptt = gradientOver(bptt, stream);
    EXPECT_LE(relativeError(gradientRtrl, gradientBptt), 1e-10);
    const Vector<double> numeric = finiteDifferenceGradient(cell, stream);
    EXPECT_LE(relativeError(gradientRtrl, numeric), 1e-6);
    EXPECT_LE(relativeError(gradientBptt, numeric), 1e-6);
  }
}

TYPED_TEST(ExactEngines, SparseAndDenseRtrlKernelsAgree) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 5});
  const Stream stream(kInputs, cell.stateSize(), 6, kSteps);
  RTRL<TypeParam> dense(cell, {.denseDynamicsAbove = 0.0});
  RTRL<TypeParam> sparse(cell, {.denseDynamicsAbove = 2.0});
  EXPECT_LE(relativeError(gradientOver(sparse, stream), gradientOver(dense, stream)), 1e-13);
}

TYPED_TEST(ExactEngines, BpttWindowOneIsTheImmediateGradient) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 3});
  const Stream stream(kInputs, cell.stateSize(), 4, kSteps);
  // Σ_t I_tᵀ δ_t, with I_t assembled densely from the cell's forward-mode product.
  Vector<double> expected = Vector<double>::Zero(cell.parameterCount());
  Vector<double> s = stream.initial;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    LibraryStep<TypeParam> step(cell, stream.inputs[t], s);
    expected += denseImmediate(cell, step.cache, step.z).transpose() * stream.deltas[t];
    s = step.next;
  }
  BPTT<TypeParam> windowOne(cell, {.window = 1});
  EXPECT_LE(relativeError(gradientOver(windowOne, stream), expected), 1e-12);

  BPTT<TypeParam> full(cell), wholeSequence(cell, {.window = kSteps});
  EXPECT_LE(relativeError(gradientOver(wholeSequence, stream), gradientOver(full, stream)), 1e-13);
}

TYPED_TEST(ExactEngines, TruncatedBpttIsTheWindowedRecursion) {
  constexpr Index window = 5;
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 8});
  const Stream stream(kInputs, cell.stateSize(), 9, kSteps);
  // Reference: dense D_t and I_t per step, ε backpropagated within each window of 5 steps.
  std::vector<Matrix<double>> dynamics, immediate;
  Vector<double> s = stream.initial;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    LibraryStep<TypeParam> step(cell, stream.inputs[t], s);
    dynamics.push_back(finiteDifferenceDynamics(cell, stream.inputs[t], s));
    immediate.push_back(finiteDifferenceImmediate(cell, stream.inputs[t], s));
    s = step.next;
  }
  Vector<double> expected = Vector<double>::Zero(cell.parameterCount());
  for (Index start = 0; start < kSteps; start += window) {
    const Index end = std::min(start + window, kSteps);
    Vector<double> epsilon = Vector<double>::Zero(cell.stateSize());
    for (Index t = end - 1; t >= start; --t) {
      const auto i = static_cast<std::size_t>(t);
      epsilon += stream.deltas[i];
      expected += immediate[i].transpose() * epsilon;
      epsilon = (dynamics[i].transpose() * epsilon).eval();
    }
  }
  BPTT<TypeParam> truncated(cell, {.window = window});
  EXPECT_LE(relativeError(gradientOver(truncated, stream), expected), 1e-7);  // finite-difference reference
}

TYPED_TEST(ExactEngines, ReadingAndResettingTheGradientMidSequence) {
  // Reading the gradient mid-window changes nothing; resetGradient() forgets the δ so far while
  // later δ still flow through the whole history, exactly as RTRL's carried influence does.
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 21});
  const Stream stream(kInputs, cell.stateSize(), 22, kSteps);
  RTRL<TypeParam> rtrl(cell);
  BPTT<TypeParam> bptt(cell), truncated(cell, {.window = 6});
  RTRL<TypeParam> rtrlReference(cell);
  for (auto* engine : {&rtrl, &rtrlReference}) engine->resetState(stream.initial);
  bptt.resetState(stream.initial);
  truncated.resetState(stream.initial);
  for (Index t = 0; t < kSteps; ++t) {
    const auto i = static_cast<std::size_t>(t);
    rtrl.step(stream.inputs[i]);
    bptt.step(stream.inputs[i]);
    rtrl.accumulate(stream.deltas[i]);
    bptt.accumulate(stream.deltas[i]);
    if (t % 7 == 3) {
      EXPECT_LE(relativeError(bptt.gradient(), rtrl.gradient()), 1e-10) << "at step " << t;
    }
    if (t == 12) {
      rtrl.resetGradient();
      bptt.resetGradient();
    }
  }
  EXPECT_LE(relativeError(bptt.gradient(), rtrl.gradient()), 1e-10);
}

TYPED_TEST(ExactEngines, SequencesAreIndependentAfterResetState) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 31});
  const Stream first(kInputs, cell.stateSize(), 32, kSteps), second(kInputs, cell.stateSize(), 33, kSteps);
  RTRL<TypeParam> rtrlFirst(cell), rtrlSecond(cell), rtrlBoth(cell);
  BPTT<TypeParam> bpttBoth(cell, {.window = 10});
  const Vector<double> expected = gradientOver(rtrlFirst, first) + gradientOver(rtrlSecond, second);
  gradientOver(rtrlBoth, first);
  gradientOver(bpttBoth, first);
  EXPECT_LE(relativeError(gradientOver(rtrlBoth, second), expected), 1e-12);
  BPTT<TypeParam> bpttFirst(cell), bpttSecond(cell);
  // Windows of 10 over 24 steps truncate, so compare BPTT against its own sequences.
  BPTT<TypeParam> truncatedFirst(cell, {.window = 10}), truncatedSecond(cell, {.window = 10});
  const Vector<double> expectedTruncated = gradientOver(truncatedFirst, first) + gradientOver(truncatedSecond, second);
  EXPECT_LE(relativeError(gradientOver(bpttBoth, second), expectedTruncated), 1e-12);
}

TYPED_TEST(ExactEngines, MaskedWeightsHaveZeroGradientAndStayZero) {
  TypeParam cell(kInputs, kHidden, {.inputDensity = 0.5, .recurrentDensity = 0.25, .seed = 41});
  const Stream stream(kInputs, cell.stateSize(), 42, kSteps);
  RTRL<TypeParam> rtrl(cell);
  BPTT<TypeParam> bptt(cell);
  for (int update = 0; update < 5; ++update) {
    for (auto gradient : {gradientOver(rtrl, stream), gradientOver(bptt, stream)}) {
      const CellTensors<double> tensors = cell.unflatten(gradient);
      for (Index r = 0; r < cell.gateRows(); ++r) {
        for (Index c = 0; c < kInputs; ++c) {
          if (cell.mask_ih()(r, c) == 0) {
            EXPECT_EQ(tensors.weight_ih(r, c), 0.0);
          }
        }
        for (Index c = 0; c < kHidden; ++c) {
          if (cell.mask_hh()(r, c) == 0) {
            EXPECT_EQ(tensors.weight_hh(r, c), 0.0);
          }
        }
      }
    }
    // An optimizer-like update of θ leaves every masked weight exactly 0.
    cell.setParameters(cell.parameters() - 0.1 * rtrl.gradient());
    rtrl.resetGradient();
    bptt.resetGradient();
    EXPECT_TRUE((cell.weight_ih().array() * (1 - cell.mask_ih().array())).isZero(0.0));
    EXPECT_TRUE((cell.weight_hh().array() * (1 - cell.mask_hh().array())).isZero(0.0));
  }
}

TYPED_TEST(ExactEngines, EnginesFollowAMaskChange) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 51});
  const Stream stream(kInputs, cell.stateSize(), 52, kSteps);
  RTRL<TypeParam> rtrl(cell);
  BPTT<TypeParam> bptt(cell);
  gradientOver(rtrl, stream);
  gradientOver(bptt, stream);
  RowMatrix<double> maskHh = cell.mask_hh();
  maskHh.col(0).setZero();
  cell.setMasks(cell.mask_ih(), maskHh);
  rtrl.resetGradient();
  bptt.resetGradient();
  const Vector<double> gradient = gradientOver(rtrl, stream);
  ASSERT_EQ(gradient.size(), cell.parameterCount());
  EXPECT_LE(relativeError(gradient, gradientOver(bptt, stream)), 1e-10);
  EXPECT_LE(relativeError(gradient, finiteDifferenceGradient(cell, stream)), 1e-6);
}

/// The float instantiation runs and agrees with double to float precision.
TYPED_TEST(ExactEngines, FloatAgreesWithDouble) {
  using FloatCell = decltype([] {
    if constexpr (std::is_same_v<TypeParam, RNN<double>>) return RNN<float>(1, 1);
    else if constexpr (std::is_same_v<TypeParam, GRU<double>>) return GRU<float>(1, 1);
    else return LSTM<float>(1, 1);
  }());
  const CellOptions options{.recurrentDensity = 0.25, .seed = 61};
  TypeParam cell(kInputs, kHidden, options);
  FloatCell cellFloat(kInputs, kHidden, options);
  const CellTensors<double> w = cell.tensors();
  cellFloat.setTensors({w.weight_ih.cast<float>(), w.weight_hh.cast<float>(), w.bias_ih.cast<float>(),
                        w.bias_hh.cast<float>()});
  const Stream stream(kInputs, cell.stateSize(), 62, kSteps);
  RTRL<TypeParam> rtrl(cell);
  RTRL<FloatCell> rtrlFloat(cellFloat);
  BPTT<FloatCell> bpttFloat(cellFloat, {.window = 8});
  BPTT<TypeParam> bptt(cell, {.window = 8});
  const Vector<double> expected = gradientOver(rtrl, stream), expectedTruncated = gradientOver(bptt, stream);
  rtrlFloat.resetState(stream.initial.cast<float>());
  bpttFloat.resetState(stream.initial.cast<float>());
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    rtrlFloat.step(stream.inputs[t].cast<float>());
    bpttFloat.step(stream.inputs[t].cast<float>());
    rtrlFloat.accumulate(stream.deltas[t].cast<float>());
    bpttFloat.accumulate(stream.deltas[t].cast<float>());
  }
  EXPECT_LE(relativeError(rtrlFloat.gradient().template cast<double>(), expected), 1e-4);
  EXPECT_LE(relativeError(bpttFloat.gradient().template cast<double>(), expectedTruncated), 1e-4);
}

}  // namespace
}  // namespace snap::test
