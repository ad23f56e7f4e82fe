// docs/math.md §1–§2: each cell's forward step equals the written-out equations, and D_t, I_t and their
// products equal central finite differences of those equations, for dense and sparse masks and
// for zero, random and saturated states.

#include <gtest/gtest.h>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

template <class C>
class CellJacobians : public ::testing::Test {};
using DoubleCells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(CellJacobians, DoubleCells);

constexpr Index kInputs = 3;
constexpr Index kHidden = 8;

enum class StateKind { Zero, Random, Saturated };
const char* name(StateKind kind) {
  return kind == StateKind::Zero ? "zero" : kind == StateKind::Random ? "random" : "saturated";
}

/// One test point: a cell of density d, an input and a previous state of the given kind.
template <class C>
struct Point {
  C cell;
  Vector<double> x, s;
  Point(double density, StateKind kind, std::uint64_t seed)
      : cell(scaledCell<C>(kInputs, kHidden, {.recurrentDensity = density, .seed = seed},
                           kind == StateKind::Saturated ? 10.0 : 1.0)) {
    Random random(seed + 100);
    const double inputScale = kind == StateKind::Saturated ? 5.0 : 1.0;
    x = randomVector(random, kInputs, inputScale);
    s = Vector<double>::Zero(cell.stateSize());
    if (kind == StateKind::Random) s = randomVector(random, cell.stateSize(), 0.9);
    if (kind == StateKind::Saturated) {
      for (Index i = 0; i < s.size(); ++i) s[i] = (i % 2 == 0 ? 0.99 : -0.99) * (i < kHidden ? 1.0 : 5.0);
    }
  }
};

template <class F>
void forEachPoint(F&& check) {
  std::uint64_t seed = 1;
  for (double density : {1.0, 0.25, 0.1})
    for (StateKind kind : {StateKind::Zero, StateKind::Random, StateKind::Saturated}) {
      SCOPED_TRACE(::testing::Message() << "density " << density << ", " << name(kind) << " state");
      check(density, kind, seed++);
    }
}

TYPED_TEST(CellJacobians, ForwardEqualsTheEquations) {
  forEachPoint([](double density, StateKind kind, std::uint64_t seed) {
    Point<TypeParam> point(density, kind, seed);
    LibraryStep<TypeParam> step(point.cell, point.x, point.s);
    const Vector<double> expected = referenceStep(point.cell, point.cell.tensors(), point.x, point.s);
    EXPECT_LE(relativeError(step.next, expected), 1e-14);
  });
}

TYPED_TEST(CellJacobians, DynamicsJacobianMatchesFiniteDifferences) {
  forEachPoint([](double density, StateKind kind, std::uint64_t seed) {
    Point<TypeParam> point(density, kind, seed);
    LibraryStep<TypeParam> step(point.cell, point.x, point.s);
    const Matrix<double> numeric = finiteDifferenceDynamics(point.cell, point.x, point.s);
    const Matrix<double> analytic = denseDynamics(point.cell, step.cache);
    EXPECT_LE(relativeError(analytic, numeric), 1e-7);
    // Outside the structural graph the finite differences are exactly zero (docs/math.md §2).
    const SparsityPattern& graph = point.cell.dynamicsGraph();
    for (Index b = 0; b < numeric.rows(); ++b)
      for (Index a = 0; a < numeric.cols(); ++a)
        if (!graph.contains(b, a)) {
          EXPECT_EQ(numeric(b, a), 0.0) << "D[" << b << ", " << a << "] off the graph";
        }
  });
}

TYPED_TEST(CellJacobians, DynamicsProductsMatchTheDenseJacobian) {
  forEachPoint([](double density, StateKind kind, std::uint64_t seed) {
    Point<TypeParam> point(density, kind, seed);
    const TypeParam& cell = point.cell;
    LibraryStep<TypeParam> step(cell, point.x, point.s);
    const Matrix<double> numeric = finiteDifferenceDynamics(cell, point.x, point.s);
    Random random(seed);
    const Vector<double> v = randomVector(random, cell.stateSize());
    Vector<double> forward(cell.stateSize()), reverse(cell.stateSize()), adjoint(2 * cell.gateRows());
    cell.dynamicsProduct(step.cache, v, forward);
    cell.vectorJacobianProduct(step.cache, v, reverse, adjoint);
    EXPECT_LE(relativeError(forward, numeric * v), 1e-7);
    EXPECT_LE(relativeError(reverse, numeric.transpose() * v), 1e-7);
  });
}

TYPED_TEST(CellJacobians, ImmediateJacobianMatchesFiniteDifferences) {
  forEachPoint([](double density, StateKind kind, std::uint64_t seed) {
    Point<TypeParam> point(density, kind, seed);
    const TypeParam& cell = point.cell;
    LibraryStep<TypeParam> step(cell, point.x, point.s);
    const Matrix<double> numeric = finiteDifferenceImmediate(cell, point.x, point.s);
    const Matrix<double> analytic = denseImmediate(cell, step.cache, step.z);
    EXPECT_LE(relativeError(analytic, numeric), 1e-7);

    // The factored reverse product: I_tᵀ v = layout expansion of the preactivation gradient.
    Random random(seed);
    const Vector<double> v = randomVector(random, cell.stateSize());
    Vector<double> adjoint(2 * cell.gateRows()), reverse = Vector<double>::Zero(cell.parameterCount());
    cell.factorGradient(step.cache, v, adjoint);
    cell.layout().template addParameterGradient<double>(adjoint, step.z, reverse);
    EXPECT_LE(relativeError(reverse, numeric.transpose() * v), 1e-7);
    // Its squared norm from the factors alone, and the scaled accumulation out = keep·out + Iᵀv.
    EXPECT_NEAR(cell.layout().template squaredNormOfParameterGradient<double>(adjoint, step.z), reverse.squaredNorm(),
                1e-12 * reverse.squaredNorm());
    const Vector<double> previous = randomVector(random, cell.parameterCount());
    Vector<double> scaled = previous;
    cell.layout().template addParameterGradient<double>(adjoint, step.z, scaled, 0.5);
    EXPECT_LE(relativeError(scaled, Vector<double>(0.5 * previous + reverse)), 1e-14);
  });
}

TYPED_TEST(CellJacobians, ImmediateColumnsLiveOnTheHomeRows) {
  // docs/math.md §2: parameter j moves only its home unit's state; the LSTM output gate moves h only.
  Point<TypeParam> point(0.25, StateKind::Random, 7);
  const TypeParam& cell = point.cell;
  const Matrix<double> numeric = finiteDifferenceImmediate(cell, point.x, point.s);
  LibraryStep<TypeParam> step(cell, point.x, point.s);
  const Matrix<double> analytic = denseImmediate(cell, step.cache, step.z);
  const CellStructure& structure = cell.structure();
  for (Index j = 0; j < cell.parameterCount(); ++j)
    for (Index row = 0; row < cell.stateSize(); ++row) {
      const Index block = row / kHidden, unit = row % kHidden;
      const bool home = unit == cell.unitOf(j) && structure.reaches(cell.gateOf(j), block);
      if (!home) {
        EXPECT_EQ(numeric(row, j), 0.0) << "parameter " << j << " moved row " << row;
        EXPECT_EQ(analytic(row, j), 0.0) << "the factored I_t puts parameter " << j << " on row " << row;
      }
    }
}

}  // namespace
}  // namespace snap::test
