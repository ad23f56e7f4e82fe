#pragma once
/// @file
/// Random sparse weight masks (docs/math.md §1): exactly round(d · rows · cols) kept positions, drawn
/// per gate block or once and shared by all gate blocks.

#include <cmath>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// How a random mask is drawn for a matrix of G gate blocks.
enum class MaskSharing {
  PerGate,  ///< each gate block gets its own mask (the dynamics graph has density ≈ 1 − (1 − d)^G)
  Shared,   ///< one mask for all gate blocks (the dynamics graph keeps density d)
};

/// Throws a ValueError unless `density` lies in (0, 1].
inline void validateDensity(std::string_view argument, double density) {
  if (!(density > 0.0 && density <= 1.0)) detail::fail<ValueError>(argument, "a density in (0, 1]", density);
}

/// A 0/1 mask of `gates` blocks of `blockRows` × `cols`, each block keeping exactly
/// round(density · blockRows · cols) positions chosen uniformly by `random`.
template <class Scalar>
RowMatrix<Scalar> randomMask(Index gates, Index blockRows, Index cols, double density,
                             MaskSharing sharing, Random& random) {
  validateDensity("density", density);
  if (gates < 1) detail::fail<ShapeError>("gates", "at least 1 gate block", gates);
  if (blockRows < 1) detail::fail<ShapeError>("blockRows", "at least 1 row", blockRows);
  if (cols < 1) detail::fail<ShapeError>("cols", "at least 1 column", cols);
  const Index blockSize = detail::checkedProduct("cols", blockRows, cols);
  detail::requireArray<Scalar>("cols", detail::checkedProduct("cols", gates, blockSize), "mask");
  const auto kept = static_cast<Index>(std::llround(density * static_cast<double>(blockSize)));
  RowMatrix<Scalar> mask = RowMatrix<Scalar>::Zero(gates * blockRows, cols);
  std::vector<Index> positions;
  for (Index gate = 0; gate < gates; ++gate) {
    if (gate == 0 || sharing == MaskSharing::PerGate) positions = random.choose(blockSize, kept);
    for (Index position : positions) mask(gate * blockRows + position / cols, position % cols) = Scalar(1);
  }
  return mask;
}

/// The 0/1 mask of `gates` diagonal blocks of H × H: each unit's recurrent weights reach only
/// itself, the element-wise recurrence of an IndRNN, or of a GRU or LSTM with diagonal recurrent
/// weights (docs/cells.md). Its dynamics graph is block-diagonal per unit, so SnAp-1 (SnAp-2 for
/// the LSTM, whose h and c are two nodes) keeps every entry RTRL has, at O(p) cost.
template <class Scalar>
RowMatrix<Scalar> diagonalMask(Index gates, Index hiddenSize) {
  if (gates < 1) detail::fail<ShapeError>("gates", "at least 1 gate block", gates);
  if (hiddenSize < 1) detail::fail<ShapeError>("hiddenSize", "at least 1", hiddenSize);
  detail::requireArray<Scalar>("hiddenSize", detail::checkedProduct("hiddenSize", gates * hiddenSize, hiddenSize), "mask");
  RowMatrix<Scalar> mask = RowMatrix<Scalar>::Zero(gates * hiddenSize, hiddenSize);
  for (Index g = 0; g < gates; ++g)
    for (Index u = 0; u < hiddenSize; ++u) mask(g * hiddenSize + u, u) = Scalar(1);
  return mask;
}

}  // namespace snap
