#pragma once
/// @file
/// The two products the influence updates are made of (docs/math.md §3–§4): a sparse combination of
/// rows over a fixed pattern, and a dense matrix–matrix product that allocates nothing per call.

#include <Eigen/Core>
#include <algorithm>
#include <memory>

#include "snap/core/types.hpp"

namespace snap::detail {

namespace kernel {
/// One chunk of `Width` columns of one output row: Σ_e values[entry[e]] · in[column[e], c0 …],
/// accumulated in registers (fixed-size Eigen arrays) and stored once.
template <int Width, class Scalar>
inline void rowChunk(StorageIndex first, StorageIndex last, const StorageIndex* column, const StorageIndex* entry,
                     const Scalar* values, const Scalar* in, Index inStride, Index c0, Scalar* target) {
  using Chunk = Eigen::Array<Scalar, Width, 1>;
  Chunk sum = Chunk::Zero();
  for (StorageIndex e = first; e < last; ++e)
    sum += values[entry[e]] * Eigen::Map<const Chunk>(in + column[e] * inStride + c0);
  Eigen::Map<Chunk>(target + c0) = sum;
}
}  // namespace kernel

/// out[b, :] = Σ_e values[entry[e]] · in[column[e], :] over the entries e of row b
/// (rowStart[b] ≤ e < rowStart[b + 1]), for `rows` rows of `width` values: row r of `in`
/// starts at in + r·inStride, row b of `out` at out + b·outStride (a column tile of wider
/// row-major blocks). Each output chunk accumulates over all its row's entries in registers
/// before one store; chunks of 256, 128 and 64 bytes cover the row. `out` must not alias `in`.
template <class Scalar>
void sparseRowProduct(Index rows, Index width, Index inStride, Index outStride, const StorageIndex* rowStart,
                      const StorageIndex* column, const StorageIndex* entry, const Scalar* values, const Scalar* in,
                      Scalar* out) {
  constexpr int wide = 256 / static_cast<int>(sizeof(Scalar));
  for (Index b = 0; b < rows; ++b) {
    const StorageIndex first = rowStart[b], last = rowStart[b + 1];
    Scalar* target = out + b * outStride;
    Index c0 = 0;
    for (; c0 + wide <= width; c0 += wide)
      kernel::rowChunk<wide>(first, last, column, entry, values, in, inStride, c0, target);
    if (c0 + wide / 2 <= width) {
      kernel::rowChunk<wide / 2>(first, last, column, entry, values, in, inStride, c0, target);
      c0 += wide / 2;
    }
    constexpr int narrow = wide / 4;
    if (c0 + narrow <= width) {
      kernel::rowChunk<narrow>(first, last, column, entry, values, in, inStride, c0, target);
      c0 += narrow;
    }
    if (c0 < width && width >= narrow) {
      // The last columns as one chunk ending at the row's end: it recomputes a few columns of
      // the previous chunk, writing the same values again (out never aliases in).
      kernel::rowChunk<narrow>(first, last, column, entry, values, in, inStride, width - narrow, target);
    } else {
      for (; c0 < width; ++c0) kernel::rowChunk<1>(first, last, column, entry, values, in, inStride, c0, target);
    }
  }
}
/// The same for whole row-major blocks of `width` columns.
template <class Scalar>
void sparseRowProduct(Index rows, Index width, const StorageIndex* rowStart, const StorageIndex* column,
                      const StorageIndex* entry, const Scalar* values, const Scalar* in, Scalar* out) {
  sparseRowProduct(rows, width, width, width, rowStart, column, entry, values, in, out);
}

/// Dense C += α A·B for column-major problems up to the sizes given at construction, with
/// Eigen's GEMM kernels and a packing workspace allocated once (Eigen's own products allocate
/// it on every call above a small size). Row-major problems are their transposes.
template <class Scalar>
class GemmWorkspace {
  using Blocking = Eigen::internal::gemm_blocking_space<Eigen::ColMajor, Scalar, Scalar, Eigen::Dynamic,
                                                        Eigen::Dynamic, Eigen::Dynamic>;

public:
  GemmWorkspace() = default;
  /// Prepares for products of at most rows × depth times depth × cols.
  GemmWorkspace(Index rows, Index cols, Index depth) : m_rows(rows), m_cols(cols), m_depth(depth) { allocate(); }
  GemmWorkspace(const GemmWorkspace& other) : GemmWorkspace(other.m_rows, other.m_cols, other.m_depth) {}
  GemmWorkspace& operator=(const GemmWorkspace& other) {
    if (this != &other) *this = GemmWorkspace(other);
    return *this;
  }
  GemmWorkspace(GemmWorkspace&&) noexcept = default;
  GemmWorkspace& operator=(GemmWorkspace&&) noexcept = default;

  /// C (col-major, ldc) += α A·B, with A rows × depth and B depth × cols in the storage orders
  /// given (a row-major operand's leading dimension is its row stride).
  template <int LhsOrder, int RhsOrder>
  void accumulate(Index rows, Index cols, Index depth, const Scalar* a, Index lda, const Scalar* b, Index ldb,
                  Scalar* c, Index ldc, Scalar alpha = Scalar(1)) {
    if (rows == 0 || cols == 0 || depth == 0) return;
    Eigen::internal::general_matrix_matrix_product<Index, Scalar, LhsOrder, false, Scalar, RhsOrder, false,
                                                   Eigen::ColMajor, 1>::run(rows, cols, depth, a, lda, b, ldb, c, 1,
                                                                            ldc, alpha, *m_blocking);
  }

  /// out = lhs · in for row-major blocks: lhs rows × depth, in depth × width, out rows × width.
  void rowMajorProduct(Index rows, Index depth, Index width, const Scalar* lhs, const Scalar* in, Scalar* out) {
    std::fill(out, out + rows * width, Scalar(0));
    // outᵀ (width × rows, col-major) = inᵀ (width × depth) · lhsᵀ (depth × rows), all col-major.
    accumulate<Eigen::ColMajor, Eigen::ColMajor>(width, rows, depth, in, width, lhs, depth, out, width);
  }

  /// Bytes of the packing workspace.
  std::size_t bytes() const {
    return m_blocking ? static_cast<std::size_t>((m_blocking->kc() * (m_blocking->mc() + m_blocking->nc()))) * sizeof(Scalar)
                      : 0;
  }

private:
  void allocate() {
    m_blocking = std::make_unique<Blocking>(m_rows, m_cols, m_depth, 1, true);
    m_blocking->allocateAll();
  }
  Index m_rows = 0, m_cols = 0, m_depth = 0;
  std::unique_ptr<Blocking> m_blocking;
};

}  // namespace snap::detail
