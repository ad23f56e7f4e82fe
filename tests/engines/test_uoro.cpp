// docs/math.md §5: UORO's rank-one update is unbiased, its error falls as 1/√samples, and runs with
// the same seed are bit-identical.

#include <gtest/gtest.h>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

template <class C>
class UOROEngine : public ::testing::Test {};
using DoubleCells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(UOROEngine, DoubleCells);

constexpr Index kInputs = 3;
constexpr Index kHidden = 5;

TYPED_TEST(UOROEngine, RankOneUpdateIsUnbiased) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 111});
  Random random(112);
  const Vector<double> x = randomVector(random, kInputs);
  const Vector<double> previous = randomVector(random, cell.stateSize(), 0.8);
  for (double estimateScale : {0.0, 1.0}) {
    SCOPED_TRACE(::testing::Message() << (estimateScale == 0 ? "zero" : "nonzero") << " previous estimate");
    const Vector<double> stateEstimate = estimateScale * randomVector(random, cell.stateSize());
    const Vector<double> parameterEstimate = estimateScale * randomVector(random, cell.parameterCount());
    // E[s̃_t θ̃_tᵀ] = D_t s̃_{t−1} θ̃_{t−1}ᵀ + I_t, with D_t and I_t from the cell's products.
    LibraryStep<TypeParam> step(cell, x, previous);
    const Matrix<double> expected = denseDynamics(cell, step.cache) * stateEstimate * parameterEstimate.transpose() +
                                    denseImmediate(cell, step.cache, step.z);
    // The root-mean-square error of the sample mean over 16 independent replicas, at 4× more
    // samples each time: it halves for an unbiased estimate (1/√N) and levels off otherwise.
    UORO<TypeParam> uoro(cell, {.seed = 113});
    constexpr int replicas = 16;
    std::vector<double> errors;
    for (Index samples : {250, 1000, 4000}) {
      double squared = 0;
      for (int replica = 0; replica < replicas; ++replica) {
        Matrix<double> sum = Matrix<double>::Zero(cell.stateSize(), cell.parameterCount());
        for (Index i = 0; i < samples; ++i) {
          uoro.resetState(previous);
          uoro.setEstimate(stateEstimate, parameterEstimate);
          uoro.step(x);
          sum += uoro.stateEstimate() * uoro.parameterEstimate().transpose();
        }
        const double error = relativeError(Matrix<double>(sum / static_cast<double>(samples)), expected);
        squared += error * error;
      }
      errors.push_back(std::sqrt(squared / replicas));
    }
    for (std::size_t i = 1; i < errors.size(); ++i) {
      EXPECT_LT(errors[i], 0.65 * errors[i - 1]) << "from " << errors[i - 1] << " to " << errors[i];
      EXPECT_GT(errors[i], 0.35 * errors[i - 1]) << "from " << errors[i - 1] << " to " << errors[i];
    }
    EXPECT_LT(errors.back(), 0.1);
  }
}

TYPED_TEST(UOROEngine, SameSeedIsBitIdentical) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 121});
  UORO<TypeParam> first(cell, {.seed = 7}), second(cell, {.seed = 7}), other(cell, {.seed = 8});
  Random random(122);
  for (int t = 0; t < 30; ++t) {
    const Vector<double> x = randomVector(random, kInputs), delta = randomVector(random, cell.stateSize());
    for (auto* engine : {&first, &second, &other}) {
      engine->step(x);
      engine->accumulate(delta);
    }
  }
  EXPECT_EQ(first.gradient(), second.gradient());
  EXPECT_EQ(first.stateEstimate(), second.stateEstimate());
  EXPECT_NE(first.gradient(), other.gradient());
}

TYPED_TEST(UOROEngine, MemoryIsStatePlusParameters) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 131});
  UORO<TypeParam> uoro(cell);
  EXPECT_EQ(uoro.bytes(), static_cast<std::size_t>(cell.stateSize() + cell.parameterCount()) * sizeof(double));
}

TEST(UOROOptions, RejectsANonPositiveEpsilon) {
  GRU<double> cell(2, 3);
  EXPECT_THROW(UORO<GRU<double>>(cell, {.epsilon = 0.0}), ValueError);
  EXPECT_THROW(UORO<GRU<double>>(cell, {.epsilon = -1.0}), ValueError);
}

// Code written against one engine works with any other by changing one type.
static_assert(Engine<RTRL<GRU<double>>>);
static_assert(Engine<BPTT<GRU<double>>>);
static_assert(Engine<SnAp<LSTM<float>>>);
static_assert(Engine<UORO<RNN<float>>>);

}  // namespace
}  // namespace snap::test
