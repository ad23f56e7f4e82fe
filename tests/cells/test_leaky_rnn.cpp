// The leaky RNN, h' = (1 − α) h + α tanh(W_ih x + b_ih + W_hh h + b_hh) (RNNOptions::leak): its
// step equals the equation, D_t and I_t (both the factored I_t and the forward-mode product)
// equal finite differences of it, its internal coupling is (1 − α) on the diagonal, and α = 1 is
// PyTorch's RNNCell; a leak outside (0, 1] is refused.

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kInputs = 3;
constexpr Index kHidden = 7;

/// A leaky cell with its tensors scaled (scale > 1 saturates tanh).
RNN<double> leakyCell(double leak, double density, double scale, std::uint64_t seed) {
  RNN<double> cell(kInputs, kHidden, {.inputDensity = 0.7, .recurrentDensity = density, .seed = seed}, {.leak = leak});
  CellTensors<double> w = cell.tensors();
  w.weight_ih *= scale;
  w.weight_hh *= scale;
  w.bias_ih *= scale;
  w.bias_hh *= scale;
  cell.setTensors(w);
  return cell;
}

/// Random points, tiny ones (inputs and state of 1e-7) and saturated ones (tensors scaled by 10,
/// inputs of ±5), for three leaks and two densities.
template <class F>
void forEachPoint(F&& check) {
  std::uint64_t seed = 1;
  for (double leak : {0.3, 0.05, 1.0})
    for (double density : {1.0, 0.3})
      for (const char* kind : {"random", "tiny", "saturated"}) {
        SCOPED_TRACE(::testing::Message() << "leak " << leak << ", density " << density << ", " << kind << " point");
        const bool saturated = std::string(kind) == "saturated", tiny = std::string(kind) == "tiny";
        const RNN<double> cell = leakyCell(leak, density, saturated ? 10.0 : 1.0, seed);
        Random random(seed++ + 50);
        const Vector<double> x = randomVector(random, kInputs, saturated ? 5.0 : tiny ? 1e-7 : 1.0);
        const Vector<double> s = randomVector(random, kHidden, tiny ? 1e-7 : 0.9);
        check(cell, x, s);
      }
}

Vector<double> stepOf(const RNN<double>& cell, const Vector<double>& theta, const Vector<double>& x, const Vector<double>& s) {
  return referenceLeakyStep(cell.leak(), cell.unflatten(theta), x, s);
}

TEST(LeakyRNN, ForwardEqualsTheEquation) {
  forEachPoint([](const RNN<double>& cell, const Vector<double>& x, const Vector<double>& s) {
    const CellStep<RNN<double>> step(cell, x, s);
    EXPECT_LE(relativeError(step.next, stepOf(cell, cell.parameters(), x, s)), 1e-14);
    EXPECT_EQ(step.y, step.next);
  });
}

TEST(LeakyRNN, JacobiansMatchFiniteDifferences) {
  forEachPoint([](const RNN<double>& cell, const Vector<double>& x, const Vector<double>& s) {
    const Vector<double> theta = cell.parameters();
    const CellStep<RNN<double>> step(cell, x, s);
    const Matrix<double> dynamics =
        finiteDifferences([&](const Vector<double>& previous) { return stepOf(cell, theta, x, previous); }, s);
    const Matrix<double> immediate =
        finiteDifferences([&](const Vector<double>& at) { return stepOf(cell, at, x, s); }, theta);
    EXPECT_LE(relativeError(denseDynamics(cell, step.cache), dynamics), 1e-7);
    EXPECT_LE(relativeError(denseImmediateFromFactors(cell, step.cache, step.z), immediate), 1e-7);
    EXPECT_LE(relativeError(denseImmediate(cell, step.cache, step.z), immediate), 1e-7);
    const SparsityPattern& graph = cell.dynamicsGraph();
    for (Index b = 0; b < kHidden; ++b)
      for (Index a = 0; a < kHidden; ++a)
        if (!graph.contains(b, a)) {
          EXPECT_EQ(dynamics(b, a), 0.0) << "D[" << b << ", " << a << "] off the graph";
        }
    // The leak couples every unit to itself, whatever the mask.
    if (cell.leak() < 1.0) {
      for (Index u = 0; u < kHidden; ++u) EXPECT_TRUE(graph.contains(u, u));
    }
    Random random(3);
    const Vector<double> v = randomVector(random, kHidden);
    Vector<double> forward(kHidden), previous(kHidden), e(cell.layout().factorCount());
    cell.dynamicsProduct(step.cache, v, forward);
    cell.vectorJacobianProduct(step.cache, v, previous, e);
    EXPECT_LE(relativeError(forward, dynamics * v), 1e-7);
    EXPECT_LE(relativeError(previous, dynamics.transpose() * v), 1e-7);
    EXPECT_LE(relativeError(parameterGradientOf(cell, e, step.z), immediate.transpose() * v), 1e-7);
    // ∂h'/∂x and its transposed product.
    const Matrix<double> byInput =
        finiteDifferences([&](const Vector<double>& input) { return stepOf(cell, theta, input, s); }, x);
    std::vector<double> values(static_cast<std::size_t>(cell.inputGraph().nonZeros()));
    cell.inputJacobian(step.cache, std::span<double>(values));
    EXPECT_LE(relativeError(denseOf(cell.inputGraph(), values), byInput), 1e-7);
    Vector<double> backward(kInputs);
    cell.inputBackward(step.cache, v, backward);
    EXPECT_LE(relativeError(backward, byInput.transpose() * v), 1e-7);
  });
}

TEST(LeakyRNN, InternalCouplingIsOneMinusTheLeak) {
  forEachPoint([](const RNN<double>& cell, const Vector<double>& x, const Vector<double>& s) {
    const CellStep<RNN<double>> step(cell, x, s);
    const SparsityPattern& graph = cell.internalGraph();
    if (cell.leak() == 1.0) {
      EXPECT_EQ(graph.nonZeros(), 0);  // torch.nn.RNNCell: every path goes through W_hh
      return;
    }
    ASSERT_EQ(graph.nonZeros(), kHidden);
    std::vector<double> values(kHidden);
    cell.internalJacobian(step.cache, std::span<double>(values));
    for (Index u = 0; u < kHidden; ++u) {
      EXPECT_TRUE(graph.contains(u, u));
      EXPECT_EQ(values[static_cast<std::size_t>(u)], 1.0 - cell.leak());
    }
  });
}

TEST(LeakyRNN, LeakOneIsTheRNNCell) {
  const RNN<double> leaky(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 9}, {.leak = 1.0});
  const RNN<double> plain(kInputs, kHidden, {.recurrentDensity = 0.5, .seed = 9});
  EXPECT_EQ(leaky.leak(), 1.0);
  EXPECT_EQ(leaky.parameters(), plain.parameters());
  EXPECT_EQ(leaky.dynamicsGraph(), plain.dynamicsGraph());
  Random random(10);
  const Vector<double> x = randomVector(random, kInputs), s = randomVector(random, kHidden);
  EXPECT_LE(relativeError(CellStep<RNN<double>>(leaky, x, s).next, referenceStep(plain, plain.tensors(), x, s)), 1e-14);
}

TEST(LeakyRNNErrors, LeakOutsideZeroOne) {
  for (double leak : {0.0, -0.1, 1.0 + 1e-12, 1.5, std::numeric_limits<double>::quiet_NaN(),
                      std::numeric_limits<double>::infinity()}) {
    SCOPED_TRACE(::testing::Message() << "leak " << leak);
    expectError<ValueError>([&] { RNN<double>(kInputs, kHidden, {}, {.leak = leak}); }, "RNNOptions::leak");
  }
  EXPECT_NO_THROW(RNN<double>(kInputs, kHidden, {}, {.leak = 1e-9}));
}

}  // namespace
}  // namespace snap::test
