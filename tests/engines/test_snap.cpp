// docs/math.md §4: the SnAp-n pattern is exactly the structural n-step reachability, SnAp-n is exactly
// the masked recursion Ĵ ← M_n ⊙ (I_t + D_t Ĵ), it becomes RTRL once the pattern is full, and
// its storage is the pattern's values plus their indices.

#include <gtest/gtest.h>

#include <set>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

/// The test's own reading of docs/math.md §2 for each cell: home rows and the edges a → b of D.
struct Structure {
  Index gates, blocks;
  /// Home rows of a parameter of gate g and unit u.
  std::vector<Index> home(Index g, Index u, Index hidden) const {
    if (blocks == 1) return {u};
    return g == 3 ? std::vector<Index>{u} : std::vector<Index>{u, hidden + u};
  }
};
template <class C>
Structure structureOf();
template <>
Structure structureOf<RNN<double>>() { return {1, 1}; }
template <>
Structure structureOf<GRU<double>>() { return {3, 1}; }
template <>
Structure structureOf<LSTM<double>>() { return {4, 2}; }

/// Boolean adjacency A[b][a] (edge a → b) built from the masks by the rules of docs/math.md §2.
template <class C>
std::vector<std::vector<bool>> adjacency(const C& cell) {
  const Structure structure = structureOf<C>();
  const Index H = cell.hiddenSize(), k = cell.stateSize();
  std::vector<std::vector<bool>> edge(static_cast<std::size_t>(k), std::vector<bool>(static_cast<std::size_t>(k)));
  auto set = [&](Index b, Index a) { edge[static_cast<std::size_t>(b)][static_cast<std::size_t>(a)] = true; };
  for (Index b = 0; b < H; ++b)
    for (Index a = 0; a < H; ++a)
      for (Index g = 0; g < structure.gates; ++g) {
        if (cell.mask_hh()(g * H + b, a) == 0) continue;
        set(b, a);                                  // h_b ← h_a through any gate
        if (structure.blocks == 2 && g != 3) set(H + b, a);  // c_b ← h_a through i, f, g
      }
  for (Index b = 0; b < H; ++b) {
    if (std::is_same_v<C, GRU<double>>) set(b, b);  // z ⊙ h
    if (structure.blocks == 2) {
      set(b, H + b);      // h_b ← c_b
      set(H + b, H + b);  // c_b ← c_b
    }
  }
  return edge;
}

/// M_n as a k × p 0/1 matrix, by repeated boolean products with the adjacency.
template <class C>
Matrix<double> referenceMask(const C& cell, int n) {
  const Structure structure = structureOf<C>();
  const auto edge = adjacency(cell);
  const Index k = cell.stateSize(), p = cell.parameterCount(), H = cell.hiddenSize();
  Matrix<double> mask = Matrix<double>::Zero(k, p);
  for (Index j = 0; j < p; ++j)
    for (Index row : structure.home(cell.gateOf(j), cell.unitOf(j), H)) mask(row, j) = 1;
  for (int level = 1; level < n; ++level) {
    Matrix<double> grown = mask;
    for (Index j = 0; j < p; ++j)
      for (Index a = 0; a < k; ++a)
        if (mask(a, j) != 0)
          for (Index b = 0; b < k; ++b)
            if (edge[static_cast<std::size_t>(b)][static_cast<std::size_t>(a)]) grown(b, j) = 1;
    mask = grown;
  }
  return mask;
}

template <class C>
class SnApEngine : public ::testing::Test {};
using DoubleCells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(SnApEngine, DoubleCells);

constexpr Index kInputs = 3;
constexpr Index kHidden = 7;
constexpr Index kSteps = 24;

TYPED_TEST(SnApEngine, BecomesRtrlOnceThePatternIsFull) {
  for (double density : {0.25, 0.1}) {
    TypeParam cell(kInputs, kHidden, {.recurrentDensity = density, .seed = 71});
    const Stream stream(kInputs, cell.stateSize(), 72, kSteps, 2.0, 5);
    RTRL<TypeParam> rtrl(cell);
    const Vector<double> expected = gradientOver(rtrl, stream);
    // n = k is certainly past the graph's diameter: the pattern has stopped growing and holds
    // every entry RTRL's influence can reach (a sparse graph need not reach all of them).
    SnAp<TypeParam> snap(cell, {.n = static_cast<int>(cell.stateSize())});
    ASSERT_EQ(snap.pattern().keptEntries(), SnApPattern::of(cell, static_cast<int>(cell.stateSize()) + 5).keptEntries());
    EXPECT_LE(relativeError(gradientOver(snap, stream), expected), 1e-12) << "density " << density;
  }
  TypeParam dense(kInputs, kHidden, {.seed = 73});
  const Stream stream(kInputs, dense.stateSize(), 74, kSteps, 2.0, 5);
  RTRL<TypeParam> rtrl(dense);
  const Vector<double> expected = gradientOver(rtrl, stream);
  for (double denseBlockAbove : {0.15, 2.0}) {
    SnAp<TypeParam> snap2(dense, {.n = 2, .denseBlockAbove = denseBlockAbove});
    ASSERT_TRUE(snap2.pattern().isFull());
    EXPECT_EQ(snap2.pattern().groupCount(), 1);  // one block: the whole influence matrix
    EXPECT_LE(relativeError(gradientOver(snap2, stream), expected), 1e-12);
  }
}

TYPED_TEST(SnApEngine, IsExactlyTheMaskedRecursion) {
  for (int n : {1, 2, 3}) {
    for (double density : {0.25, 0.1}) {
      SCOPED_TRACE(::testing::Message() << "SnAp-" << n << ", recurrent density " << density);
      TypeParam cell(kInputs, kHidden, {.inputDensity = 0.7, .recurrentDensity = density, .seed = 81});
      const Stream stream(kInputs, cell.stateSize(), 82, kSteps, 2.0, 5);
      const Matrix<double> mask = referenceMask(cell, n);
      // Dense reference: J ← M_n ⊙ (I_t + D_t J), g = Σ J_tᵀ δ_t, with D_t and I_t from the cell.
      Matrix<double> influence = Matrix<double>::Zero(cell.stateSize(), cell.parameterCount());
      Vector<double> expected = Vector<double>::Zero(cell.parameterCount()), s = stream.initial;
      for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
        LibraryStep<TypeParam> step(cell, stream.inputs[t], s);
        influence = mask.cwiseProduct(denseImmediate(cell, step.cache, step.z) +
                                      denseDynamics(cell, step.cache) * influence);
        expected += influence.transpose() * stream.deltas[t];
        s = step.next;
      }
      // Every block kernel: dense products for all blocks above 4 rows, the default choice,
      // and sparse rows for all.
      for (double denseBlockAbove : {0.0, 0.15, 2.0}) {
        SCOPED_TRACE(::testing::Message() << "denseBlockAbove " << denseBlockAbove);
        SnAp<TypeParam> snap(cell, {.n = n, .denseBlockAbove = denseBlockAbove});
        EXPECT_EQ(snap.pattern().keptEntries(), static_cast<Index>(mask.sum()));
        EXPECT_LE(relativeError(gradientOver(snap, stream), expected), 1e-10);
        Matrix<double> stored(cell.stateSize(), cell.parameterCount());
        for (Index row = 0; row < cell.stateSize(); ++row)
          for (Index j = 0; j < cell.parameterCount(); ++j) stored(row, j) = snap.influence(row, j);
        EXPECT_LE(relativeError(stored, influence), 1e-12);
        EXPECT_TRUE(stored.cwiseProduct(Matrix<double>::Ones(mask.rows(), mask.cols()) - mask).isZero(0.0));
      }
    }
  }
}

TYPED_TEST(SnApEngine, PatternIsStructuralNotNumeric) {
  // Zero weights, zero inputs or saturated units must not drop an entry: the pattern depends
  // on the masks only.
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 91});
  TypeParam zeroed = cell;
  CellTensors<double> zeros = cell.tensors();
  zeros.weight_ih.setZero();
  zeros.weight_hh.setZero();
  zeros.bias_ih.setZero();
  zeros.bias_hh.setZero();
  zeroed.setTensors(zeros);
  TypeParam saturated = scaledCell<TypeParam>(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 91}, 50.0);
  for (int n : {1, 2, 3}) {
    const SnApPattern reference = SnApPattern::of(cell, n);
    for (const TypeParam* other : {&zeroed, &saturated}) {
      const SnApPattern pattern = SnApPattern::of(*other, n);
      ASSERT_EQ(pattern.groupCount(), reference.groupCount());
      for (Index g = 0; g < pattern.groupCount(); ++g) {
        EXPECT_EQ(pattern.group(g).rows, reference.group(g).rows);
        EXPECT_EQ(pattern.group(g).columns, reference.group(g).columns);
      }
    }
    SnAp<TypeParam> engine(saturated, {.n = n});
    engine.step(Vector<double>::Zero(kInputs));
    EXPECT_EQ(engine.valueCount(), reference.keptEntries());
  }
}

TYPED_TEST(SnApEngine, StorageIsThePatternPlusItsIndices) {
  TypeParam cell(kInputs, kHidden, {.recurrentDensity = 0.25, .seed = 101});
  for (int n : {1, 2, 3}) {
    SnAp<TypeParam> snap(cell, {.n = n});
    EXPECT_EQ(snap.valueCount(), snap.pattern().keptEntries());
    EXPECT_EQ(snap.bytes(), static_cast<std::size_t>(snap.valueCount()) * sizeof(double) + snap.indexBytes());
  }
  // SnAp-1 keeps p values: one home row per column, two for the LSTM's i, f and g gates.
  SnAp<TypeParam> snap1(cell, {.n = 1});
  Index expected = 0;
  for (Index j = 0; j < cell.parameterCount(); ++j)
    expected += std::is_same_v<TypeParam, LSTM<double>> && cell.gateOf(j) != 3 ? 2 : 1;
  EXPECT_EQ(snap1.valueCount(), expected);
  if (!std::is_same_v<TypeParam, LSTM<double>>) {
    EXPECT_EQ(snap1.valueCount(), cell.parameterCount());
  }
}

// --- hand-built masks: the kept rows of a parameter of unit u are what docs/math.md §4 says ---

enum class Topology { Chain, Ring, Empty, Dense };

/// mask_hh with the same H × H pattern in every gate block: chain a → a+1, ring a → a+1 mod H.
template <class C>
C handBuilt(Topology topology) {
  C cell(2, kHidden, {.seed = 5});
  const Index H = kHidden, gates = cell.structure().gates;
  RowMatrix<double> block = RowMatrix<double>::Zero(H, H);
  for (Index a = 0; a < H; ++a) {
    if (topology == Topology::Chain && a + 1 < H) block(a + 1, a) = 1;
    if (topology == Topology::Ring) block((a + 1) % H, a) = 1;
  }
  if (topology == Topology::Dense) block.setOnes();
  RowMatrix<double> maskHh(gates * H, H);
  for (Index g = 0; g < gates; ++g) maskHh.middleRows(g * H, H) = block;
  cell.setMasks(RowMatrix<double>::Ones(gates * H, 2), maskHh);
  return cell;
}

/// The rows docs/math.md §4 keeps for a parameter of gate `gate`, unit u, after n steps, written out
/// case by case: hidden rows u..u+n−1 along the chain (wrapping on the ring), the LSTM's c rows
/// beside them, and the output gate's missing c_u.
std::set<Index> expectedRows(Topology topology, bool lstm, bool outputGate, Index u, int n) {
  const Index H = kHidden;
  std::set<Index> rows;
  if (topology == Topology::Dense) {
    if (n >= 2) {
      for (Index r = 0; r < (lstm ? 2 * H : H); ++r) rows.insert(r);
      return rows;
    }
  }
  const Index reach = topology == Topology::Empty || topology == Topology::Dense ? 0 : n - 1;
  for (Index step = 0; step <= reach; ++step) {
    if (topology == Topology::Chain && u + step >= H) break;
    const Index unit = (u + step) % H;
    rows.insert(unit);
    if (lstm && !(outputGate && step == 0)) rows.insert(H + unit);
  }
  return rows;
}

TYPED_TEST(SnApEngine, PatternOnHandBuiltMasks) {
  const bool lstm = std::is_same_v<TypeParam, LSTM<double>>;
  for (Topology topology : {Topology::Chain, Topology::Ring, Topology::Empty, Topology::Dense}) {
    const TypeParam cell = handBuilt<TypeParam>(topology);
    for (int n : {1, 2, 3}) {
      const SnApPattern pattern = SnApPattern::of(cell, n);
      for (Index j = 0; j < cell.parameterCount(); ++j) {
        const auto rows = pattern.rowsOf(j);
        const std::set<Index> kept(rows.begin(), rows.end());
        const bool outputGate = lstm && cell.gateOf(j) == 3;
        ASSERT_EQ(kept, expectedRows(topology, lstm, outputGate, cell.unitOf(j), n))
            << "topology " << static_cast<int>(topology) << ", n " << n << ", parameter " << j << " (unit "
            << cell.unitOf(j) << ", gate " << cell.gateOf(j) << ")";
      }
    }
  }
}

TYPED_TEST(SnApEngine, PatternGrowsWithNAndStopsAtTheDiameter) {
  const TypeParam chain = handBuilt<TypeParam>(Topology::Chain);
  Index previous = 0;
  for (int n = 1; n <= kHidden + 1; ++n) {
    const Index kept = SnApPattern::of(chain, n).keptEntries();
    EXPECT_GE(kept, previous);
    if (n > kHidden) {
      EXPECT_EQ(kept, previous) << "the chain's diameter is H − 1";
    }
    previous = kept;
  }
}

TEST(SnApOptions, RejectsNBelowOne) {
  GRU<double> cell(2, 3);
  EXPECT_THROW(SnAp<GRU<double>>(cell, {.n = 0}), ValueError);
}

}  // namespace
}  // namespace snap::test
