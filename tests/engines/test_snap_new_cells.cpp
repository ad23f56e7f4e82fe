// SnAp-n on the LRU and on stacks (docs/math.md §4, §9). The pattern is the structural reachability
// of the stack's joint graph, computed here by breadth-first search on the nonzeros of finite
// differences of the reference equations; SnAp-n is the masked recursion Ĵ ← M_n ⊙ (I_t + D_t Ĵ)
// with D_t and I_t from those differences, and RTRL once the pattern is closed. On the LRU,
// SnAp-2 keeps two rows per recurrent parameter and is RTRL. The per-layer mode
// (SnApOptions::perLayer) equals the per-layer rule written with dense matrices, and on a single
// cell it is the joint mode bit for bit.

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kSteps = 16;

/// The structure of a model at generic points: edge[b][a] when D_t[b, a] ≠ 0, home[j] the rows
/// with I_t[:, j] ≠ 0, at either of two random points (finite differences of the equations).
struct Structure {
  std::vector<std::vector<bool>> edge;
  std::vector<std::set<Index>> home;
};

Structure structureOf(const ReferenceModel& model, const Vector<double>& theta, std::uint64_t seed) {
  const Index K = model.stateSize(), p = model.parameterCount();
  Structure structure{std::vector<std::vector<bool>>(static_cast<std::size_t>(K), std::vector<bool>(static_cast<std::size_t>(K))),
                      std::vector<std::set<Index>>(static_cast<std::size_t>(p))};
  const ReferenceModel::Weights w = model.weights(theta);
  Random random(seed);
  for (int point = 0; point < 2; ++point) {
    const Vector<double> x = randomVector(random, model.inputSize()), s = randomVector(random, K, 0.9);
    const Matrix<double> dynamics =
        finiteDifferences([&](const Vector<double>& previous) { return model.step(w, x, previous).next; }, s);
    const Matrix<double> immediate =
        finiteDifferences([&](const Vector<double>& at) { return model.step(model.weights(at), x, s).next; }, theta);
    for (Index b = 0; b < K; ++b) {
      for (Index a = 0; a < K; ++a)
        if (dynamics(b, a) != 0.0) structure.edge[static_cast<std::size_t>(b)][static_cast<std::size_t>(a)] = true;
      for (Index j = 0; j < p; ++j)
        if (immediate(b, j) != 0.0) structure.home[static_cast<std::size_t>(j)].insert(b);
    }
  }
  return structure;
}

/// The layer of state row r, or of parameter j, in the model.
Index layerOfRow(const ReferenceModel& model, Index row) {
  Index l = 0;
  while (row >= model.stateOffset[static_cast<std::size_t>(l) + 1]) ++l;
  return l;
}
Index layerOfParameter(const ReferenceModel& model, Index j) {
  Index l = 0;
  while (j >= model.parameterOffset[static_cast<std::size_t>(l) + 1]) ++l;
  return l;
}

/// R_n(j) by breadth-first search: the home rows, then n − 1 times every successor; in the
/// per-layer mode only rows of the parameter's own layer, and only edges inside it.
std::set<Index> reach(const ReferenceModel& model, const Structure& structure, Index j, int n, bool perLayer) {
  const Index K = model.stateSize(), own = layerOfParameter(model, j);
  std::set<Index> rows;
  for (Index row : structure.home[static_cast<std::size_t>(j)])
    if (!perLayer || layerOfRow(model, row) == own) rows.insert(row);
  std::set<Index> frontier = rows;
  for (int level = 1; level < n && !frontier.empty(); ++level) {
    std::set<Index> added;
    for (Index a : frontier)
      for (Index b = 0; b < K; ++b)
        if (structure.edge[static_cast<std::size_t>(b)][static_cast<std::size_t>(a)] && !rows.count(b) &&
            (!perLayer || layerOfRow(model, b) == layerOfRow(model, a)))
          added.insert(b);
    rows.insert(added.begin(), added.end());
    frontier = added;
  }
  return rows;
}

/// The rows SnAp keeps for parameter j, as a set.
template <class Engine>
std::set<Index> keptRows(const Engine& engine, Index j) {
  const auto rows = engine.pattern().rowsOf(j);
  return {rows.begin(), rows.end()};
}

/// A single LRU as a model of one layer.
struct LRUCase {
  std::string name;
  LRU<double> cell;
  ReferenceModel model;
};
std::vector<LRUCase> lruCases() {
  std::vector<LRUCase> cases;
  std::uint64_t seed = 40;
  for (bool skip : {true, false})
    for (LRUActivation activation : {LRUActivation::None, LRUActivation::Tanh, LRUActivation::GELU}) {
      LRU<double> cell(3, 5, {.outputSize = skip ? 0 : 2, .inputDensity = 0.6, .skip = skip, .activation = activation,
                              .seed = seed++});
      cases.push_back({std::string(skip ? "skip" : "no skip") + ", activation " + std::to_string(static_cast<int>(activation)),
                       cell, ReferenceModel({referenceLayer(cell)})});
    }
  return cases;
}

TEST(SnApStacks, PatternIsTheStructuralReachability) {
  std::uint64_t seed = 1;
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    const Structure structure = structureOf(c.model, c.stack.parameters(), seed++);
    const int K = static_cast<int>(c.stack.stateSize());
    for (bool perLayer : {false, true})
      for (int n : {1, 2, 3, K}) {
        SCOPED_TRACE(::testing::Message() << (perLayer ? "per layer" : "joint") << ", SnAp-" << n);
        SnAp<Stack<double>> engine(c.stack, {.n = n, .perLayer = perLayer});
        Index kept = 0;
        for (Index j = 0; j < c.stack.parameterCount(); ++j) {
          const std::set<Index> expected = reach(c.model, structure, j, n, perLayer);
          ASSERT_EQ(keptRows(engine, j), expected) << "parameter " << j;
          kept += static_cast<Index>(expected.size());
        }
        EXPECT_EQ(engine.pattern().keptEntries(), kept);
        if (n == K) {
          EXPECT_TRUE(engine.pattern().isClosed());
        }
      }
  }
}

TEST(SnApStacks, ALowerLayersParameterReachesTheLayerAboveInOneStep) {
  // GRU (H = 5) → LSTM (H = 4): a parameter of GRU unit u moves h_u, hence y¹_u, hence in the same
  // step h²_b wherever any gate of the LSTM reads input u, and c²_b wherever its i, f or g gate
  // does: R_1 holds those rows (joint mode), and only h_u in the per-layer mode.
  const StackCase c = mixedStacks()[0];
  const LSTM<double>& lstm = c.stack.layer(1).cell<LSTM<double>>();
  const Index lower = 5, upper = 4;
  SnAp<Stack<double>> joint(c.stack, {.n = 1}), perLayer(c.stack, {.n = 1, .perLayer = true});
  const ReferenceLayer& gru = c.model.layers[0];
  Index reachingAbove = 0;
  for (Index j = 0; j < gru.parameters; ++j) {
    const Index u = gru.unitOf[static_cast<std::size_t>(j)];
    std::set<Index> expected{u};
    for (Index b = 0; b < upper; ++b)
      for (Index gate = 0; gate < 4; ++gate)
        if (lstm.mask_ih()(gate * upper + b, u) != 0) {
          expected.insert(lower + b);
          if (gate != 3) expected.insert(lower + upper + b);
        }
    EXPECT_EQ(keptRows(joint, j), expected) << "parameter " << j << " of unit " << u;
    EXPECT_EQ(keptRows(perLayer, j), std::set<Index>{u}) << "parameter " << j;
    if (expected.size() > 1) ++reachingAbove;
  }
  EXPECT_GT(reachingAbove, 0) << "no GRU unit feeds the LSTM: the check could not fail";
}

/// Ĵ ← M ⊙ (I_t + D_t Ĵ), g = Σ_t Ĵ_tᵀ (∂y_t/∂S_t)ᵀ δ_t + (∂y_t/∂θ)ᵀ δ_t, with D_t, I_t and the
/// output's Jacobians by finite differences of the reference, and M from `rowsOf`.
struct MaskedRecursion {
  Vector<double> gradient;
  Matrix<double> influence;  ///< Ĵ after the last step
};
MaskedRecursion maskedRecursion(const ReferenceModel& model, const Vector<double>& theta, const OutputStream& stream,
                                const std::function<std::set<Index>(Index)>& rowsOf) {
  const Index K = model.stateSize(), p = model.parameterCount();
  Matrix<double> mask = Matrix<double>::Zero(K, p);
  for (Index j = 0; j < p; ++j)
    for (Index row : rowsOf(j)) mask(row, j) = 1;
  const ReferenceModel::Weights w = model.weights(theta);
  MaskedRecursion result{Vector<double>::Zero(p), Matrix<double>::Zero(K, p)};
  Vector<double> s = stream.initial;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    const Vector<double>& x = stream.inputs[t];
    const Matrix<double> dynamics =
        finiteDifferences([&](const Vector<double>& previous) { return model.step(w, x, previous).next; }, s);
    const Matrix<double> immediate =
        finiteDifferences([&](const Vector<double>& at) { return model.step(model.weights(at), x, s).next; }, theta);
    const Vector<double> next = model.step(w, x, s).next;
    const Matrix<double> byState = finiteDifferences([&](const Vector<double>& at) { return model.outputOf(w, x, at); }, next);
    const Matrix<double> byParameters =
        finiteDifferences([&](const Vector<double>& at) { return model.outputOf(model.weights(at), x, next); }, theta);
    result.influence = mask.cwiseProduct(immediate + dynamics * result.influence);
    result.gradient += result.influence.transpose() * (byState.transpose() * stream.deltas[t]) +
                       byParameters.transpose() * stream.deltas[t];
    s = next;
  }
  return result;
}

TEST(SnApStacks, IsTheMaskedRecursion) {
  std::uint64_t seed = 10;
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    const Vector<double> theta = c.stack.parameters();
    const Structure structure = structureOf(c.model, theta, seed++);
    const OutputStream stream(3, c.stack.outputSize(), c.stack.stateSize(), seed++, kSteps);
    for (int n : {1, 2}) {
      SCOPED_TRACE(::testing::Message() << "SnAp-" << n);
      SnAp<Stack<double>> engine(c.stack, {.n = n});
      const MaskedRecursion expected =
          maskedRecursion(c.model, theta, stream, [&](Index j) { return reach(c.model, structure, j, n, false); });
      EXPECT_LE(relativeError(gradientOverOutputs(engine, stream), expected.gradient), 1e-6);
      Matrix<double> stored(c.stack.stateSize(), c.stack.parameterCount());
      for (Index row = 0; row < stored.rows(); ++row)
        for (Index j = 0; j < stored.cols(); ++j) stored(row, j) = engine.influence(row, j);
      EXPECT_LE(relativeError(stored, expected.influence), 1e-6);
      // Both block kernels give the same numbers.
      SnAp<Stack<double>> dense(c.stack, {.n = n, .denseBlockAbove = 0.0}), sparse(c.stack, {.n = n, .denseBlockAbove = 2.0});
      EXPECT_LE(relativeError(gradientOverOutputs(dense, stream), gradientOverOutputs(sparse, stream)), 1e-13);
    }
  }
}

TEST(SnApStacks, ClosedPatternIsRtrl) {
  std::uint64_t seed = 20;
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    const OutputStream stream(3, c.stack.outputSize(), c.stack.stateSize(), seed++, kSteps);
    RTRL<Stack<double>> rtrl(c.stack);
    const Vector<double> expected = gradientOverOutputs(rtrl, stream);
    for (double denseBlockAbove : {0.0, 0.5, 2.0}) {
      SnAp<Stack<double>> snap(c.stack, {.n = static_cast<int>(c.stack.stateSize()), .denseBlockAbove = denseBlockAbove});
      ASSERT_TRUE(snap.pattern().isClosed());
      EXPECT_LE(relativeError(gradientOverOutputs(snap, stream), expected), 1e-12) << "denseBlockAbove " << denseBlockAbove;
    }
    // SnAp-1 drops entries RTRL has: a different gradient (the comparison above could fail).
    SnAp<Stack<double>> snap1(c.stack, {.n = 1});
    EXPECT_GT(relativeError(gradientOverOutputs(snap1, stream), expected), 1e-3);
  }
}

TEST(SnApLRU, SnAp2KeepsTwoRowsPerRecurrentParameterAndIsRtrl) {
  std::uint64_t seed = 30;
  for (const LRUCase& c : lruCases()) {
    SCOPED_TRACE(c.name);
    const LRU<double>& cell = c.cell;
    const ReferenceLayer& layer = c.model.layers[0];
    const auto active = static_cast<Index>(cell.mask_re().sum());
    SnAp<LRU<double>> snap2(cell, {.n = 2}), snap1(cell, {.n = 1});
    Index recurrent = 0;
    for (Index j = 0; j < cell.parameterCount(); ++j) {
      const Index u = layer.unitOf[static_cast<std::size_t>(j)];
      if (u < 0) {  // C_re, C_im, D: they move no state row
        EXPECT_TRUE(keptRows(snap2, j).empty()) << "parameter " << j;
        EXPECT_TRUE(keptRows(snap1, j).empty()) << "parameter " << j;
        continue;
      }
      ++recurrent;
      EXPECT_EQ(keptRows(snap2, j), (std::set<Index>{u, 5 + u})) << "parameter " << j;
      if (j < active) {
        EXPECT_EQ(keptRows(snap1, j), std::set<Index>{u}) << "B_re entry " << j;  // Re h_u
      } else if (j < 2 * active) {
        EXPECT_EQ(keptRows(snap1, j), std::set<Index>{5 + u}) << "B_im entry " << j;  // Im h_u
      } else {
        EXPECT_EQ(keptRows(snap1, j), (std::set<Index>{u, 5 + u})) << "ν or θ entry " << j;
      }
    }
    EXPECT_EQ(recurrent, 2 * active + 2 * 5);
    EXPECT_EQ(snap2.pattern().keptEntries(), 2 * recurrent);  // O(p)
    EXPECT_TRUE(snap2.pattern().isClosed());
    EXPECT_FALSE(snap1.pattern().isClosed());
    const OutputStream stream(3, cell.outputSize(), 10, seed++, kSteps);
    RTRL<LRU<double>> rtrl(cell);
    const Vector<double> expected = gradientOverOutputs(rtrl, stream);
    EXPECT_LE(relativeError(gradientOverOutputs(snap2, stream), expected), 1e-12);
    EXPECT_GT(relativeError(gradientOverOutputs(snap1, stream), expected), 1e-3);
    // SnAp-1 is its own masked recursion: B_re on Re h_u, B_im on Im h_u, ν and θ on both.
    const MaskedRecursion reference = maskedRecursion(c.model, cell.parameters(), stream, [&](Index j) {
      const Index u = layer.unitOf[static_cast<std::size_t>(j)];
      if (u < 0) return std::set<Index>{};
      if (j < active) return std::set<Index>{u};
      if (j < 2 * active) return std::set<Index>{5 + u};
      return std::set<Index>{u, 5 + u};
    });
    EXPECT_LE(relativeError(snap1.gradient(), reference.gradient), 1e-6);
  }
}

TEST(SnApPerLayer, EqualsThePerLayerRule) {
  std::uint64_t seed = 50;
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    const OutputStream stream(3, c.stack.outputSize(), c.stack.stateSize(), seed++, kSteps);
    const Vector<double> expected = perLayerGradient(c.model, c.stack.parameters(), stream);
    for (double denseBlockAbove : {0.0, 2.0}) {
      SnAp<Stack<double>> perLayer(c.stack, {.n = static_cast<int>(c.stack.stateSize()), .denseBlockAbove = denseBlockAbove,
                                             .perLayer = true});
      EXPECT_TRUE(perLayer.pattern().isClosed());
      EXPECT_LE(relativeError(gradientOverOutputs(perLayer, stream), expected), 1e-6) << "denseBlockAbove " << denseBlockAbove;
    }
    // The rule drops the paths from one layer's parameters through the layers above into later
    // steps: it is not RTRL (the comparison above could fail).
    RTRL<Stack<double>> rtrl(c.stack);
    EXPECT_GT(relativeError(gradientOverOutputs(rtrl, stream), expected), 1e-3);
  }
}

TEST(SnApPerLayer, SnApNInsideEachLayerIsTheMaskedPerLayerRule) {
  // The per-layer rule with each layer's influence kept on R_n of its own graph (breadth-first on
  // the finite-difference structure inside the layer): SnAp-n per layer, n = 1 and 2.
  std::uint64_t seed = 70;
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    const Vector<double> theta = c.stack.parameters();
    const Structure structure = structureOf(c.model, theta, seed++);
    const OutputStream stream(3, c.stack.outputSize(), c.stack.stateSize(), seed++, kSteps);
    for (int n : {1, 2}) {
      SCOPED_TRACE(::testing::Message() << "SnAp-" << n);
      std::vector<std::set<Index>> rows;
      for (Index j = 0; j < c.stack.parameterCount(); ++j) rows.push_back(reach(c.model, structure, j, n, true));
      const auto keep = [&](std::size_t l, Index row, Index j) {
        return rows[static_cast<std::size_t>(c.model.parameterOffset[l] + j)].count(c.model.stateOffset[l] + row) > 0;
      };
      const Vector<double> expected = perLayerGradient(c.model, theta, stream, false, keep);
      SnAp<Stack<double>> perLayer(c.stack, {.n = n, .perLayer = true});
      EXPECT_LE(relativeError(gradientOverOutputs(perLayer, stream), expected), 1e-6);
    }
  }
}

template <class C>
void expectPerLayerIsJoint(const C& cell, int n, std::uint64_t seed) {
  const OutputStream stream(cell.inputSize(), cell.outputSize(), cell.stateSize(), seed, kSteps);
  SnAp<C> joint(cell, {.n = n}), perLayer(cell, {.n = n, .perLayer = true});
  const Vector<double> gradientJoint = gradientOverOutputs(joint, stream);
  ASSERT_GT(gradientJoint.norm(), 0.0);
  EXPECT_TRUE(gradientOverOutputs(perLayer, stream) == gradientJoint);
  EXPECT_EQ(perLayer.pattern().keptEntries(), joint.pattern().keptEntries());
  for (Index row = 0; row < cell.stateSize(); ++row)
    for (Index j = 0; j < cell.parameterCount(); ++j) ASSERT_EQ(perLayer.influence(row, j), joint.influence(row, j));
}

TEST(SnApPerLayer, OnASingleCellIsTheJointModeBitForBit) {
  const GRU<double> gru(3, 6, {.recurrentDensity = 0.4, .seed = 60});
  const LSTM<double> lstm(3, 5, {.recurrentDensity = 0.4, .seed = 61});
  const RNN<double> leaky(3, 6, {.recurrentDensity = 0.4, .seed = 62}, {.leak = 0.3});
  const LRU<double> lru(3, 5, {.activation = LRUActivation::Tanh, .seed = 63});
  for (int n : {1, 2, 3}) {
    SCOPED_TRACE(::testing::Message() << "SnAp-" << n);
    expectPerLayerIsJoint(gru, n, 64);
    expectPerLayerIsJoint(lstm, n, 65);
    expectPerLayerIsJoint(leaky, n, 66);
    expectPerLayerIsJoint(lru, n, 67);
    expectPerLayerIsJoint(Stack<double>(gru), n, 68);
    expectPerLayerIsJoint(Stack<double>(lru), n, 69);
  }
}

}  // namespace
}  // namespace snap::test
