// docs/math.md §3 for the new cells: RTRL and untruncated BPTT give the same gradient of the loss
// L = Σ_t δ_tᵀ y_t on the outputs, and both equal central finite differences of L computed from
// the reference equations, for the LRU (with and without the skip, each output function, dense and
// sparse B), the leaky RNN (α = 0.3) and stacks of mixed layers with sparse masks.

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kSteps = 16;

/// RTRL (both kernels) = BPTT = finite differences of the reference loss, and the engines'
/// outputs are the reference outputs.
template <class C>
void expectExact(const C& cell, const ReferenceModel& model, std::uint64_t seed) {
  ASSERT_EQ(cell.parameterCount(), model.parameterCount());
  const OutputStream stream(cell.inputSize(), cell.outputSize(), cell.stateSize(), seed, kSteps);
  RTRL<C> rtrl(cell), sparse(cell, {.denseDynamicsAbove = 2.0});
  BPTT<C> bptt(cell);
  const Vector<double> gradientRtrl = gradientOverOutputs(rtrl, stream);
  const Vector<double> gradientSparse = gradientOverOutputs(sparse, stream);
  const Vector<double> gradientBptt = gradientOverOutputs(bptt, stream);
  const Vector<double> numeric = finiteDifferenceOutputGradient(model, cell.parameters(), stream);
  ASSERT_GT(numeric.norm(), 0.0);
  EXPECT_LE(relativeError(gradientRtrl, gradientBptt), 1e-10);
  EXPECT_LE(relativeError(gradientSparse, gradientRtrl), 1e-13);
  EXPECT_LE(relativeError(gradientRtrl, numeric), 1e-6);
  EXPECT_LE(relativeError(gradientBptt, numeric), 1e-6);
  // Every parameter takes part: a gradient entry exactly 0 where the differences are not would
  // be a parameter the engines forgot.
  for (Index j = 0; j < numeric.size(); ++j)
    if (std::abs(numeric[j]) > 1e-6) {
      EXPECT_NE(gradientRtrl[j], 0.0) << "parameter " << j;
    }
  // The outputs the engines report are the reference outputs.
  const ReferenceModel::Weights w = model.weights(cell.parameters());
  RTRL<C> engine(cell);
  engine.resetState(stream.initial);
  Vector<double> s = stream.initial;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    const ReferenceModel::Step step = model.step(w, stream.inputs[t], s);
    engine.step(stream.inputs[t]);
    EXPECT_LE(relativeError(Vector<double>(engine.state().col(0)), step.next), 1e-12) << "state after step " << t;
    EXPECT_LE(relativeError(Vector<double>(engine.outputs().col(0)), step.output), 1e-12) << "output after step " << t;
    s = step.next;
  }
}

TEST(ExactNewCells, LRU) {
  std::uint64_t seed = 100;
  for (bool skip : {true, false})
    for (LRUActivation activation : {LRUActivation::None, LRUActivation::Tanh, LRUActivation::GELU})
      for (double density : {1.0, 0.4}) {
        SCOPED_TRACE(::testing::Message() << (skip ? "skip" : "no skip") << ", activation " << static_cast<int>(activation)
                                          << ", input density " << density);
        const LRU<double> cell(3, 5, {.outputSize = skip ? 0 : 4, .inputDensity = density, .skip = skip,
                                      .activation = activation, .seed = seed++});
        expectExact(cell, ReferenceModel({referenceLayer(cell)}), seed++);
      }
}

TEST(ExactNewCells, LRUNearTheUnitCircle) {
  // |λ| in [0.99, 0.999]: long memory, γ small.
  const LRU<double> cell(3, 5, {.rMin = 0.99, .rMax = 0.999, .inputDensity = 0.6, .activation = LRUActivation::Tanh,
                                .seed = 120});
  expectExact(cell, ReferenceModel({referenceLayer(cell)}), 121);
}

TEST(ExactNewCells, LeakyRNN) {
  std::uint64_t seed = 200;
  for (double density : {1.0, 0.3}) {
    SCOPED_TRACE(::testing::Message() << "recurrent density " << density);
    const RNN<double> cell(3, 7, {.inputDensity = 0.7, .recurrentDensity = density, .seed = seed++}, {.leak = 0.3});
    expectExact(cell, ReferenceModel({referenceLayer(cell)}), seed++);
  }
}

TEST(ExactNewCells, Stacks) {
  std::uint64_t seed = 300;
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    expectExact(c.stack, c.model, seed++);
  }
}

TEST(ExactNewCells, SingleLayerStackIsItsCell) {
  // A stack of one layer is the cell: the same gradients (the composition adds exact zeros).
  const GRU<double> gru(3, 6, {.recurrentDensity = 0.4, .seed = 400});
  const LRU<double> lru(3, 4, {.activation = LRUActivation::GELU, .seed = 401});
  const Stack<double> gruStack(gru), lruStack(lru);
  const OutputStream gruStream(3, 6, 6, 402, kSteps), lruStream(3, 3, 8, 403, kSteps);
  RTRL<GRU<double>> gruEngine(gru);
  RTRL<Stack<double>> gruStackEngine(gruStack);
  RTRL<LRU<double>> lruEngine(lru);
  RTRL<Stack<double>> lruStackEngine(lruStack);
  EXPECT_LE(relativeError(gradientOverOutputs(gruStackEngine, gruStream), gradientOverOutputs(gruEngine, gruStream)), 1e-13);
  EXPECT_LE(relativeError(gradientOverOutputs(lruStackEngine, lruStream), gradientOverOutputs(lruEngine, lruStream)), 1e-13);
}

TEST(ExactNewCells, ReadingTheGradientMidSequence) {
  // RTRL's gradient and BPTT's agree after every step (BPTT backpropagates its open window at
  // each read), with a reset of the gradient half way.
  const StackCase c = mixedStacks()[1];
  const OutputStream stream(3, c.stack.outputSize(), c.stack.stateSize(), 500, kSteps);
  RTRL<Stack<double>> rtrl(c.stack);
  BPTT<Stack<double>> bptt(c.stack);
  rtrl.resetState(stream.initial);
  bptt.resetState(stream.initial);
  for (Index t = 0; t < kSteps; ++t) {
    const auto i = static_cast<std::size_t>(t);
    rtrl.step(stream.inputs[i]);
    bptt.step(stream.inputs[i]);
    rtrl.accumulate(stream.deltas[i]);
    bptt.accumulate(stream.deltas[i]);
    EXPECT_LE(relativeError(bptt.gradient(), rtrl.gradient()), 1e-10) << "after step " << t;
    if (t == 7) {
      rtrl.resetGradient();
      bptt.resetGradient();
    }
  }
}

TEST(ExactNewCells, TruncatedBpttIsTheSumOverItsWindows) {
  // BPTT(T): each loss backpropagated to the start of its window of T steps (the state before the
  // window held fixed), by finite differences of the reference run over each window.
  constexpr Index window = 5;
  std::uint64_t seed = 800;
  const LRU<double> lru(3, 5, {.inputDensity = 0.6, .activation = LRUActivation::GELU, .seed = seed++});
  std::vector<StackCase> cases = mixedStacks();
  cases.push_back({"LRU", Stack<double>(lru), ReferenceModel({referenceLayer(lru)})});
  for (const StackCase& c : cases) {
    SCOPED_TRACE(c.name);
    const OutputStream stream(3, c.stack.outputSize(), c.stack.stateSize(), seed++, kSteps);
    const Vector<double> theta = c.stack.parameters();
    const ReferenceModel::Weights w = c.model.weights(theta);
    Vector<double> expected = Vector<double>::Zero(theta.size()), start = stream.initial;
    for (Index first = 0; first < kSteps; first += window) {
      const Index end = std::min(first + window, kSteps);
      const auto loss = [&](const Vector<double>& at) {
        const ReferenceModel::Weights weights = c.model.weights(at);
        Vector<double> s = start;
        double total = 0;
        for (Index t = first; t < end; ++t) {
          const ReferenceModel::Step step = c.model.step(weights, stream.inputs[static_cast<std::size_t>(t)], s);
          total += stream.deltas[static_cast<std::size_t>(t)].dot(step.output);
          s = step.next;
        }
        return Vector<double>::Constant(1, total);
      };
      expected += finiteDifferences(loss, theta).row(0).transpose();
      for (Index t = first; t < end; ++t) start = c.model.step(w, stream.inputs[static_cast<std::size_t>(t)], start).next;
    }
    BPTT<Stack<double>> truncated(c.stack, {.window = window});
    EXPECT_LE(relativeError(gradientOverOutputs(truncated, stream), expected), 1e-6);
  }
}

TEST(ExactNewCells, UoroIsExactOnTheTopOutputMap) {
  // The top layer's output map (an LRU's C and D) moves no state: its gradient is the same-step
  // term alone, which UORO computes exactly, whatever its random signs.
  const LRU<double> lru(3, 5, {.inputDensity = 0.6, .activation = LRUActivation::Tanh, .seed = 900});
  const Stack<double> stack(GRU<double>(3, 5, {.recurrentDensity = 0.5, .seed = 901}),
                            LRU<double>(5, 3, {.activation = LRUActivation::GELU, .seed = 902}));
  const auto expectExactOnOutputMap = [](const auto& cell, const ReferenceLayer& top, Index offset, std::uint64_t seed) {
    using C = std::remove_cvref_t<decltype(cell)>;
    const OutputStream stream(3, cell.outputSize(), cell.stateSize(), seed, kSteps);
    RTRL<C> rtrl(cell);
    const Vector<double> exact = gradientOverOutputs(rtrl, stream);
    for (std::uint64_t uoroSeed : {1u, 2u}) {
      UORO<C> uoro(cell, {.seed = uoroSeed});
      const Vector<double> estimate = gradientOverOutputs(uoro, stream);
      Index outputMap = 0;
      for (Index j = 0; j < top.parameters; ++j)
        if (top.unitOf[static_cast<std::size_t>(j)] < 0) {
          EXPECT_NEAR(estimate[offset + j], exact[offset + j], 1e-12 * exact.norm()) << "parameter " << offset + j;
          ++outputMap;
        }
      EXPECT_GT(outputMap, 0);
      EXPECT_GT(relativeError(estimate, exact), 1e-3) << "UORO is exact everywhere: the check says nothing";
    }
  };
  expectExactOnOutputMap(lru, referenceLayer(lru), 0, 903);
  expectExactOnOutputMap(stack, referenceLayer(stack.layer(1).cell<LRU<double>>()), stack.parameterOffset(1), 904);
}

/// The engine's gradient over the stream, run in float.
template <class Engine>
Vector<double> floatGradient(Engine& engine, const OutputStream& stream) {
  engine.resetState(stream.initial.cast<float>());
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    engine.step(stream.inputs[t].cast<float>());
    engine.accumulate(stream.deltas[t].cast<float>());
  }
  return engine.gradient().template cast<double>();
}

TEST(ExactNewCells, FloatAgreesWithDouble) {
  // The float instantiations of the new cells and engines run, and agree with double to float
  // precision (the same parameters, rounded to float).
  const LRUOptions lruOptions{.inputDensity = 0.6, .activation = LRUActivation::Tanh, .seed = 700};
  const LRU<double> lru(3, 5, lruOptions);
  LRU<float> lruFloat(3, 5, lruOptions);
  lruFloat.setParameters(lru.parameters().cast<float>());
  const CellOptions gruOptions{.recurrentDensity = 0.5, .seed = 701};
  const Stack<double> stack(GRU<double>(3, 5, gruOptions), LRU<double>(5, 3, lruOptions));
  Stack<float> stackFloat(GRU<float>(3, 5, gruOptions), LRU<float>(5, 3, lruOptions));
  stackFloat.setParameters(stack.parameters().cast<float>());
  const OutputStream lruStream(3, 3, 10, 702, kSteps), stackStream(3, 5, 11, 703, kSteps);
  {
    RTRL<LRU<double>> exact(lru);
    RTRL<LRU<float>> rtrl(lruFloat);
    RollingBPTT<LRU<double>> rolling(lru, {.window = 4});
    RollingBPTT<LRU<float>> rollingFloat(lruFloat, {.window = 4});
    EXPECT_LE(relativeError(floatGradient(rtrl, lruStream), gradientOverOutputs(exact, lruStream)), 1e-4);
    EXPECT_LE(relativeError(floatGradient(rollingFloat, lruStream), gradientOverOutputs(rolling, lruStream)), 1e-4);
  }
  {
    BPTT<Stack<double>> exact(stack);
    BPTT<Stack<float>> bptt(stackFloat);
    SnAp<Stack<double>> perLayer(stack, {.n = 11, .perLayer = true});
    SnAp<Stack<float>> perLayerFloat(stackFloat, {.n = 11, .perLayer = true});
    EProp<Stack<double>> eprop(stack);
    EProp<Stack<float>> epropFloat(stackFloat);
    EXPECT_LE(relativeError(floatGradient(bptt, stackStream), gradientOverOutputs(exact, stackStream)), 1e-4);
    EXPECT_LE(relativeError(floatGradient(perLayerFloat, stackStream), gradientOverOutputs(perLayer, stackStream)), 1e-4);
    EXPECT_LE(relativeError(floatGradient(epropFloat, stackStream), gradientOverOutputs(eprop, stackStream)), 1e-4);
  }
}

}  // namespace
}  // namespace snap::test
