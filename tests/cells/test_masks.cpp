// docs/math.md §1–§2: random masks keep exactly round(d · rows · cols) positions per gate block, shared or
// per gate, reproducibly from the seed; initial weights follow PyTorch's ±1/√H and are 0 where
// masked; biases are never masked; user masks rebuild θ and the dynamics graph.

#include <gtest/gtest.h>

#include <cmath>
#include <type_traits>
#include <utility>
#include <vector>

#include "../support/reference.hpp"

namespace snap::test {
namespace {

template <class C>
class Masks : public ::testing::Test {};
using DoubleCells = ::testing::Types<RNN<double>, GRU<double>, LSTM<double>>;
TYPED_TEST_SUITE(Masks, DoubleCells);

constexpr Index kInputs = 5;
constexpr Index kHidden = 8;

/// round(d · n) as docs/math.md §1 states it (halves away from zero).
Index keptPositions(double density, Index blockSize) {
  return static_cast<Index>(std::round(density * static_cast<double>(blockSize)));
}

/// Gate block g (H rows) of a G·H-row matrix.
auto block(const RowMatrix<double>& matrix, Index gate, Index hidden) {
  return matrix.middleRows(gate * hidden, hidden);
}

/// Pairs of (input density, recurrent density): dense, one side dense, 6.5 → 7 rounding
/// (0.1015625 · 64), and densities so small that no position is kept.
const std::vector<std::pair<double, double>> kDensities = {
    {1.0, 1.0}, {1.0, 0.5}, {0.5, 1.0}, {0.3, 0.1}, {0.75, 0.1015625}, {0.05, 0.25}, {0.01, 0.005}};

/// Every gate block of `mask` (G·H × cols) keeps round(d · H · cols) ones, and nothing but 0/1.
void expectBlockCounts(const RowMatrix<double>& mask, Index gates, Index hidden, double density) {
  ASSERT_EQ(mask.rows(), gates * hidden);
  EXPECT_TRUE((mask.array() == 0.0 || mask.array() == 1.0).all()) << "a mask entry is not 0 or 1";
  const Index expected = keptPositions(density, hidden * mask.cols());
  for (Index g = 0; g < gates; ++g)
    EXPECT_EQ(static_cast<Index>(block(mask, g, hidden).sum()), expected)
        << "gate block " << g << ", density " << density;
}

/// The dynamics graph docs/math.md §2 prescribes for the cell's current mask_hh, as a dense 0/1 matrix.
template <class C>
Matrix<int> expectedGraph(const C& cell) {
  const Index H = cell.hiddenSize();
  const RowMatrix<double>& mask = cell.mask_hh();
  auto inAnyBlock = [&](std::initializer_list<Index> gates, Index b, Index a) {
    for (Index g : gates)
      if (mask(g * H + b, a) != 0.0) return 1;
    return 0;
  };
  Matrix<int> graph = Matrix<int>::Zero(cell.stateSize(), cell.stateSize());
  for (Index b = 0; b < H; ++b)
    for (Index a = 0; a < H; ++a) {
      if constexpr (std::is_same_v<C, RNN<double>>) {
        graph(b, a) = inAnyBlock({0}, b, a);
      } else if constexpr (std::is_same_v<C, GRU<double>>) {
        graph(b, a) = inAnyBlock({0, 1, 2}, b, a) | static_cast<int>(a == b);  // z ⊙ h
      } else {
        graph(b, a) = inAnyBlock({0, 1, 2, 3}, b, a);      // h_b ← h_a: any gate
        graph(H + b, a) = inAnyBlock({0, 1, 2}, b, a);     // c_b ← h_a: i, f, g (not o)
        graph(b, H + b) = 1;                               // h_b ← c_b
        graph(H + b, H + b) = 1;                           // c_b ← c_b
      }
    }
  return graph;
}

/// The cell's dynamicsGraph() has exactly the edges of expectedGraph().
template <class C>
void expectGraphFollowsMask(const C& cell) {
  const Matrix<int> expected = expectedGraph(cell);
  const SparsityPattern& graph = cell.dynamicsGraph();
  ASSERT_EQ(graph.rows(), cell.stateSize());
  ASSERT_EQ(graph.cols(), cell.stateSize());
  EXPECT_EQ(graph.nonZeros(), expected.sum());
  for (Index b = 0; b < expected.rows(); ++b)
    for (Index a = 0; a < expected.cols(); ++a)
      EXPECT_EQ(graph.contains(b, a), expected(b, a) != 0) << "edge " << a << " -> " << b;
}

/// p = ones of both masks + the 2·G·H biases.
template <class C>
Index expectedParameterCount(const C& cell) {
  return static_cast<Index>(cell.mask_ih().sum() + cell.mask_hh().sum()) + 2 * cell.gateRows();
}

/// Masked weights are exactly zero.
template <class C>
void expectZeroWhereMasked(const C& cell) {
  EXPECT_TRUE((cell.weight_ih().array() * (1.0 - cell.mask_ih().array())).isZero(0.0));
  EXPECT_TRUE((cell.weight_hh().array() * (1.0 - cell.mask_hh().array())).isZero(0.0));
}

TEST(RandomMask, KeepsRoundedCountPerGateBlock) {
  Random random(3);
  for (MaskSharing sharing : {MaskSharing::PerGate, MaskSharing::Shared})
    for (double density : {1.0, 0.9, 0.5, 0.3, 0.1, 0.05, 1e-3})
      for (Index cols : {1, 7, 13}) {
        const RowMatrix<double> mask = randomMask<double>(3, 6, cols, density, sharing, random);
        ASSERT_EQ(mask.cols(), cols);
        expectBlockCounts(mask, 3, 6, density);
      }
}

TEST(RandomMask, SharedBlocksAreIdenticalAndPerGateBlocksDiffer) {
  Random random(4);
  for (double density : {0.5, 0.2}) {
    const RowMatrix<double> shared = randomMask<double>(4, 8, 9, density, MaskSharing::Shared, random);
    const RowMatrix<double> perGate = randomMask<double>(4, 8, 9, density, MaskSharing::PerGate, random);
    for (Index g = 1; g < 4; ++g) EXPECT_EQ(block(shared, g, 8), block(shared, 0, 8)) << "shared block " << g;
    for (Index g = 0; g < 4; ++g)
      for (Index other = g + 1; other < 4; ++other)
        EXPECT_NE(block(perGate, g, 8), block(perGate, other, 8)) << "per-gate blocks " << g << " and " << other;
  }
}

TEST(RandomMask, SameGeneratorStateGivesTheSameMask) {
  Random first(9), second(9), other(10);
  const RowMatrix<double> a = randomMask<double>(3, 8, 8, 0.3, MaskSharing::PerGate, first);
  EXPECT_EQ(a, randomMask<double>(3, 8, 8, 0.3, MaskSharing::PerGate, second));
  EXPECT_NE(a, randomMask<double>(3, 8, 8, 0.3, MaskSharing::PerGate, other));
}

TYPED_TEST(Masks, CellMasksKeepRoundedCountPerGateBlock) {
  const int gates = TypeParam::cellStructure().gates;
  for (MaskSharing sharing : {MaskSharing::PerGate, MaskSharing::Shared})
    for (auto [input, recurrent] : kDensities) {
      SCOPED_TRACE(::testing::Message() << "input density " << input << ", recurrent density " << recurrent
                                        << (sharing == MaskSharing::Shared ? ", shared" : ", per gate"));
      TypeParam cell(kInputs, kHidden,
                     {.inputDensity = input, .recurrentDensity = recurrent, .maskSharing = sharing, .seed = 17});
      ASSERT_EQ(cell.mask_ih().rows(), gates * kHidden);
      ASSERT_EQ(cell.mask_ih().cols(), kInputs);
      ASSERT_EQ(cell.mask_hh().cols(), kHidden);
      expectBlockCounts(cell.mask_ih(), gates, kHidden, input);
      expectBlockCounts(cell.mask_hh(), gates, kHidden, recurrent);
      EXPECT_EQ(cell.parameterCount(), expectedParameterCount(cell));
      expectGraphFollowsMask(cell);
    }
}

TYPED_TEST(Masks, SharingGivesIdenticalBlocksPerGateGivesDifferentOnes) {
  const int gates = TypeParam::cellStructure().gates;
  const CellOptions options{.inputDensity = 0.4, .recurrentDensity = 0.3, .seed = 5};
  CellOptions sharedOptions = options;
  sharedOptions.maskSharing = MaskSharing::Shared;
  const TypeParam perGate(kInputs, kHidden, options), shared(kInputs, kHidden, sharedOptions);
  for (const RowMatrix<double>* mask : {&shared.mask_ih(), &shared.mask_hh()})
    for (Index g = 1; g < gates; ++g) EXPECT_EQ(block(*mask, g, kHidden), block(*mask, 0, kHidden)) << "block " << g;
  for (const RowMatrix<double>* mask : {&perGate.mask_ih(), &perGate.mask_hh()})
    for (Index g = 0; g < gates; ++g)
      for (Index other = g + 1; other < gates; ++other)
        EXPECT_NE(block(*mask, g, kHidden), block(*mask, other, kHidden)) << "blocks " << g << " and " << other;
  // Shared masks keep the recurrent graph at the mask's own density (docs/math.md §1).
  if (gates > 1) {
    EXPECT_LT(shared.dynamicsGraph().nonZeros(), perGate.dynamicsGraph().nonZeros());
  }
}

TYPED_TEST(Masks, SeedDeterminesMasksAndWeights) {
  for (MaskSharing sharing : {MaskSharing::PerGate, MaskSharing::Shared}) {
    const CellOptions options{.inputDensity = 0.5, .recurrentDensity = 0.25, .maskSharing = sharing, .seed = 123};
    CellOptions otherSeed = options;
    otherSeed.seed = 124;
    const TypeParam a(kInputs, kHidden, options), b(kInputs, kHidden, options), c(kInputs, kHidden, otherSeed);
    EXPECT_EQ(a.mask_ih(), b.mask_ih());
    EXPECT_EQ(a.mask_hh(), b.mask_hh());
    EXPECT_EQ(a.weight_ih(), b.weight_ih());
    EXPECT_EQ(a.weight_hh(), b.weight_hh());
    EXPECT_EQ(a.bias_ih(), b.bias_ih());
    EXPECT_EQ(a.bias_hh(), b.bias_hh());
    EXPECT_EQ(a.dynamicsGraph(), b.dynamicsGraph());
    EXPECT_NE(a.mask_ih(), c.mask_ih());
    EXPECT_NE(a.mask_hh(), c.mask_hh());
    EXPECT_NE(a.weight_ih(), c.weight_ih());
    EXPECT_NE(a.weight_hh(), c.weight_hh());
    EXPECT_NE(a.bias_ih(), c.bias_ih());
    EXPECT_NE(a.bias_hh(), c.bias_hh());
  }
  // Dense masks do not depend on the seed, the weights still do.
  const TypeParam dense(kInputs, kHidden, {.seed = 1}), denseOther(kInputs, kHidden, {.seed = 2});
  EXPECT_EQ(dense.mask_hh(), denseOther.mask_hh());
  EXPECT_NE(dense.weight_hh(), denseOther.weight_hh());
}

TYPED_TEST(Masks, InitialWeightsFollowPyTorchAndAreZeroWhereMasked) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(kHidden));
  for (auto [input, recurrent] : kDensities) {
    SCOPED_TRACE(::testing::Message() << "input density " << input << ", recurrent density " << recurrent);
    const TypeParam cell(kInputs, kHidden, {.inputDensity = input, .recurrentDensity = recurrent, .seed = 29});
    for (const auto& tensor : {cell.weight_ih(), cell.weight_hh()}) EXPECT_LE(tensor.cwiseAbs().maxCoeff(), bound);
    for (const auto& bias : {cell.bias_ih(), cell.bias_hh()}) EXPECT_LE(bias.cwiseAbs().maxCoeff(), bound);
    expectZeroWhereMasked(cell);
    // Unmasked weights are drawn, not left at zero.
    EXPECT_TRUE((cell.mask_ih().array() == 0.0 || cell.weight_ih().array() != 0.0).all());
    EXPECT_TRUE((cell.mask_hh().array() == 0.0 || cell.weight_hh().array() != 0.0).all());
  }
  // Dense draws fill the interval: both ends are approached.
  const TypeParam dense(kInputs, kHidden, {.seed = 30});
  EXPECT_GT(dense.weight_hh().maxCoeff(), 0.9 * bound);
  EXPECT_LT(dense.weight_hh().minCoeff(), -0.9 * bound);
}

TYPED_TEST(Masks, BiasesAreNeverMasked) {
  // 0.005 · 40 and 0.005 · 64 round to no kept weight at all: θ is the biases alone.
  TypeParam cell(kInputs, kHidden, {.inputDensity = 0.005, .recurrentDensity = 0.005, .seed = 8});
  EXPECT_EQ(cell.mask_ih().sum(), 0.0);
  EXPECT_EQ(cell.mask_hh().sum(), 0.0);
  ASSERT_EQ(cell.parameterCount(), 2 * cell.gateRows());
  EXPECT_TRUE((cell.bias_ih().array() != 0.0).all());
  EXPECT_TRUE((cell.bias_hh().array() != 0.0).all());
  EXPECT_EQ(cell.layout().tensorOffset(2), 0);
  EXPECT_EQ(cell.layout().tensorOffset(3), cell.gateRows());

  // Every bias of a sparse cell is in θ, and setting θ moves all of them.
  TypeParam sparse(kInputs, kHidden, {.inputDensity = 0.3, .recurrentDensity = 0.1, .seed = 9});
  const Index p = sparse.parameterCount();
  sparse.setParameters(Vector<double>::LinSpaced(p, 1.0, static_cast<double>(p)));
  const Index rows = sparse.gateRows();
  EXPECT_EQ(sparse.bias_ih(), Vector<double>::LinSpaced(rows, static_cast<double>(p - 2 * rows + 1),
                                                         static_cast<double>(p - rows)));
  EXPECT_EQ(sparse.bias_hh(), Vector<double>::LinSpaced(rows, static_cast<double>(p - rows + 1),
                                                         static_cast<double>(p)));
  expectZeroWhereMasked(sparse);
}

TYPED_TEST(Masks, UserMasksRebuildParametersAndGraph) {
  TypeParam cell(kInputs, kHidden, {.seed = 41});
  const CellTensors<double> before = cell.tensors();
  const std::uint64_t versionBefore = cell.maskVersion();
  const Index rows = cell.gateRows();

  // A hand-made pattern: different per gate block, with full and empty rows and columns.
  RowMatrix<double> maskIh(rows, kInputs), maskHh(rows, kHidden);
  for (Index r = 0; r < rows; ++r) {
    for (Index c = 0; c < kInputs; ++c) maskIh(r, c) = (r * 3 + c * 5) % 4 == 0 ? 1.0 : 0.0;
    for (Index c = 0; c < kHidden; ++c) maskHh(r, c) = (r + 2 * c) % 5 == 0 || c == 3 ? 1.0 : 0.0;
  }
  maskHh.row(1).setOnes();
  maskHh.row(2).setZero();
  cell.setMasks(maskIh, maskHh);

  EXPECT_EQ(cell.mask_ih(), maskIh);
  EXPECT_EQ(cell.mask_hh(), maskHh);
  EXPECT_NE(cell.maskVersion(), versionBefore);
  EXPECT_EQ(cell.parameterCount(), static_cast<Index>(maskIh.sum() + maskHh.sum()) + 2 * rows);
  EXPECT_EQ(cell.parameterCount(), expectedParameterCount(cell));
  // Kept weights keep their values, newly masked ones are 0, biases are untouched.
  EXPECT_EQ(cell.weight_ih(), before.weight_ih.cwiseProduct(maskIh));
  EXPECT_EQ(cell.weight_hh(), before.weight_hh.cwiseProduct(maskHh));
  EXPECT_EQ(cell.bias_ih(), before.bias_ih);
  EXPECT_EQ(cell.bias_hh(), before.bias_hh);
  expectGraphFollowsMask(cell);

  // θ lists the kept weights row by row (weight_ih, then weight_hh), then both biases.
  std::vector<double> expectedTheta;
  for (const auto* weight : {&cell.weight_ih(), &cell.weight_hh()}) {
    const RowMatrix<double>& mask = weight == &cell.weight_ih() ? maskIh : maskHh;
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < mask.cols(); ++c)
        if (mask(r, c) != 0.0) expectedTheta.push_back((*weight)(r, c));
  }
  for (const auto* bias : {&cell.bias_ih(), &cell.bias_hh()})
    for (Index r = 0; r < rows; ++r) expectedTheta.push_back((*bias)[r]);
  const Vector<double> theta = cell.parameters();
  ASSERT_EQ(theta.size(), static_cast<Index>(expectedTheta.size()));
  for (Index j = 0; j < theta.size(); ++j)
    EXPECT_EQ(theta[j], expectedTheta[static_cast<std::size_t>(j)]) << "θ[" << j << "]";

  // Unmasking again: the newly unmasked weights start at 0, every mask change is a new version.
  const std::uint64_t versionSparse = cell.maskVersion();
  const RowMatrix<double> ones = RowMatrix<double>::Ones(rows, kHidden);
  cell.setMasks(maskIh, ones);
  EXPECT_NE(cell.maskVersion(), versionSparse);
  EXPECT_NE(cell.maskVersion(), versionBefore);
  EXPECT_EQ(cell.weight_hh(), before.weight_hh.cwiseProduct(maskHh));
  EXPECT_EQ(cell.parameterCount(), static_cast<Index>(maskIh.sum()) + rows * kHidden + 2 * rows);
  expectGraphFollowsMask(cell);
}

TYPED_TEST(Masks, UserMasksOfAnyScalarTypeAndSharedRandomMasks) {
  // Integer masks are accepted; a shared random mask passed back in reproduces the same cell.
  const CellOptions options{.inputDensity = 0.4, .recurrentDensity = 0.2, .maskSharing = MaskSharing::Shared, .seed = 3};
  const TypeParam reference(kInputs, kHidden, options);
  TypeParam cell(kInputs, kHidden, {.seed = 4});
  const RowMatrix<int> maskIh = reference.mask_ih().template cast<int>();
  const RowMatrix<int> maskHh = reference.mask_hh().template cast<int>();
  cell.setMasks(maskIh, maskHh);
  EXPECT_EQ(cell.mask_ih(), reference.mask_ih());
  EXPECT_EQ(cell.mask_hh(), reference.mask_hh());
  EXPECT_EQ(cell.dynamicsGraph(), reference.dynamicsGraph());
  EXPECT_EQ(cell.parameterCount(), reference.parameterCount());
  expectZeroWhereMasked(cell);
}

TYPED_TEST(Masks, MaskVersionsAreUniqueAcrossCells) {
  const TypeParam a(kInputs, kHidden, {.seed = 1}), b(kInputs, kHidden, {.seed = 1});
  EXPECT_NE(a.maskVersion(), b.maskVersion());
  TypeParam copy = a;
  EXPECT_EQ(copy.maskVersion(), a.maskVersion());
  copy.setMasks(a.mask_ih(), a.mask_hh());
  EXPECT_NE(copy.maskVersion(), a.maskVersion());
  EXPECT_NE(copy.maskVersion(), b.maskVersion());
}

}  // namespace
}  // namespace snap::test
