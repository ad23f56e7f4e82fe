// The LRU (Orvieto et al. 2023; docs/math.md §1–§2): its step and output equal the equations
// written with std::complex, and every Jacobian and product it gives the engines (D_t, I_t from
// its factors, ∂s'/∂x, the output's ∂y/∂s', ∂y/∂x and ∂y/∂θ, and their transposed products)
// equals central finite differences of those equations, with and without the skip, for each
// output function, dense and sparse B, at random, tiny and saturating points.

#include <gtest/gtest.h>

#include <limits>
#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kInputs = 3;
constexpr Index kUnits = 5;

enum class PointKind { Random, Tiny, Saturated };
const char* name(PointKind kind) {
  return kind == PointKind::Random ? "random" : kind == PointKind::Tiny ? "tiny" : "saturated";
}
const char* name(LRUActivation activation) {
  return activation == LRUActivation::None ? "none" : activation == LRUActivation::Tanh ? "tanh" : "GELU";
}

/// A cell, an input and a previous state. Saturated: |λ| in [0.995, 0.9999] except unit 0, whose
/// ν = 7 makes |λ_0| = exp(−e⁷) underflow to 0 (γ_0 = 1); C scaled by 20 and inputs of ±5, so
/// that tanh and GELU saturate. Tiny: inputs and state of order 1e-7.
struct Point {
  LRU<double> cell;
  Vector<double> x, s;
  Point(LRUOptions options, PointKind kind, std::uint64_t seed) : cell(kInputs, kUnits, adjusted(options, kind, seed)) {
    if (kind == PointKind::Saturated) {
      ParameterTensors<double> tensors = cell.parameterTensors();
      tensors[2](0, 0) = 7.0;
      tensors[4] *= 20.0;
      tensors[5] *= 20.0;
      cell.setParameterTensors(tensors);
    }
    Random random(seed + 100);
    const double inputScale = kind == PointKind::Tiny ? 1e-7 : kind == PointKind::Saturated ? 5.0 : 1.0;
    const double stateScale = kind == PointKind::Tiny ? 1e-7 : kind == PointKind::Saturated ? 3.0 : 0.9;
    x = randomVector(random, kInputs, inputScale);
    s = randomVector(random, 2 * kUnits, stateScale);
  }
  static LRUOptions adjusted(LRUOptions options, PointKind kind, std::uint64_t seed) {
    options.seed = seed;
    if (kind == PointKind::Saturated) {
      options.rMin = 0.995;
      options.rMax = 0.9999;
    }
    return options;
  }
};

/// Every combination of skip, output function, density of B and kind of point.
template <class F>
void forEachPoint(F&& check) {
  std::uint64_t seed = 1;
  for (bool skip : {true, false})
    for (LRUActivation activation : {LRUActivation::None, LRUActivation::Tanh, LRUActivation::GELU})
      for (double density : {1.0, 0.4})
        for (PointKind kind : {PointKind::Random, PointKind::Tiny, PointKind::Saturated}) {
          SCOPED_TRACE(::testing::Message() << (skip ? "skip" : "no skip") << ", " << name(activation) << ", density "
                                            << density << ", " << name(kind) << " point");
          const LRUOptions options{.outputSize = skip ? 0 : 2, .inputDensity = density, .skip = skip,
                                   .activation = activation};
          check(Point(options, kind, seed++), kind);
        }
}

/// The reference step and output of the point's cell as functions of (θ, x, s) and (θ, x, s').
Vector<double> stepOf(const LRU<double>& cell, const Vector<double>& theta, const Vector<double>& x, const Vector<double>& s) {
  return referenceLRUStep(lruWeights(cell.layout().unflatten(theta)), x, s);
}
Vector<double> outputOf(const LRU<double>& cell, const Vector<double>& theta, const Vector<double>& x,
                        const Vector<double>& next) {
  return referenceLRUOutput(lruWeights(cell.layout().unflatten(theta)), cell.activation(), x, next);
}

/// Which tensor each θ entry belongs to, counted from the masks (B_re, B_im, ν, θ, then the output map).
enum class Tensor { BRe, BIm, Nu, Theta, Output };
Tensor tensorOf(const LRU<double>& cell, Index j) {
  const auto active = static_cast<Index>(cell.mask_re().sum());
  if (j < active) return Tensor::BRe;
  if (j < 2 * active) return Tensor::BIm;
  if (j < 2 * active + kUnits) return Tensor::Nu;
  if (j < 2 * active + 2 * kUnits) return Tensor::Theta;
  return Tensor::Output;
}

TEST(LRUCell, ForwardAndOutputEqualTheEquations) {
  forEachPoint([](const Point& point, PointKind kind) {
    const LRU<double>& cell = point.cell;
    const CellStep<LRU<double>> step(cell, point.x, point.s);
    const Vector<double> theta = cell.parameters();
    const Vector<double> next = stepOf(cell, theta, point.x, point.s);
    EXPECT_LE(relativeError(step.next, next), 1e-13);
    EXPECT_LE(relativeError(step.y, outputOf(cell, theta, point.x, step.next)), 1e-13);
    if (kind == PointKind::Saturated && cell.activation() == LRUActivation::Tanh) {
      EXPECT_GT(step.y.cwiseAbs().maxCoeff(), 0.9999) << "the saturated point does not saturate tanh";
    }
    // λ_j as the cell reports it.
    for (Index j = 0; j < kUnits; ++j) {
      const std::complex<double> lambda = lruLambda(cell.nu_log()[j], cell.theta_log()[j]);
      EXPECT_NEAR(cell.lambdaRe(j), lambda.real(), 1e-15);
      EXPECT_NEAR(cell.lambdaIm(j), lambda.imag(), 1e-15);
    }
  });
}

TEST(LRUCell, DynamicsJacobianIsEachUnitsRotation) {
  forEachPoint([](const Point& point, PointKind) {
    const LRU<double>& cell = point.cell;
    const CellStep<LRU<double>> step(cell, point.x, point.s);
    const Vector<double> theta = cell.parameters();
    const Matrix<double> numeric =
        finiteDifferences([&](const Vector<double>& s) { return stepOf(cell, theta, point.x, s); }, point.s);
    const Matrix<double> analytic = denseDynamics(cell, step.cache);
    EXPECT_LE(relativeError(analytic, numeric), 1e-7);
    // The graph is exactly each unit's 2 × 2 block, and nothing moves outside it.
    const SparsityPattern& graph = cell.dynamicsGraph();
    EXPECT_EQ(graph.nonZeros(), 4 * kUnits);
    for (Index b = 0; b < 2 * kUnits; ++b)
      for (Index a = 0; a < 2 * kUnits; ++a) {
        const bool sameUnit = a % kUnits == b % kUnits;
        EXPECT_EQ(graph.contains(b, a), sameUnit) << "D[" << b << ", " << a << "]";
        if (!sameUnit) {
          EXPECT_EQ(numeric(b, a), 0.0) << "D[" << b << ", " << a << "] off the graph";
        }
      }
    // e-prop's graph is the whole of it (docs/math.md §8).
    EXPECT_EQ(cell.internalGraph(), graph);
    std::vector<double> internal(static_cast<std::size_t>(graph.nonZeros()));
    cell.internalJacobian(step.cache, std::span<double>(internal));
    EXPECT_LE(relativeError(denseOf(graph, internal), analytic), 0.0);
  });
}

TEST(LRUCell, ImmediateJacobianFromFactorsMatchesFiniteDifferences) {
  forEachPoint([](const Point& point, PointKind kind) {
    const LRU<double>& cell = point.cell;
    const CellStep<LRU<double>> step(cell, point.x, point.s);
    const Matrix<double> numeric =
        finiteDifferences([&](const Vector<double>& theta) { return stepOf(cell, theta, point.x, point.s); },
                          cell.parameters());
    const Matrix<double> analytic = denseImmediateFromFactors(cell, step.cache, step.z);
    EXPECT_LE(relativeError(analytic, numeric), 1e-7);
    // Rows moved: B_re row j moves Re h_j only, B_im row j Im h_j only, ν_j and θ_j both, the
    // output map none; the factor pattern says exactly that (at a generic point every one is
    // nonzero; at the saturated one unit 0's ν and θ move nothing: λ_0 = 0).
    const auto moved = nonZeroRows(numeric);
    const auto active = static_cast<Index>(cell.mask_re().sum());
    Index j = 0;
    for (int part = 0; part < 2; ++part)  // B_re, then B_im
      for (Index u = 0; u < kUnits; ++u)
        for (Index c = 0; c < kInputs; ++c) {
          if (cell.mask_re()(u, c) == 0) continue;
          const Index row = part == 0 ? u : kUnits + u;
          EXPECT_EQ(moved[static_cast<std::size_t>(j)], std::vector<Index>{row}) << "B entry " << j;
          ++j;
        }
    ASSERT_EQ(j, 2 * active);
    for (; j < cell.parameterCount(); ++j) {
      const Tensor tensor = tensorOf(cell, j);
      std::vector<Index> expected;
      const Index u = (j - 2 * active) % kUnits;
      if (tensor != Tensor::Output && !(kind == PointKind::Saturated && u == 0)) expected = {u, kUnits + u};
      EXPECT_EQ(moved[static_cast<std::size_t>(j)], expected) << "parameter " << j;
    }
    const SparsityPattern& factors = cell.factorPattern();
    for (Index p = 0; p < cell.parameterCount(); ++p) {
      const auto rows = factors.row(cell.layout().factor(p));
      const std::set<Index> pattern(rows.begin(), rows.end());
      for (Index row : moved[static_cast<std::size_t>(p)]) EXPECT_TRUE(pattern.count(row)) << "parameter " << p;
      if (kind == PointKind::Random) {
        EXPECT_EQ(pattern.size(), moved[static_cast<std::size_t>(p)].size()) << "parameter " << p;
      }
    }
  });
}

TEST(LRUCell, ProductsMatchTheDenseJacobians) {
  forEachPoint([](const Point& point, PointKind) {
    const LRU<double>& cell = point.cell;
    const CellStep<LRU<double>> step(cell, point.x, point.s);
    const Vector<double> theta = cell.parameters();
    const Matrix<double> dynamics =
        finiteDifferences([&](const Vector<double>& s) { return stepOf(cell, theta, point.x, s); }, point.s);
    const Matrix<double> immediate =
        finiteDifferences([&](const Vector<double>& at) { return stepOf(cell, at, point.x, point.s); }, theta);
    Random random(7);
    const Vector<double> v = randomVector(random, 2 * kUnits);
    const Index factors = cell.layout().factorCount();
    Vector<double> forward(2 * kUnits), previous(2 * kUnits), e(factors), eAlone(factors);
    cell.dynamicsProduct(step.cache, v, forward);
    cell.vectorJacobianProduct(step.cache, v, previous, e);
    cell.factorGradient(step.cache, v, eAlone);
    EXPECT_LE(relativeError(forward, dynamics * v), 1e-7);
    EXPECT_LE(relativeError(previous, dynamics.transpose() * v), 1e-7);
    EXPECT_LE(relativeError(parameterGradientOf(cell, e, step.z), immediate.transpose() * v), 1e-7);
    EXPECT_TRUE(e == eAlone) << "vectorJacobianProduct's factor gradient is factorGradient's";
    // The squared norm of Iᵀv from the factors alone.
    const Vector<double> reverse = parameterGradientOf(cell, e, step.z);
    EXPECT_NEAR(cell.layout().squaredNormOfParameterGradient<double>(e, step.z), reverse.squaredNorm(),
                1e-12 * reverse.squaredNorm());
  });
}

TEST(LRUCell, InputJacobianMatchesFiniteDifferences) {
  forEachPoint([](const Point& point, PointKind) {
    const LRU<double>& cell = point.cell;
    const CellStep<LRU<double>> step(cell, point.x, point.s);
    const Vector<double> theta = cell.parameters();
    const Matrix<double> numeric =
        finiteDifferences([&](const Vector<double>& x) { return stepOf(cell, theta, x, point.s); }, point.x);
    const SparsityPattern& graph = cell.inputGraph();
    std::vector<double> values(static_cast<std::size_t>(graph.nonZeros()));
    cell.inputJacobian(step.cache, std::span<double>(values));
    EXPECT_LE(relativeError(denseOf(graph, values), numeric), 1e-7);
    // Re h_j and Im h_j read the inputs B's row j keeps: exactly the mask.
    for (Index row = 0; row < 2 * kUnits; ++row)
      for (Index c = 0; c < kInputs; ++c) {
        EXPECT_EQ(graph.contains(row, c), cell.mask_re()(row % kUnits, c) != 0) << "(" << row << ", " << c << ")";
        if (!graph.contains(row, c)) {
          EXPECT_EQ(numeric(row, c), 0.0);
        }
      }
    Random random(8);
    const Vector<double> v = randomVector(random, 2 * kUnits);
    Vector<double> backward(kInputs);
    cell.inputBackward(step.cache, v, backward);
    EXPECT_LE(relativeError(backward, numeric.transpose() * v), 1e-7);
  });
}

/// ‖a − b‖ / ‖scale‖: the error of a Jacobian of the output measured against `scale`, the same
/// Jacobian of the output before its function φ. Where φ saturates, φ' is far below what central
/// differences resolve (|tanh(u ± 1e-6) − tanh(u)| under one rounding unit for u ≈ 15), so the
/// saturated Jacobian is compared at the size it has before φ: the rounding floor of the
/// differences, not a relative error of values near 0.
double errorAgainst(const Matrix<double>& a, const Matrix<double>& b, const Matrix<double>& scale) {
  return (a - b).norm() / std::max(scale.norm(), 1e-300);
}

TEST(LRUCell, OutputJacobiansMatchFiniteDifferences) {
  forEachPoint([](const Point& point, PointKind kind) {
    const LRU<double>& cell = point.cell;
    const CellStep<LRU<double>> step(cell, point.x, point.s);
    const Vector<double> theta = cell.parameters();
    const Index o = cell.outputSize(), p = cell.parameterCount();
    // ∂y/∂s' (x fixed), ∂y/∂x (s' fixed) and ∂y/∂θ (s' and x fixed).
    const Matrix<double> byState =
        finiteDifferences([&](const Vector<double>& next) { return outputOf(cell, theta, point.x, next); }, step.next);
    const Matrix<double> byInput =
        finiteDifferences([&](const Vector<double>& x) { return outputOf(cell, theta, x, step.next); }, point.x);
    const Matrix<double> byParameters =
        finiteDifferences([&](const Vector<double>& at) { return outputOf(cell, at, point.x, step.next); }, theta);
    // The same before φ, the scale of the saturated comparisons.
    const LRUWeights weights = lruWeights(cell.layout().unflatten(theta));
    auto linear = [&](const Vector<double>& x, const Vector<double>& next) {
      return referenceLRUOutput(weights, LRUActivation::None, x, next);
    };
    const bool saturated = kind == PointKind::Saturated && cell.activation() != LRUActivation::None;
    const Matrix<double> stateScale =
        saturated ? finiteDifferences([&](const Vector<double>& next) { return linear(point.x, next); }, step.next) : byState;
    const Matrix<double> inputScale =
        saturated ? finiteDifferences([&](const Vector<double>& x) { return linear(x, step.next); }, point.x) : byInput;
    const Matrix<double> parameterScale =
        saturated ? finiteDifferences(
                        [&](const Vector<double>& at) {
                          return referenceLRUOutput(lruWeights(cell.layout().unflatten(at)), LRUActivation::None,
                                                    point.x, step.next);
                        },
                        theta)
                  : byParameters;
    const SparsityPattern &stateGraph = cell.outputStateGraph(), &inputGraph = cell.outputInputGraph(),
                          &factorGraph = cell.outputFactorPattern();
    std::vector<double> stateValues(static_cast<std::size_t>(stateGraph.nonZeros())),
        inputValues(static_cast<std::size_t>(inputGraph.nonZeros())),
        factorValues(static_cast<std::size_t>(factorGraph.nonZeros()));
    cell.outputJacobian(step.cache, std::span<double>(stateValues), std::span<double>(inputValues),
                        std::span<double>(factorValues));
    EXPECT_LE(errorAgainst(denseOf(stateGraph, stateValues), byState, stateScale), 1e-7);
    if (cell.skip()) {
      EXPECT_LE(errorAgainst(denseOf(inputGraph, inputValues), byInput, inputScale), 1e-7);
    } else {
      EXPECT_EQ(inputGraph.nonZeros(), 0);
      EXPECT_TRUE(byInput.isZero(0.0));
    }
    // ∂y/∂θ[:, j] = O_f[factor(j), :] · z[source(j)] with O_f the factors' values on y.
    Matrix<double> analytic = Matrix<double>::Zero(o, p);
    const ParameterLayout& layout = cell.layout();
    for (Index j = 0; j < p; ++j)
      for (Index e = factorGraph.rowStart(layout.factor(j)); e < factorGraph.rowStart(layout.factor(j) + 1); ++e)
        analytic(factorGraph.column(e), j) += factorValues[static_cast<std::size_t>(e)] * step.z[layout.source(j)];
    EXPECT_LE(errorAgainst(analytic, byParameters, parameterScale), 1e-7);
    for (Index j = 0; j < p; ++j)
      if (tensorOf(cell, j) != Tensor::Output) {
        EXPECT_TRUE(byParameters.col(j).isZero(0.0)) << "a recurrent parameter moved y with s' fixed: " << j;
      }

    // outputBackward: δ_s = (∂y/∂s')ᵀ δ_y, and the factor gradient gives (∂y/∂θ)ᵀ δ_y.
    Random random(9);
    const Vector<double> delta = randomVector(random, o);
    Vector<double> stateGradient(2 * kUnits), e(layout.factorCount());
    cell.outputBackward(step.cache, delta, stateGradient, e);
    EXPECT_LE(errorAgainst(stateGradient, byState.transpose() * delta, stateScale.transpose() * delta), 1e-7);
    EXPECT_LE(errorAgainst(parameterGradientOf(cell, e, step.z), byParameters.transpose() * delta,
                           parameterScale.transpose() * delta),
              1e-7);
  });
}

TEST(LRUCell, ParametersAreTheTensorsInLayoutOrder) {
  LRU<double> cell(kInputs, kUnits, {.inputDensity = 0.6, .seed = 3});
  // θ = [B_re active, B_im active (row-major), ν, θ, C_re, C_im (row-major), D], from the accessors.
  std::vector<double> expected;
  for (const auto* pair : {&cell.B_re(), &cell.B_im()})
    for (Index j = 0; j < kUnits; ++j)
      for (Index c = 0; c < kInputs; ++c)
        if (cell.mask_re()(j, c) != 0) expected.push_back((*pair)(j, c));
  for (const auto* vector : {&cell.nu_log(), &cell.theta_log()})
    for (Index j = 0; j < kUnits; ++j) expected.push_back((*vector)[j]);
  for (const auto* matrix : {&cell.C_re(), &cell.C_im()})
    for (Index b = 0; b < cell.outputSize(); ++b)
      for (Index j = 0; j < kUnits; ++j) expected.push_back((*matrix)(b, j));
  for (Index b = 0; b < cell.outputSize(); ++b) expected.push_back(cell.D()[b]);
  const Vector<double> theta = cell.parameters();
  ASSERT_EQ(theta.size(), static_cast<Index>(expected.size()));
  for (std::size_t j = 0; j < expected.size(); ++j) EXPECT_EQ(theta[static_cast<Index>(j)], expected[j]) << j;
  const std::vector<std::string> names{"B_re", "B_im", "nu_log", "theta_log", "C_re", "C_im", "D"};
  ASSERT_EQ(cell.layout().tensorCount(), 7);
  for (Index t = 0; t < 7; ++t) EXPECT_EQ(cell.layout().tensor(t).name, names[static_cast<std::size_t>(t)]);
  // B_re and B_im share one mask of exactly round(0.6 · N · m) = 9 positions; masked entries are 0.
  EXPECT_EQ(cell.mask_re(), cell.mask_im());
  EXPECT_EQ(cell.mask_re().sum(), 9.0);
  EXPECT_TRUE(cell.B_re().cwiseProduct(RowMatrix<double>::Ones(kUnits, kInputs) - cell.mask_re()).isZero(0.0));
  EXPECT_TRUE(cell.B_im().cwiseProduct(RowMatrix<double>::Ones(kUnits, kInputs) - cell.mask_im()).isZero(0.0));
  EXPECT_EQ(cell.parameterCount(), 2 * 9 + 2 * kUnits + 2 * kInputs * kUnits + kInputs);
  // setParameters round-trips, masked entries stay 0.
  LRU<double> copy = cell;
  Vector<double> changed = theta * 0.5;
  copy.setParameters(changed);
  EXPECT_EQ(copy.parameters(), changed);
  EXPECT_TRUE(copy.B_re().cwiseProduct(RowMatrix<double>::Ones(kUnits, kInputs) - copy.mask_re()).isZero(0.0));
  // Without the skip there is no D.
  LRU<double> noSkip(kInputs, kUnits, {.outputSize = 4, .skip = false, .seed = 3});
  EXPECT_EQ(noSkip.layout().tensorCount(), 6);
  EXPECT_EQ(noSkip.outputSize(), 4);
  EXPECT_EQ(noSkip.D().size(), 0);
  EXPECT_EQ(noSkip.parameterCount(), 2 * kUnits * kInputs + 2 * kUnits + 2 * 4 * kUnits);
}

TEST(LRUCell, InitialEigenvaluesLieInTheRing) {
  for (auto [rMin, rMax, maxPhase] : {std::tuple{0.0, 1.0, 6.283185307179586}, std::tuple{0.5, 0.9, 0.3},
                                      std::tuple{0.999, 0.9999, 3.0}}) {
    LRU<double> cell(2, 64, {.rMin = rMin, .rMax = rMax, .maxPhase = maxPhase, .seed = 11});
    for (Index j = 0; j < 64; ++j) {
      const std::complex<double> lambda = lruLambda(cell.nu_log()[j], cell.theta_log()[j]);
      EXPECT_GE(std::abs(lambda), rMin * (1 - 1e-12));
      EXPECT_LE(std::abs(lambda), rMax * (1 + 1e-12));
      EXPECT_LT(std::abs(lambda), 1.0);
      EXPECT_GT(std::exp(cell.theta_log()[j]), 0.0);
      EXPECT_LT(std::exp(cell.theta_log()[j]), maxPhase);
    }
  }
}

TEST(LRUCell, MaskChangeRebuildsTheStructure) {
  LRU<double> cell(kInputs, kUnits, {.seed = 12});
  const std::uint64_t version = cell.maskVersion();
  RowMatrix<double> mask = RowMatrix<double>::Ones(kUnits, kInputs);
  mask(1, 2) = 0;
  mask(3, 0) = 0;
  cell.setMasks(mask, mask);
  EXPECT_NE(cell.maskVersion(), version);
  EXPECT_EQ(cell.B_re()(1, 2), 0.0);
  EXPECT_EQ(cell.B_im()(3, 0), 0.0);
  EXPECT_EQ(cell.parameterCount(), 2 * (kUnits * kInputs - 2) + 2 * kUnits + 2 * kInputs * kUnits + kInputs);
  EXPECT_FALSE(cell.inputGraph().contains(1, 2));
  EXPECT_FALSE(cell.inputGraph().contains(kUnits + 3, 0));
  // The Jacobians follow the new masks.
  Random random(13);
  const Vector<double> x = randomVector(random, kInputs), s = randomVector(random, 2 * kUnits);
  const CellStep<LRU<double>> step(cell, x, s);
  const Matrix<double> numeric =
      finiteDifferences([&](const Vector<double>& theta) { return stepOf(cell, theta, x, s); }, cell.parameters());
  EXPECT_LE(relativeError(denseImmediateFromFactors(cell, step.cache, step.z), numeric), 1e-7);
}

// --- misuse: every option and argument is checked, and a refused call changes nothing ---

TEST(LRUErrors, SizesAndOptions) {
  constexpr double nan = std::numeric_limits<double>::quiet_NaN(), inf = std::numeric_limits<double>::infinity();
  expectError<ShapeError>([] { LRU<double>(0, 4); }, "inputSize");
  expectError<ShapeError>([] { LRU<double>(3, 0); }, "units");
  expectError<ShapeError>([] { LRU<double>(3, -1); }, "units");
  expectError<ShapeError>([] { LRU<double>(3, 4, {.outputSize = -1}); }, "LRUOptions::outputSize");
  // The skip D ⊙ x needs o = m.
  expectError<ShapeError>([] { LRU<double>(3, 4, {.outputSize = 2}); }, "LRUOptions::outputSize");
  expectError<ShapeError>([] { LRU<double>(3, 4, {.outputSize = 5, .skip = true}); }, "LRUOptions::outputSize");
  EXPECT_NO_THROW(LRU<double>(3, 4, {.outputSize = 2, .skip = false}));
  EXPECT_NO_THROW(LRU<double>(3, 4, {.outputSize = 3}));
  for (auto radii : {std::pair{-0.1, 0.5}, std::pair{0.5, 0.5}, std::pair{0.6, 0.5}, std::pair{0.2, 1.0 + 1e-12},
                     std::pair{nan, 0.5}, std::pair{0.1, nan}, std::pair{0.1, inf}}) {
    // Named copies, not a structured binding: C++20 lambdas may capture those, clang 14 may not.
    const double rMin = radii.first, rMax = radii.second;
    SCOPED_TRACE(::testing::Message() << "rMin " << rMin << ", rMax " << rMax);
    expectError<ValueError>([&] { LRU<double>(3, 4, {.rMin = rMin, .rMax = rMax}); }, "LRUOptions::rMin, rMax");
  }
  for (double phase : {0.0, -1.0, nan, inf}) {
    SCOPED_TRACE(::testing::Message() << "maxPhase " << phase);
    expectError<ValueError>([&] { LRU<double>(3, 4, {.maxPhase = phase}); }, "LRUOptions::maxPhase");
  }
  for (double density : {0.0, -0.5, 1.5, nan}) {
    SCOPED_TRACE(::testing::Message() << "density " << density);
    expectError<ValueError>([&] { LRU<double>(3, 4, {.inputDensity = density}); }, "LRUOptions::inputDensity");
  }
  expectError<ValueError>([] { LRU<double>(3, 4, {.activation = static_cast<LRUActivation>(7)}); },
                          "LRUOptions::activation");
}

/// Everything a refused call must leave as it was.
void expectSameLRU(const LRU<double>& cell, const LRU<double>& before) {
  EXPECT_EQ(cell.parameters(), before.parameters());
  EXPECT_EQ(cell.mask_re(), before.mask_re());
  EXPECT_EQ(cell.mask_im(), before.mask_im());
  EXPECT_EQ(cell.maskVersion(), before.maskVersion());
  EXPECT_EQ(cell.parameterCount(), before.parameterCount());
  EXPECT_EQ(cell.inputGraph(), before.inputGraph());
  EXPECT_EQ(cell.D(), before.D());
}

TEST(LRUErrors, RefusedSettersChangeNothing) {
  LRU<double> cell(kInputs, kUnits, {.inputDensity = 0.6, .seed = 14});
  const LRU<double> before = cell;
  const Vector<double> theta = cell.parameters();
  expectError<ShapeError>([&] { cell.setParameters(Vector<double>::Zero(theta.size() + 1)); }, "parameters");
  Vector<double> bad = theta;
  bad[3] = std::numeric_limits<double>::quiet_NaN();
  expectError<ValueError>([&] { cell.setParameters(bad); }, "parameters");
  ParameterTensors<double> tensors = cell.parameterTensors();
  ParameterTensors<double> wrong = tensors;
  wrong.pop_back();
  expectError<ShapeError>([&] { cell.setParameterTensors(wrong); }, "parameter tensors");
  wrong = tensors;
  wrong[4] = RowMatrix<double>::Zero(kInputs + 1, kUnits);
  expectError<ShapeError>([&] { cell.setParameterTensors(wrong); }, "C_re");
  wrong = tensors;
  wrong[2](1, 0) = std::numeric_limits<double>::infinity();
  expectError<ValueError>([&] { cell.setParameterTensors(wrong); }, "nu_log");
  wrong = tensors;
  Index maskedRow = -1, maskedColumn = -1;
  for (Index j = 0; j < kUnits; ++j)
    for (Index c = 0; c < kInputs; ++c)
      if (cell.mask_im()(j, c) == 0) maskedRow = j, maskedColumn = c;
  ASSERT_GE(maskedRow, 0);
  wrong[1](maskedRow, maskedColumn) = 0.25;
  expectError<ValueError>([&] { cell.setParameterTensors(wrong); }, "B_im");
  RowMatrix<double> mask = RowMatrix<double>::Ones(kUnits, kInputs);
  expectError<ShapeError>([&] { cell.setMasks(RowMatrix<double>::Ones(kUnits + 1, kInputs), mask); }, "mask_re");
  expectError<ShapeError>([&] { cell.setMasks(mask, RowMatrix<double>::Ones(kUnits, kInputs - 1)); }, "mask_im");
  mask(2, 1) = 0.5;
  expectError<ValueError>([&] { cell.setMasks(RowMatrix<double>::Ones(kUnits, kInputs), mask); }, "mask_im");
  expectError<ShapeError>([&] { cell.setParameterMasks({mask}); }, "parameter masks");
  expectSameLRU(cell, before);
  // The cell still steps exactly as before.
  const CellStep<LRU<double>> step(cell, Vector<double>::Ones(kInputs), Vector<double>::Zero(2 * kUnits));
  const CellStep<LRU<double>> reference(before, Vector<double>::Ones(kInputs), Vector<double>::Zero(2 * kUnits));
  EXPECT_EQ(step.next, reference.next);
  EXPECT_EQ(step.y, reference.y);
}

TEST(LRUErrors, ForwardArguments) {
  LRU<double> cell(kInputs, kUnits, {.seed = 15});
  StepCache<double> cache = cell.makeCache();
  Vector<double> next(2 * kUnits);
  expectError<ShapeError>([&] { cell.forward(Vector<double>::Zero(kInputs + 1), Vector<double>::Zero(2 * kUnits), next, cache); },
                          "input");
  expectError<ShapeError>([&] { cell.forward(Vector<double>::Zero(kInputs), Vector<double>::Zero(kUnits), next, cache); },
                          "state");
}

}  // namespace
}  // namespace snap::test
