// e-prop and RFLO (docs/math.md §8): EProp's gradient equals the trace recursion written with dense
// matrices, e_t = E_t e_{t−1} + I_t on each parameter's own unit rows, where E_t is D_t without
// any path through the recurrent weights (GRU: z on the diagonal; LSTM: ∂c'/∂c = f and
// ∂h'/∂c = o (1 − tanh² c') f; leaky RNN: 1 − α; LRU: the whole 2 × 2 block of λ), I_t from finite
// differences of the equations, and g = Σ_t e_tᵀ δ_t (plus the LRU's output-map terms). On the
// LRU every coupling is internal: EProp is RTRL. RFLO on a leaky RNN is
// p_t = (1 − α) p_{t−1} + α (1 − tanh²(a_t)) z_t, g = Σ_t p_tᵀ δ_t, written out here.

#include <gtest/gtest.h>

#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kSteps = 16;

/// EProp against the trace recursion (perLayerGradient with E_t), and against RTRL: equal when
/// every coupling of the cell is internal, different otherwise.
template <class C>
void expectEPropIsTheTrace(const C& cell, const ReferenceModel& model, std::uint64_t seed, bool allInternal) {
  const OutputStream stream(cell.inputSize(), cell.outputSize(), cell.stateSize(), seed, kSteps);
  const Vector<double> expected = perLayerGradient(model, cell.parameters(), stream, true);
  ASSERT_GT(expected.norm(), 0.0);
  for (double denseBlockAbove : {0.0, 0.5, 2.0}) {
    EProp<C> eprop(cell, {.denseBlockAbove = denseBlockAbove});
    EXPECT_LE(relativeError(gradientOverOutputs(eprop, stream), expected), 1e-6) << "denseBlockAbove " << denseBlockAbove;
  }
  RTRL<C> rtrl(cell);
  EProp<C> eprop(cell);
  const Vector<double> exact = gradientOverOutputs(rtrl, stream), traced = gradientOverOutputs(eprop, stream);
  if (allInternal) {
    EXPECT_LE(relativeError(traced, exact), 1e-12);
  } else {
    EXPECT_GT(relativeError(traced, exact), 1e-3);
  }
}

TEST(EProp, GatedCellsAreTheirTraces) {
  std::uint64_t seed = 1;
  for (double density : {1.0, 0.4}) {
    SCOPED_TRACE(::testing::Message() << "recurrent density " << density);
    const CellOptions options{.inputDensity = 0.7, .recurrentDensity = density, .seed = seed++};
    const GRU<double> gru(3, 6, options);
    const LSTM<double> lstm(3, 5, options);
    const RNN<double> leaky(3, 6, options, {.leak = 0.3});
    {
      SCOPED_TRACE("GRU");
      expectEPropIsTheTrace(gru, ReferenceModel({referenceLayer(gru)}), seed++, false);
    }
    {
      SCOPED_TRACE("LSTM");
      expectEPropIsTheTrace(lstm, ReferenceModel({referenceLayer(lstm)}), seed++, false);
    }
    {
      SCOPED_TRACE("leaky RNN");
      expectEPropIsTheTrace(leaky, ReferenceModel({referenceLayer(leaky)}), seed++, false);
    }
  }
}

TEST(EProp, TheLRUIsRtrl) {
  std::uint64_t seed = 20;
  for (bool skip : {true, false})
    for (LRUActivation activation : {LRUActivation::None, LRUActivation::GELU}) {
      SCOPED_TRACE(::testing::Message() << (skip ? "skip" : "no skip") << ", activation " << static_cast<int>(activation));
      const LRU<double> cell(3, 5, {.outputSize = skip ? 0 : 2, .inputDensity = 0.6, .skip = skip, .activation = activation,
                                    .seed = seed++});
      expectEPropIsTheTrace(cell, ReferenceModel({referenceLayer(cell)}), seed++, true);
    }
}

TEST(EProp, KeepsEachParametersUnitRows) {
  // GRU and leaky RNN: one row per parameter (p values); LSTM: h_u and c_u for the i, f, g
  // gates, h_u alone for o (c' does not depend on o, and h_u reaches nothing inside the unit);
  // LRU: Re h_u and Im h_u for B, ν, θ and nothing for the output map.
  const GRU<double> gru(3, 5, {.recurrentDensity = 0.5, .seed = 30});
  const LSTM<double> lstm(3, 5, {.recurrentDensity = 0.5, .seed = 31});
  const LRU<double> lru(3, 5, {.inputDensity = 0.6, .seed = 32});
  EProp<GRU<double>> onGru(gru);
  EProp<LSTM<double>> onLstm(lstm);
  EProp<LRU<double>> onLru(lru);
  const ReferenceLayer gruLayer = referenceLayer(gru), lstmLayer = referenceLayer(lstm), lruLayer = referenceLayer(lru);
  for (Index j = 0; j < gru.parameterCount(); ++j) {
    const auto rows = onGru.pattern().rowsOf(j);
    EXPECT_EQ(std::vector<Index>(rows.begin(), rows.end()), std::vector<Index>{gruLayer.unitOf[static_cast<std::size_t>(j)]});
  }
  for (Index j = 0; j < lstm.parameterCount(); ++j) {
    const auto rows = onLstm.pattern().rowsOf(j);
    const Index u = lstmLayer.unitOf[static_cast<std::size_t>(j)];
    const bool outputGate = lstm.gateOf(j) == 3;
    const std::vector<Index> expected = outputGate ? std::vector<Index>{u} : std::vector<Index>{u, 5 + u};
    EXPECT_EQ(std::vector<Index>(rows.begin(), rows.end()), expected) << "parameter " << j;
  }
  for (Index j = 0; j < lru.parameterCount(); ++j) {
    const auto rows = onLru.pattern().rowsOf(j);
    EXPECT_EQ(std::vector<Index>(rows.begin(), rows.end()), lruLayer.rowsOfUnit(lruLayer.unitOf[static_cast<std::size_t>(j)]))
        << "parameter " << j;
  }
  EXPECT_EQ(onGru.pattern().keptEntries(), gru.parameterCount());
  EXPECT_TRUE(onGru.pattern().isClosed());
}

TEST(EProp, OnAStackIsTheTracePerLayer) {
  // Each layer's traces follow its own internal couplings; the loss gradient reaches the lower
  // layers through the upper layers' same-step Jacobians (the per-layer rule with E_t).
  std::uint64_t seed = 40;
  for (const StackCase& c : mixedStacks()) {
    SCOPED_TRACE(c.name);
    const OutputStream stream(3, c.stack.outputSize(), c.stack.stateSize(), seed++, kSteps);
    const Vector<double> expected = perLayerGradient(c.model, c.stack.parameters(), stream, true);
    EProp<Stack<double>> eprop(c.stack);
    EXPECT_LE(relativeError(gradientOverOutputs(eprop, stream), expected), 1e-6);
  }
}

/// RFLO's traces written out (Murray 2019): for the parameter of unit u with source z (x_c for
/// weight_ih[r, c], h_{t−1, c} for weight_hh[r, c], 1 for a bias; r = u),
/// p_t = (1 − α) p_{t−1} + α (1 − tanh²(a_u)) z, a = W_ih x + b_ih + W_hh h + b_hh, g += p_t δ_t[u].
Vector<double> rfloGradient(const RNN<double>& cell, const OutputStream& stream) {
  const Index H = cell.hiddenSize(), m = cell.inputSize();
  const double alpha = cell.leak();
  struct Entry {
    Index unit;
    int source;  // 0: x_c, 1: h_c, 2: 1
    Index column;
  };
  std::vector<Entry> entries;
  for (Index r = 0; r < H; ++r)
    for (Index c = 0; c < m; ++c)
      if (cell.mask_ih()(r, c) != 0) entries.push_back({r, 0, c});
  for (Index r = 0; r < H; ++r)
    for (Index c = 0; c < H; ++c)
      if (cell.mask_hh()(r, c) != 0) entries.push_back({r, 1, c});
  for (int bias = 0; bias < 2; ++bias)
    for (Index r = 0; r < H; ++r) entries.push_back({r, 2, 0});
  std::vector<double> trace(entries.size(), 0.0), gradient(entries.size(), 0.0);
  Vector<double> h = stream.initial;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    const Vector<double>& x = stream.inputs[t];
    Vector<double> activation(H), next(H);
    for (Index u = 0; u < H; ++u) {
      double a = cell.bias_ih()[u] + cell.bias_hh()[u];
      for (Index c = 0; c < m; ++c) a += cell.weight_ih()(u, c) * x[c];
      for (Index c = 0; c < H; ++c) a += cell.weight_hh()(u, c) * h[c];
      activation[u] = std::tanh(a);
      next[u] = (1 - alpha) * h[u] + alpha * activation[u];
    }
    for (std::size_t j = 0; j < entries.size(); ++j) {
      const Entry& e = entries[j];
      const double z = e.source == 0 ? x[e.column] : e.source == 1 ? h[e.column] : 1.0;
      trace[j] = (1 - alpha) * trace[j] + alpha * (1 - activation[e.unit] * activation[e.unit]) * z;
      gradient[j] += trace[j] * stream.deltas[t][e.unit];
    }
    h = next;
  }
  return Eigen::Map<const Vector<double>>(gradient.data(), static_cast<Index>(gradient.size()));
}

TEST(RFLO, IsTheLeakyTraceWrittenOut) {
  std::uint64_t seed = 50;
  for (double leak : {0.3, 0.1, 1.0})
    for (double density : {1.0, 0.4}) {
      SCOPED_TRACE(::testing::Message() << "leak " << leak << ", recurrent density " << density);
      const RNN<double> cell(3, 6, {.inputDensity = 0.7, .recurrentDensity = density, .seed = seed++}, {.leak = leak});
      const OutputStream stream(3, 6, 6, seed++, kSteps);
      RFLO<RNN<double>> rflo(cell);
      EProp<RNN<double>> eprop(cell);
      const Vector<double> expected = rfloGradient(cell, stream);
      ASSERT_EQ(expected.size(), cell.parameterCount());
      ASSERT_GT(expected.norm(), 0.0);
      const Vector<double> gradient = gradientOverOutputs(rflo, stream);
      EXPECT_LE(relativeError(gradient, expected), 1e-12);
      EXPECT_TRUE(gradientOverOutputs(eprop, stream) == gradient) << "RFLO is e-prop's trace of this cell";
    }
}

}  // namespace
}  // namespace snap::test
