// The custom cell of docs/custom-cell.md (examples/custom_cell/minimal_gated_unit.hpp) passes
// the checks the built-in cells pass: its forward step equals its equations written out
// independently here, D_t and I_t (and their products) equal central finite differences of
// those equations, and RTRL, untruncated BPTT and finite differences of the total loss agree.

#include <gtest/gtest.h>

#include "../support/reference.hpp"
#include "custom_cell/minimal_gated_unit.hpp"

namespace custom {

/// The minimal gated unit's equations, plainly, with loops (found by argument-dependent lookup
/// from the helpers of tests/support/reference.hpp).
template <class S>
snap::Vector<S> referenceStep(const MinimalGatedUnit<S>&, const snap::CellTensors<S>& w, const snap::Vector<S>& x,
                              const snap::Vector<S>& s) {
  const snap::Index H = w.weight_hh.cols();
  snap::Vector<S> next(H);
  for (snap::Index u = 0; u < H; ++u) {
    const S f = snap::test::sigmoid(snap::test::inputPre(w, x, u) + snap::test::recurrentPre(w, s, u));
    const S n = std::tanh(snap::test::inputPre(w, x, H + u) + f * snap::test::recurrentPre(w, s, H + u));
    next[u] = (S(1) - f) * s[u] + f * n;
  }
  return next;
}

}  // namespace custom

namespace snap::test {
namespace {

using Cell = custom::MinimalGatedUnit<double>;
static_assert(snap::Cell<Cell>);

constexpr Index kInputs = 3;
constexpr Index kHidden = 8;
constexpr Index kSteps = 24;

enum class StateKind { Zero, Random, Saturated };

/// A cell of recurrent density d and a point (x, s) of the given kind, as in test_jacobians.cpp.
struct Point {
  Cell cell;
  Vector<double> x, s;
  Point(double density, StateKind kind, std::uint64_t seed)
      : cell(scaledCell<Cell>(kInputs, kHidden, {.inputDensity = 0.7, .recurrentDensity = density, .seed = seed},
                              kind == StateKind::Saturated ? 10.0 : 1.0)) {
    Random random(seed + 100);
    x = randomVector(random, kInputs, kind == StateKind::Saturated ? 5.0 : 1.0);
    s = Vector<double>::Zero(kHidden);
    if (kind == StateKind::Random) s = randomVector(random, kHidden, 0.9);
    if (kind == StateKind::Saturated)
      for (Index i = 0; i < kHidden; ++i) s[i] = i % 2 == 0 ? 0.99 : -0.99;
  }
};

template <class F>
void forEachPoint(F&& check) {
  std::uint64_t seed = 1;
  for (double density : {1.0, 0.25, 0.1})
    for (StateKind kind : {StateKind::Zero, StateKind::Random, StateKind::Saturated}) {
      SCOPED_TRACE(::testing::Message() << "density " << density << ", state kind " << static_cast<int>(kind));
      Point point(density, kind, seed++);
      check(point, seed);
    }
}

TEST(CustomCell, StructureIsTwoGatesOneBlockWithTheDiagonal) {
  const Cell cell(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 3});
  EXPECT_EQ(cell.gateRows(), 2 * kHidden);
  EXPECT_EQ(cell.stateSize(), kHidden);
  EXPECT_EQ(cell.weight_ih().rows(), 2 * kHidden);
  EXPECT_EQ(cell.weight_hh().cols(), kHidden);
  for (Index u = 0; u < kHidden; ++u) EXPECT_TRUE(cell.dynamicsGraph().contains(u, u)) << "unit " << u;
}

TEST(CustomCell, ForwardEqualsTheEquations) {
  forEachPoint([](Point& point, std::uint64_t) {
    LibraryStep<Cell> step(point.cell, point.x, point.s);
    EXPECT_LE(relativeError(step.next, referenceStep(point.cell, point.cell.tensors(), point.x, point.s)), 1e-14);
  });
}

TEST(CustomCell, DynamicsJacobianMatchesFiniteDifferences) {
  forEachPoint([](Point& point, std::uint64_t) {
    LibraryStep<Cell> step(point.cell, point.x, point.s);
    const Matrix<double> numeric = finiteDifferenceDynamics(point.cell, point.x, point.s);
    EXPECT_LE(relativeError(denseDynamics(point.cell, step.cache), numeric), 1e-7);
    const SparsityPattern& graph = point.cell.dynamicsGraph();
    for (Index b = 0; b < numeric.rows(); ++b)
      for (Index a = 0; a < numeric.cols(); ++a)
        if (!graph.contains(b, a)) {
          EXPECT_EQ(numeric(b, a), 0.0) << "D[" << b << ", " << a << "] off the graph";
        }
  });
}

TEST(CustomCell, DynamicsProductsMatchFiniteDifferences) {
  forEachPoint([](Point& point, std::uint64_t seed) {
    const Cell& cell = point.cell;
    LibraryStep<Cell> step(cell, point.x, point.s);
    const Matrix<double> numeric = finiteDifferenceDynamics(cell, point.x, point.s);
    Random random(seed);
    const Vector<double> v = randomVector(random, kHidden);
    Vector<double> forward(kHidden), reverse(kHidden), adjoint(2 * cell.gateRows());
    cell.dynamicsProduct(step.cache, v, forward);
    cell.vectorJacobianProduct(step.cache, v, reverse, adjoint);
    EXPECT_LE(relativeError(forward, numeric * v), 1e-7);
    EXPECT_LE(relativeError(reverse, numeric.transpose() * v), 1e-7);
  });
}

TEST(CustomCell, ImmediateJacobianMatchesFiniteDifferences) {
  forEachPoint([](Point& point, std::uint64_t seed) {
    const Cell& cell = point.cell;
    LibraryStep<Cell> step(cell, point.x, point.s);
    const Matrix<double> numeric = finiteDifferenceImmediate(cell, point.x, point.s);
    EXPECT_LE(relativeError(denseImmediate(cell, step.cache, step.z), numeric), 1e-7);
    Random random(seed);
    const Vector<double> v = randomVector(random, kHidden);
    Vector<double> adjoint(2 * cell.gateRows()), reverse = Vector<double>::Zero(cell.parameterCount());
    cell.factorGradient(step.cache, v, adjoint);
    cell.layout().addParameterGradient<double>(adjoint, step.z, reverse);
    EXPECT_LE(relativeError(reverse, numeric.transpose() * v), 1e-7);
  });
}

/// ∂L/∂θ for L(θ) = Σ_t δ_tᵀ s_t(θ), by central finite differences of the reference equations.
Vector<double> finiteDifferenceGradient(const Cell& cell, const Stream& stream) {
  const auto loss = [&](const Vector<double>& theta) {
    const CellTensors<double> w = cell.unflatten(theta);
    Vector<double> s = stream.initial;
    double total = 0;
    for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
      s = referenceStep(cell, w, stream.inputs[t], s);
      total += stream.deltas[t].dot(s);
    }
    return Vector<double>::Constant(1, total);
  };
  return finiteDifferences(loss, cell.parameters()).row(0).transpose();
}

TEST(CustomCell, RtrlEqualsBpttEqualsFiniteDifferences) {
  std::uint64_t seed = 11;
  for (double density : {1.0, 0.25, 0.1}) {
    SCOPED_TRACE(::testing::Message() << "recurrent density " << density);
    const Cell cell(kInputs, kHidden, {.inputDensity = 0.7, .recurrentDensity = density, .seed = seed++});
    const Stream stream(kInputs, kHidden, seed++, kSteps);
    RTRL<Cell> rtrl(cell);
    BPTT<Cell> bptt(cell);
    const Vector<double> gradientRtrl = gradientOver(rtrl, stream), gradientBptt = gradientOver(bptt, stream);
    EXPECT_LE(relativeError(gradientRtrl, gradientBptt), 1e-10);
    const Vector<double> numeric = finiteDifferenceGradient(cell, stream);
    EXPECT_LE(relativeError(gradientRtrl, numeric), 1e-6);
    EXPECT_LE(relativeError(gradientBptt, numeric), 1e-6);
  }
}

TEST(CustomCell, SnApOfFullReachEqualsRtrlAndUoroRuns) {
  const Cell cell(kInputs, kHidden, {.recurrentDensity = 0.25, .maskSharing = MaskSharing::Shared, .seed = 21});
  const Stream stream(kInputs, kHidden, 22, kSteps);
  RTRL<Cell> rtrl(cell);
  SnAp<Cell> full(cell, {.n = static_cast<int>(kHidden) + 1}), one(cell, {.n = 1});
  UORO<Cell> uoro(cell, {.seed = 23});
  const Vector<double> exact = gradientOver(rtrl, stream);
  EXPECT_LE(relativeError(gradientOver(full, stream), exact), 1e-10);
  EXPECT_TRUE(gradientOver(one, stream).allFinite());
  EXPECT_TRUE(gradientOver(uoro, stream).allFinite());
}

}  // namespace
}  // namespace snap::test
