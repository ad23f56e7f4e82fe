// Element-wise recurrences (docs/cells.md, "Element-wise recurrences"; docs/math.md §1): a gated
// cell whose recurrent weights are diagonal (snap::diagonalMask) has no edge between units in its
// dynamics graph, so SnAp's pattern closes at once (n = 1 for the RNN and GRU; n = 2 for the
// LSTM, whose output gate reaches c a step late) and SnAp equals RTRL at O(p) entries; e-prop,
// which also drops the diagonal of W_hh, does not.

#include <gtest/gtest.h>

#include "../support/expect_error.hpp"
#include "../support/reference.hpp"

namespace snap::test {
namespace {

constexpr Index kInputs = 3, kHidden = 6, kSteps = 20;

template <class C>
C elementwise(const CellOptions& options) {
  C cell(kInputs, kHidden, options);
  cell.setMasks(cell.mask_ih(), diagonalMask<double>(C::cellStructure().gates, kHidden));
  return cell;
}

/// SnAp-n at the smallest closing n is RTRL, keeps one entry per home row (p, or 2 per LSTM
/// i, f, g parameter), and the dynamics graph has only unit-local edges.
template <class C>
void expectExactAtSmallN(const C& cell, int n, Index expectedKept) {
  for (Index row = 0; row < cell.stateSize(); ++row)
    for (StorageIndex column : cell.dynamicsGraph().row(row)) EXPECT_EQ(column % kHidden, row % kHidden);
  const Stream stream(kInputs, cell.stateSize(), 32, kSteps);
  SnAp<C> snap(cell, {.n = n});
  RTRL<C> rtrl(cell);
  EXPECT_TRUE(snap.pattern().isClosed());
  EXPECT_EQ(snap.pattern().keptEntries(), expectedKept);
  const Vector<double> exact = gradientOver(rtrl, stream);
  EXPECT_LE(relativeError(gradientOver(snap, stream), exact), 1e-12);
  // e-prop drops W_hh's diagonal (a path through the recurrent weights): not RTRL.
  EProp<C> eprop(cell);
  EXPECT_GT(relativeError(gradientOver(eprop, stream), exact), 1e-3);
}

TEST(Elementwise, RnnSnAp1IsRtrl) {
  const RNN<double> cell = elementwise<RNN<double>>({.inputDensity = 0.7, .seed = 31});
  expectExactAtSmallN(cell, 1, cell.parameterCount());
}
TEST(Elementwise, GruSnAp1IsRtrl) {
  const GRU<double> cell = elementwise<GRU<double>>({.inputDensity = 0.7, .seed = 31});
  expectExactAtSmallN(cell, 1, cell.parameterCount());
}
TEST(Elementwise, LstmSnAp2IsRtrlAndSnAp1IsNot) {
  const LSTM<double> cell = elementwise<LSTM<double>>({.inputDensity = 0.7, .seed = 31});
  // SnAp-2: every parameter keeps its unit's h and c.
  expectExactAtSmallN(cell, 2, 2 * cell.parameterCount());
  SnAp<LSTM<double>> snap1(cell, {.n = 1});
  EXPECT_FALSE(snap1.pattern().isClosed());  // the output gate's h row reaches c one step later
}

TEST(Elementwise, DiagonalMaskIsTheIdentityOfEachGateBlock) {
  const RowMatrix<double> mask = diagonalMask<double>(3, 4);
  ASSERT_EQ(mask.rows(), 12);
  ASSERT_EQ(mask.cols(), 4);
  for (Index r = 0; r < 12; ++r)
    for (Index c = 0; c < 4; ++c) EXPECT_EQ(mask(r, c), r % 4 == c ? 1.0 : 0.0);
  expectError<ShapeError>([] { diagonalMask<double>(0, 4); }, "gates");
  expectError<ShapeError>([] { diagonalMask<double>(3, 0); }, "hiddenSize");
}

}  // namespace
}  // namespace snap::test
