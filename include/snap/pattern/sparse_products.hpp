#pragma once
/// @file
/// Products and sums of sparse matrices whose patterns are fixed: the pattern is computed once
/// (symbolic), then only values are computed per step (numeric), without allocation. What a stack
/// of layers composes its same-step Jacobians with (docs/math.md §9).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap::detail {

/// The pattern of A·B (A: r × n, B: n × c).
inline SparsityPattern productPattern(const SparsityPattern& a, const SparsityPattern& b) {
  if (a.cols() != b.rows()) fail<ShapeError>("pattern product", "inner sizes equal", shapeOf(a.cols(), b.rows()));
  std::vector<std::vector<StorageIndex>> rows(static_cast<std::size_t>(a.rows()));
  std::vector<std::uint8_t> seen(static_cast<std::size_t>(b.cols()), 0);
  for (Index r = 0; r < a.rows(); ++r) {
    auto& columns = rows[static_cast<std::size_t>(r)];
    for (StorageIndex k : a.row(r))
      for (StorageIndex c : b.row(k))
        if (seen[static_cast<std::size_t>(c)] == 0) {
          seen[static_cast<std::size_t>(c)] = 1;
          columns.push_back(c);
        }
    for (StorageIndex c : columns) seen[static_cast<std::size_t>(c)] = 0;
  }
  return SparsityPattern(b.cols(), std::move(rows));
}

/// The union of patterns of the same shape.
inline SparsityPattern unionPattern(const std::vector<const SparsityPattern*>& patterns) {
  const SparsityPattern& first = *patterns.front();
  std::vector<std::vector<StorageIndex>> rows(static_cast<std::size_t>(first.rows()));
  for (const SparsityPattern* pattern : patterns) {
    if (pattern->rows() != first.rows() || pattern->cols() != first.cols())
      fail<ShapeError>("pattern union", "patterns of shape " + shapeOf(first.rows(), first.cols()),
                       shapeOf(pattern->rows(), pattern->cols()));
    for (Index r = 0; r < pattern->rows(); ++r)
      for (StorageIndex c : pattern->row(r)) rows[static_cast<std::size_t>(r)].push_back(c);
  }
  return SparsityPattern(first.cols(), std::move(rows));  // sorts and removes duplicates
}

/// `pattern` (r × n) with its columns moved by `offset` into a matrix of `cols` columns; the
/// entries keep their order.
inline SparsityPattern shiftColumns(const SparsityPattern& pattern, Index offset, Index cols) {
  std::vector<std::vector<StorageIndex>> rows(static_cast<std::size_t>(pattern.rows()));
  for (Index r = 0; r < pattern.rows(); ++r)
    for (StorageIndex c : pattern.row(r)) rows[static_cast<std::size_t>(r)].push_back(static_cast<StorageIndex>(c + offset));
  return SparsityPattern(cols, std::move(rows));
}

/// For each entry of `part`, the index of the same position in `whole` (part ⊆ whole, same shape).
inline std::vector<StorageIndex> entryMap(const SparsityPattern& part, const SparsityPattern& whole) {
  std::vector<StorageIndex> map(static_cast<std::size_t>(part.nonZeros()));
  for (Index e = 0; e < part.nonZeros(); ++e) {
    const Index found = whole.find(part.entryRow(e), part.column(e));
    if (found < 0) fail<ShapeError>("pattern entry map", "a sub-pattern", "an entry outside");
    map[static_cast<std::size_t>(e)] = static_cast<StorageIndex>(found);
  }
  return map;
}

/// For each entry of the transpose of `pattern` (pattern.transposed()), the index of the same
/// value in `pattern`.
inline std::vector<StorageIndex> transposeMap(const SparsityPattern& pattern) {
  const SparsityPattern transposed = pattern.transposed();
  std::vector<StorageIndex> map(static_cast<std::size_t>(transposed.nonZeros()));
  for (Index e = 0; e < transposed.nonZeros(); ++e)
    map[static_cast<std::size_t>(e)] = static_cast<StorageIndex>(pattern.find(transposed.column(e), transposed.entryRow(e)));
  return map;
}

/// c += A·B on C's pattern (which holds the product's), Gustavson's row by row product with a
/// dense accumulator of cols(C) zeros (left zero).
template <class Scalar>
void multiplyAdd(const SparsityPattern& a, const Scalar* aValues, const SparsityPattern& b, const Scalar* bValues,
                 const SparsityPattern& c, Scalar* cValues, Scalar* accumulator) {
  for (Index r = 0; r < a.rows(); ++r) {
    for (Index ea = a.rowStart(r); ea < a.rowStart(r + 1); ++ea) {
      const Scalar x = aValues[ea];
      const Index k = a.column(ea);
      for (Index eb = b.rowStart(k); eb < b.rowStart(k + 1); ++eb) accumulator[b.column(eb)] += x * bValues[eb];
    }
    for (Index ec = c.rowStart(r); ec < c.rowStart(r + 1); ++ec) {
      Scalar& slot = accumulator[c.column(ec)];
      cValues[ec] += slot;
      slot = Scalar(0);
    }
  }
}

/// target[map[e]] += values[e] for every entry e: a sub-pattern's values added into a larger one.
template <class Scalar>
void scatterAdd(const std::vector<StorageIndex>& map, const Scalar* values, Scalar* target) {
  for (std::size_t e = 0; e < map.size(); ++e) target[map[e]] += values[e];
}

/// y += A x for A on `pattern` with `values`.
template <class Scalar>
void multiplyVectorAdd(const SparsityPattern& pattern, const Scalar* values, const Scalar* x, Scalar* y) {
  for (Index r = 0; r < pattern.rows(); ++r) {
    Scalar sum = 0;
    for (Index e = pattern.rowStart(r); e < pattern.rowStart(r + 1); ++e) sum += values[e] * x[pattern.column(e)];
    y[r] += sum;
  }
}

/// y += Aᵀ x for A on `pattern` with `values`.
template <class Scalar>
void multiplyTransposedVectorAdd(const SparsityPattern& pattern, const Scalar* values, const Scalar* x, Scalar* y) {
  for (Index r = 0; r < pattern.rows(); ++r) {
    const Scalar xr = x[r];
    if (xr == Scalar(0)) continue;
    for (Index e = pattern.rowStart(r); e < pattern.rowStart(r + 1); ++e) y[pattern.column(e)] += values[e] * xr;
  }
}

}  // namespace snap::detail
