// snap::Stack (docs/math.md §9): a stack of mixed layers steps as the layers' reference equations
// composed (each layer reads the output of the layer below at the same step), and the Jacobians
// it composes for the engines (D_t, I_t from its factors, their products, the output's and the
// spatial reverse pass) equal central finite differences of that composition; its graphs hold
// exactly the structural nonzeros; misuse is refused and changes nothing.

#include <gtest/gtest.h>

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kInputs = 3;

enum class PointKind { Random, Tiny, Saturated };
const char* name(PointKind kind) {
  return kind == PointKind::Random ? "random" : kind == PointKind::Tiny ? "tiny" : "saturated";
}

/// Each stack at a random point, a tiny one (inputs and states of 1e-7) and a saturated one (the
/// gated layers' tensors scaled by 10, inputs of ±5, states of ±0.99).
template <class F>
void forEachPoint(F&& check) {
  std::uint64_t seed = 20;
  for (PointKind kind : {PointKind::Random, PointKind::Tiny, PointKind::Saturated})
    for (StackCase& c : mixedStacks(kind == PointKind::Saturated ? 10.0 : 1.0)) {
      SCOPED_TRACE(::testing::Message() << c.name << ", " << name(kind) << " point");
      Random random(seed++);
      const double inputScale = kind == PointKind::Tiny ? 1e-7 : kind == PointKind::Saturated ? 5.0 : 1.0;
      const double stateScale = kind == PointKind::Tiny ? 1e-7 : kind == PointKind::Saturated ? 0.99 : 0.9;
      const Vector<double> x = randomVector(random, kInputs, inputScale);
      const Vector<double> s = randomVector(random, c.stack.stateSize(), stateScale);
      check(c, x, s, kind);
    }
}

/// S_t as a function of layer l's output y^l: the layers up to l as they are, those above
/// recomputed from their previous states through the same step.
Vector<double> statesAbove(const ReferenceModel& model, const ReferenceModel::Weights& w, std::size_t l,
                           const ReferenceModel::Step& at, const Vector<double>& previous, const Vector<double>& output) {
  Vector<double> states = at.next;
  Vector<double> input = output;
  for (std::size_t above = l + 1; above < model.layers.size(); ++above) {
    const ReferenceLayer& layer = model.layers[above];
    const Vector<double> next = layer.step(w[above], input, previous.segment(model.stateOffset[above], layer.states));
    states.segment(model.stateOffset[above], layer.states) = next;
    input = layer.output(w[above], input, next);
  }
  return states;
}

/// S_t as a function of layer l's new state (its output recomputed from it, and the layers above).
Vector<double> statesFromLayer(const ReferenceModel& model, const ReferenceModel::Weights& w, std::size_t l,
                               const ReferenceModel::Step& at, const Vector<double>& previous, const Vector<double>& own) {
  Vector<double> states = statesAbove(model, w, l, at, previous, model.layers[l].output(w[l], at.inputs[l], own));
  states.segment(model.stateOffset[l], model.layers[l].states) = own;
  return states;
}

TEST(Stack, SizesOffsetsAndParameters) {
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    const Stack<double>& stack = c.stack;
    const ReferenceModel& model = c.model;
    ASSERT_EQ(stack.layerCount(), model.layerCount());
    EXPECT_EQ(stack.inputSize(), kInputs);
    EXPECT_EQ(stack.stateSize(), model.stateSize());
    EXPECT_EQ(stack.outputSize(), model.outputSize());
    EXPECT_EQ(stack.parameterCount(), model.parameterCount());
    EXPECT_FALSE(Stack<double>::outputIsStateHead());
    Index tensors = 0;
    for (Index l = 0; l < stack.layerCount(); ++l) {
      const auto at = static_cast<std::size_t>(l);
      EXPECT_EQ(stack.stateOffset(l), model.stateOffset[at]);
      EXPECT_EQ(stack.parameterOffset(l), model.parameterOffset[at]);
      // θ is the layers' θ in order; the tensors are theirs, named layer<l>/<name>.
      Vector<double> own(model.layers[at].parameters);
      stack.layer(l)->parametersInto(own);
      EXPECT_EQ(stack.parameters().segment(model.parameterOffset[at], own.size()), own);
      const ParameterLayout& layout = model.layers[at].layout;
      for (Index t = 0; t < layout.tensorCount(); ++t, ++tensors)
        EXPECT_EQ(stack.layout().tensor(tensors).name, "layer" + std::to_string(l) + "/" + layout.tensor(t).name);
    }
    EXPECT_EQ(stack.layout().tensorCount(), tensors);
    EXPECT_EQ(static_cast<Index>(stack.parameterTensors().size()), tensors);
  }
  const GRU<double> gru(kInputs, 5, {.seed = 1});
  const LSTM<double> lstm(5, 4, {.seed = 2});
  const Stack<double> stack(gru, lstm);
  EXPECT_EQ(stack.layer(0).cell<GRU<double>>().parameters(), gru.parameters());
  EXPECT_EQ(stack.layer(1).cell<LSTM<double>>().parameters(), lstm.parameters());
  EXPECT_EQ(stack.layer(1).as<GRU<double>>(), nullptr);
}

TEST(Stack, ForwardIsTheLayersComposed) {
  forEachPoint([](const StackCase& c, const Vector<double>& x, const Vector<double>& s, PointKind) {
    const CellStep<Stack<double>> step(c.stack, x, s);
    const ReferenceModel::Step expected = c.model.step(c.model.weights(c.stack.parameters()), x, s);
    EXPECT_LE(relativeError(step.next, expected.next), 1e-13);
    EXPECT_LE(relativeError(step.y, expected.output), 1e-13);
  });
}

TEST(Stack, DynamicsJacobianMatchesFiniteDifferencesOnItsGraph) {
  forEachPoint([](const StackCase& c, const Vector<double>& x, const Vector<double>& s, PointKind kind) {
    const Stack<double>& stack = c.stack;
    const ReferenceModel::Weights w = c.model.weights(stack.parameters());
    const CellStep<Stack<double>> step(stack, x, s);
    const Matrix<double> numeric =
        finiteDifferences([&](const Vector<double>& previous) { return c.model.step(w, x, previous).next; }, s);
    const Matrix<double> analytic = denseDynamics(stack, step.cache);
    EXPECT_LE(relativeError(analytic, numeric), 1e-7);
    // Off the graph nothing moves; at a generic point every graph entry does (the graph is the
    // structure, not a superset of it).
    const SparsityPattern& graph = stack.dynamicsGraph();
    for (Index b = 0; b < numeric.rows(); ++b)
      for (Index a = 0; a < numeric.cols(); ++a) {
        if (!graph.contains(b, a)) {
          EXPECT_EQ(numeric(b, a), 0.0) << "D[" << b << ", " << a << "] off the graph";
        } else if (kind == PointKind::Random) {
          EXPECT_NE(numeric(b, a), 0.0) << "D[" << b << ", " << a << "] on the graph never moves";
        }
      }
    // Requested entries: a layer's own block alone, and a mix with composed entries.
    std::vector<double> all(static_cast<std::size_t>(graph.nonZeros()));
    stack.dynamicsJacobian(step.cache, std::span<double>(all));
    std::vector<StorageIndex> own, mixed;
    for (Index e = 0; e < graph.nonZeros(); ++e) {
      const Index row = graph.entryRow(e), column = graph.column(e);
      Index layerOfRow = 0, layerOfColumn = 0;
      for (Index l = 1; l < stack.layerCount(); ++l) {
        if (row >= stack.stateOffset(l)) layerOfRow = l;
        if (column >= stack.stateOffset(l)) layerOfColumn = l;
      }
      if (layerOfRow == layerOfColumn) own.push_back(static_cast<StorageIndex>(e));
      if (e % 3 == 0) mixed.push_back(static_cast<StorageIndex>(e));
    }
    for (const auto* entries : {&own, &mixed}) {
      std::vector<double> values(entries->size());
      stack.dynamicsJacobian(step.cache, std::span<const StorageIndex>(*entries), std::span<double>(values));
      for (std::size_t i = 0; i < entries->size(); ++i)
        EXPECT_EQ(values[i], all[static_cast<std::size_t>((*entries)[i])]) << "entry " << (*entries)[i];
    }
  });
}

TEST(Stack, ImmediateJacobianFromFactorsMatchesFiniteDifferences) {
  forEachPoint([](const StackCase& c, const Vector<double>& x, const Vector<double>& s, PointKind kind) {
    const Stack<double>& stack = c.stack;
    const CellStep<Stack<double>> step(stack, x, s);
    const Matrix<double> numeric = finiteDifferences(
        [&](const Vector<double>& theta) { return c.model.step(c.model.weights(theta), x, s).next; }, stack.parameters());
    const Matrix<double> analytic = denseImmediateFromFactors(stack, step.cache, step.z);
    EXPECT_LE(relativeError(analytic, numeric), 1e-7);
    // The rows a factor moves: its layer's own and, through the outputs, those of the layers
    // above it reaches in the same step; exactly those at a generic point.
    const auto moved = nonZeroRows(numeric);
    const SparsityPattern& factors = stack.factorPattern();
    for (Index j = 0; j < stack.parameterCount(); ++j) {
      const auto rows = factors.row(stack.layout().factor(j));
      const std::vector<Index> pattern(rows.begin(), rows.end());
      const auto& actual = moved[static_cast<std::size_t>(j)];
      for (Index row : actual) EXPECT_TRUE(std::binary_search(pattern.begin(), pattern.end(), row)) << "parameter " << j;
      if (kind == PointKind::Random) {
        EXPECT_EQ(actual, pattern) << "parameter " << j;
      }
    }
  });
}

TEST(Stack, ProductsMatchTheDenseJacobians) {
  forEachPoint([](const StackCase& c, const Vector<double>& x, const Vector<double>& s, PointKind) {
    const Stack<double>& stack = c.stack;
    const Vector<double> theta = stack.parameters();
    const ReferenceModel::Weights w = c.model.weights(theta);
    const CellStep<Stack<double>> step(stack, x, s);
    const Matrix<double> dynamics =
        finiteDifferences([&](const Vector<double>& previous) { return c.model.step(w, x, previous).next; }, s);
    const Matrix<double> immediate =
        finiteDifferences([&](const Vector<double>& at) { return c.model.step(c.model.weights(at), x, s).next; }, theta);
    Random random(5);
    const Index k = stack.stateSize(), factors = stack.layout().factorCount();
    const Vector<double> v = randomVector(random, k);
    Vector<double> forward(k), previous(k), e(factors), eAlone(factors);
    stack.dynamicsProduct(step.cache, v, forward);
    stack.vectorJacobianProduct(step.cache, v, previous, e);
    stack.factorGradient(step.cache, v, eAlone);
    EXPECT_LE(relativeError(forward, dynamics * v), 1e-7);
    EXPECT_LE(relativeError(previous, dynamics.transpose() * v), 1e-7);
    EXPECT_LE(relativeError(parameterGradientOf(stack, e, step.z), immediate.transpose() * v), 1e-7);
    EXPECT_LE(relativeError(parameterGradientOf(stack, eAlone, step.z), immediate.transpose() * v), 1e-7);
    EXPECT_LE(relativeError(eAlone, e), 1e-14);
  });
}

TEST(Stack, OutputBackwardMatchesFiniteDifferences) {
  forEachPoint([](const StackCase& c, const Vector<double>& x, const Vector<double>& s, PointKind) {
    const Stack<double>& stack = c.stack;
    const Vector<double> theta = stack.parameters();
    const ReferenceModel::Weights w = c.model.weights(theta);
    const CellStep<Stack<double>> step(stack, x, s);
    // y_t = out(S_t, x_t): ∂y/∂S_t with x fixed, ∂y/∂θ with S_t and x fixed.
    const Matrix<double> byState =
        finiteDifferences([&](const Vector<double>& next) { return c.model.outputOf(w, x, next); }, step.next);
    const Matrix<double> byParameters =
        finiteDifferences([&](const Vector<double>& at) { return c.model.outputOf(c.model.weights(at), x, step.next); }, theta);
    Random random(6);
    const Vector<double> delta = randomVector(random, stack.outputSize());
    Vector<double> stateGradient(stack.stateSize()), e(stack.layout().factorCount());
    stack.outputBackward(step.cache, delta, stateGradient, e);
    EXPECT_LE(relativeError(stateGradient, byState.transpose() * delta), 1e-7);
    const Vector<double> expected = byParameters.transpose() * delta;
    if (expected.norm() == 0.0) {
      EXPECT_TRUE(parameterGradientOf(stack, e, step.z).isZero(0.0));  // a gated top layer: y = h
    } else {
      EXPECT_LE(relativeError(parameterGradientOf(stack, e, step.z), expected), 1e-7);
    }
  });
}

TEST(Stack, SpatialBackwardIsTheSameStepReversePass) {
  // ṽ^l = (∂S_t/∂s^l_t)ᵀ v through the same step (the layers above recomputed from layer l's
  // state), and the factor gradient it returns expands to ∂(vᵀ S_t)/∂θ of the output maps' own
  // parameters (zero on every other parameter).
  forEachPoint([](const StackCase& c, const Vector<double>& x, const Vector<double>& s, PointKind) {
    const Stack<double>& stack = c.stack;
    const ReferenceModel& model = c.model;
    const Vector<double> theta = stack.parameters();
    const ReferenceModel::Weights w = model.weights(theta);
    const ReferenceModel::Step at = model.step(w, x, s);
    const CellStep<Stack<double>> step(stack, x, s);
    Random random(7);
    const Vector<double> v = randomVector(random, stack.stateSize());
    Vector<double> expected(stack.stateSize());
    for (std::size_t l = 0; l < model.layers.size(); ++l) {
      const Matrix<double> jacobian = finiteDifferences(
          [&](const Vector<double>& own) { return statesFromLayer(model, w, l, at, s, own); }, model.layerState(at.next, static_cast<Index>(l)));
      expected.segment(model.stateOffset[l], model.layers[l].states) = jacobian.transpose() * v;
    }
    Vector<double> spatial(stack.stateSize()), e(stack.layout().factorCount());
    stack.spatialBackward(step.cache, v, spatial, e);
    EXPECT_LE(relativeError(spatial, expected), 1e-7);
    // The output maps' own parameters move S_t only through their layer's output y^l: by the
    // chain rule, (∂S_t/∂y^l · ∂y^l/∂θ^l)ᵀ v, each factor by finite differences (one difference
    // of vᵀ S_t in θ would lose the tiny point's ∂y^l/∂θ^l below the rounding of S_t).
    Vector<double> outputMaps = Vector<double>::Zero(theta.size());
    for (std::size_t l = 0; l < model.layers.size(); ++l) {
      const ReferenceLayer& layer = model.layers[l];
      const Vector<double> own = model.layerState(at.next, static_cast<Index>(l));
      const Matrix<double> byOutput = finiteDifferences(
          [&](const Vector<double>& output) { return statesAbove(model, w, l, at, s, output); }, at.outputs[l]);
      const Matrix<double> outputByParameters = finiteDifferences(
          [&](const Vector<double>& parameters) { return layer.output(layer.tensors(parameters), at.inputs[l], own); },
          theta.segment(model.parameterOffset[l], layer.parameters));
      const Vector<double> layerGradient = outputByParameters.transpose() * (byOutput.transpose() * v);
      for (Index j = 0; j < layer.parameters; ++j)
        if (layer.unitOf[static_cast<std::size_t>(j)] < 0) outputMaps[model.parameterOffset[l] + j] = layerGradient[j];
    }
    const Vector<double> expanded = parameterGradientOf(stack, e, step.z);
    if (outputMaps.norm() == 0.0) {
      EXPECT_TRUE(expanded.isZero(0.0));
    } else {
      EXPECT_LE(relativeError(expanded, outputMaps), 1e-7);
    }
  });
}

TEST(Stack, InternalCouplingsAreTheLayersOwn) {
  forEachPoint([](const StackCase& c, const Vector<double>& x, const Vector<double>& s, PointKind) {
    const Stack<double>& stack = c.stack;
    const ReferenceModel& model = c.model;
    const ReferenceModel::Weights w = model.weights(stack.parameters());
    const ReferenceModel::Step at = model.step(w, x, s);
    // E_t, block-diagonal: each layer's couplings from its equations (leaky RNN 1 − α, GRU z,
    // LSTM f and o (1 − tanh² c') f, LRU λ).
    Matrix<double> expected = Matrix<double>::Zero(stack.stateSize(), stack.stateSize());
    for (std::size_t l = 0; l < model.layers.size(); ++l)
      expected.block(model.stateOffset[l], model.stateOffset[l], model.layers[l].states, model.layers[l].states) =
          model.layers[l].internalJacobian(w[l], at.inputs[l], model.layerState(s, static_cast<Index>(l)));
    const CellStep<Stack<double>> step(stack, x, s);
    const SparsityPattern& graph = stack.internalGraph();
    std::vector<double> values(static_cast<std::size_t>(graph.nonZeros()));
    stack.internalJacobian(step.cache, std::span<double>(values));
    EXPECT_LE(relativeError(denseOf(graph, values), expected), 1e-14);
    for (Index b = 0; b < expected.rows(); ++b)
      for (Index a = 0; a < expected.cols(); ++a)
        if (!graph.contains(b, a)) {
          EXPECT_EQ(expected(b, a), 0.0) << "E[" << b << ", " << a << "] off the internal graph";
        }
  });
}

TEST(Stack, SetLayerReplacesALayer) {
  GRU<double> gru(kInputs, 5, {.seed = 31});
  LSTM<double> lstm(5, 4, {.recurrentDensity = 0.5, .seed = 32});
  Stack<double> stack(gru, lstm);
  const std::uint64_t version = stack.maskVersion();
  LSTM<double> other(5, 4, {.inputDensity = 0.5, .seed = 33});
  stack.setLayer(1, other);
  EXPECT_NE(stack.maskVersion(), version);
  EXPECT_EQ(stack.parameterCount(), gru.parameterCount() + other.parameterCount());
  const ReferenceModel model({referenceLayer(gru), referenceLayer(other)});
  Random random(34);
  const Vector<double> x = randomVector(random, kInputs), s = randomVector(random, stack.stateSize(), 0.5);
  const CellStep<Stack<double>> step(stack, x, s);
  EXPECT_LE(relativeError(step.next, model.step(model.weights(stack.parameters()), x, s).next), 1e-13);
  const Matrix<double> numeric = finiteDifferences(
      [&](const Vector<double>& theta) { return model.step(model.weights(theta), x, s).next; }, stack.parameters());
  EXPECT_LE(relativeError(denseImmediateFromFactors(stack, step.cache, step.z), numeric), 1e-7);
  // Another cell type of the same sizes is a layer too.
  stack.setLayer(0, LRU<double>(kInputs, 3, {.outputSize = 5, .skip = false, .seed = 35}));
  EXPECT_NE(stack.layer(0).as<LRU<double>>(), nullptr);
  EXPECT_EQ(stack.stateSize(), 6 + 8);
}

/// A gated layer's same-step Jacobians (requirement::Stackable): ∂s'/∂x on inputGraph() and its
/// transposed product against finite differences of the equations, and the output y = h:
/// ∂y/∂s' the identity on h, nothing from x or from a factor, δ_s = [δ_y; 0].
template <class C>
void expectGatedLayerJacobians(const C& cell, double scale, std::uint64_t seed) {
  const ReferenceLayer layer = referenceLayer(cell);
  const ParameterTensors<double> w = layer.tensors(cell.parameters());
  Random random(seed);
  const Vector<double> x = randomVector(random, cell.inputSize(), scale), s = randomVector(random, cell.stateSize(), 0.9);
  const CellStep<C> step(cell, x, s);
  const Matrix<double> byInput = finiteDifferences([&](const Vector<double>& input) { return layer.step(w, input, s); }, x);
  const SparsityPattern& graph = cell.inputGraph();
  std::vector<double> values(static_cast<std::size_t>(graph.nonZeros()));
  cell.inputJacobian(step.cache, std::span<double>(values));
  EXPECT_LE(relativeError(denseOf(graph, values), byInput), 1e-7);
  for (Index b = 0; b < byInput.rows(); ++b)
    for (Index c = 0; c < byInput.cols(); ++c)
      if (!graph.contains(b, c)) {
        EXPECT_EQ(byInput(b, c), 0.0) << "∂s'/∂x[" << b << ", " << c << "] off the input graph";
      }
  const Vector<double> v = randomVector(random, cell.stateSize());
  Vector<double> backward(cell.inputSize());
  cell.inputBackward(step.cache, v, backward);
  EXPECT_LE(relativeError(backward, byInput.transpose() * v), 1e-7);
  // The output: y = h.
  const Index H = cell.hiddenSize();
  std::vector<double> stateValues(static_cast<std::size_t>(cell.outputStateGraph().nonZeros()));
  std::vector<double> none;
  cell.outputJacobian(step.cache, std::span<double>(stateValues), std::span<double>(none), std::span<double>(none));
  Matrix<double> head = Matrix<double>::Zero(H, cell.stateSize());
  head.leftCols(H).setIdentity();
  EXPECT_EQ(denseOf(cell.outputStateGraph(), stateValues), head);
  EXPECT_EQ(cell.outputInputGraph().nonZeros(), 0);
  EXPECT_EQ(cell.outputFactorPattern().nonZeros(), 0);
  const Vector<double> delta = randomVector(random, H);
  Vector<double> stateGradient(cell.stateSize()), e(cell.layout().factorCount());
  cell.outputBackward(step.cache, delta, stateGradient, e);
  EXPECT_EQ(stateGradient.head(H), delta);
  EXPECT_TRUE(stateGradient.tail(cell.stateSize() - H).isZero(0.0));
  EXPECT_TRUE(e.isZero(0.0));
}

TEST(StackLayers, GatedLayersSameStepJacobians) {
  std::uint64_t seed = 40;
  for (double density : {1.0, 0.4})
    for (double scale : {1.0, 5.0}) {
      SCOPED_TRACE(::testing::Message() << "input density " << density << ", input scale " << scale);
      const CellOptions options{.inputDensity = density, .recurrentDensity = 0.5, .seed = seed++};
      expectGatedLayerJacobians(GRU<double>(3, 5, options), scale, seed++);
      expectGatedLayerJacobians(LSTM<double>(3, 4, options), scale, seed++);
      expectGatedLayerJacobians(RNN<double>(3, 5, options, {.leak = 0.3}), scale, seed++);
    }
}

// --- misuse: refused, and nothing changes ---

void expectSameStack(const Stack<double>& stack, const Stack<double>& before) {
  EXPECT_EQ(stack.parameters(), before.parameters());
  EXPECT_EQ(stack.maskVersion(), before.maskVersion());
  EXPECT_EQ(stack.parameterCount(), before.parameterCount());
  EXPECT_EQ(stack.stateSize(), before.stateSize());
  EXPECT_EQ(stack.dynamicsGraph(), before.dynamicsGraph());
  EXPECT_EQ(stack.factorPattern(), before.factorPattern());
}

TEST(StackErrors, LayersThatDoNotFit) {
  expectError<ShapeError>([] { Stack<double>(GRU<double>(3, 5), LSTM<double>(4, 6)); }, "layers[1] input size");
  expectError<ShapeError>([] { Stack<double>(GRU<double>(3, 5), LSTM<double>(5, 6), RNN<double>(5, 2)); },
                          "layers[2] input size");
  // An LRU with the skip has o = m: 3 outputs, not its 4 units.
  expectError<ShapeError>([] { Stack<double>(LRU<double>(3, 4), GRU<double>(4, 2)); }, "layers[1] input size");
  expectError<ShapeError>([] { Stack<double>(std::vector<Layer<double>>{}); }, "layers");
  try {
    Stack<double>(GRU<double>(3, 5), LSTM<double>(4, 6));
  } catch (const ShapeError& error) {
    EXPECT_EQ(std::string(error.what()), "snap: layers[1] input size: expected the output size of layer 0, 5, got 4");
  }
}

TEST(StackErrors, SetLayerWithOtherSizesChangesNothing) {
  Stack<double> stack(GRU<double>(3, 5, {.seed = 1}), LSTM<double>(5, 4, {.seed = 2}));
  const Stack<double> before = stack;
  expectError<ShapeError>([&] { stack.setLayer(1, LSTM<double>(5, 3)); }, "cell");
  expectError<ShapeError>([&] { stack.setLayer(1, LSTM<double>(4, 4)); }, "cell");
  expectError<ShapeError>([&] { stack.setLayer(0, GRU<double>(3, 4)); }, "cell");
  expectError<ShapeError>([&] { stack.setLayer(2, GRU<double>(5, 4)); }, "layer");
  expectError<ShapeError>([&] { stack.setLayer(-1, GRU<double>(3, 5)); }, "layer");
  expectError<ShapeError>([&] { (void)stack.layer(2); }, "layer");
  expectError<UsageError>([&] { (void)stack.layer(0).cell<LSTM<double>>(); }, "Layer::cell");
  expectSameStack(stack, before);
}

TEST(StackErrors, RefusedSettersChangeNothing) {
  Stack<double> stack(GRU<double>(3, 5, {.inputDensity = 0.5, .seed = 1}), LRU<double>(5, 3, {.seed = 2}));
  const Stack<double> before = stack;
  const Vector<double> theta = stack.parameters();
  expectError<ShapeError>([&] { stack.setParameters(Vector<double>::Zero(theta.size() - 1)); }, "parameters");
  Vector<double> bad = theta;
  bad[theta.size() - 1] = std::numeric_limits<double>::infinity();
  expectError<ValueError>([&] { stack.setParameters(bad); }, "parameters");
  // A bad tensor of the second layer: the first layer's new values are not taken either.
  ParameterTensors<double> tensors = stack.parameterTensors();
  tensors[0] *= 2.0;
  tensors[6](0, 0) = std::numeric_limits<double>::quiet_NaN();  // layer1/nu_log
  expectError<ValueError>([&] { stack.setParameterTensors(tensors); }, "nu_log");
  tensors.pop_back();
  expectError<ShapeError>([&] { stack.setParameterTensors(tensors); }, "parameter tensors");
  std::vector<RowMatrix<double>> masks;
  for (const RowMatrix<double>& tensor : stack.parameterTensors()) masks.push_back(RowMatrix<double>::Ones(tensor.rows(), tensor.cols()));
  masks[5](0, 0) = 2.0;  // layer1/B_im
  expectError<ValueError>([&] { stack.setParameterMasks(masks); }, "mask_im");
  masks.pop_back();
  expectError<ShapeError>([&] { stack.setParameterMasks(masks); }, "parameter masks");
  expectSameStack(stack, before);
  StepCache<double> cache = stack.makeCache();
  Vector<double> next(stack.stateSize());
  expectError<ShapeError>([&] { stack.forward(Vector<double>::Zero(4), Vector<double>::Zero(stack.stateSize()), next, cache); },
                          "input");
  expectError<ShapeError>([&] { stack.forward(Vector<double>::Zero(3), Vector<double>::Zero(2), next, cache); }, "state");
}

}  // namespace
}  // namespace snap::test
