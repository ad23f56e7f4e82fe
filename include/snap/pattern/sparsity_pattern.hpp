#pragma once
/// @file
/// A fixed sparsity pattern in compressed-row form: the structure of the dynamics Jacobian
/// (docs/math.md §2) and of the SnAp blocks (docs/math.md §4). Built once; only values change in hot loops.

#include <algorithm>
#include <cstddef>
#include <limits>
#include <span>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// The positions of the structural nonzeros of a rows × cols matrix, row by row, with the
/// columns of each row sorted. Entry e (0 ≤ e < nonZeros()) is (entryRow(e), column(e)).
class SparsityPattern {
public:
  SparsityPattern() = default;

  /// Builds the pattern from the sorted or unsorted, possibly repeated, columns of each row.
  SparsityPattern(Index cols, std::vector<std::vector<StorageIndex>> columnsOfRows)
      : m_rows(static_cast<Index>(columnsOfRows.size())), m_cols(cols) {
    m_rowStart.assign(1, 0);
    m_rowStart.reserve(columnsOfRows.size() + 1);
    for (auto& columns : columnsOfRows) {
      std::sort(columns.begin(), columns.end());
      columns.erase(std::unique(columns.begin(), columns.end()), columns.end());
      for (StorageIndex c : columns) {
        if (c < 0 || c >= cols) detail::fail<ShapeError>("pattern column", "an index in [0, cols)", c);
        m_columns.push_back(c);
        m_entryRow.push_back(static_cast<StorageIndex>(m_rowStart.size() - 1));
      }
      if (m_columns.size() > static_cast<std::size_t>(std::numeric_limits<StorageIndex>::max()))
        detail::fail<ShapeError>("pattern size", "fewer than 2^31 entries", m_columns.size());
      m_rowStart.push_back(static_cast<StorageIndex>(m_columns.size()));
    }
  }

  /// Rows of the matrix.
  Index rows() const { return m_rows; }
  /// Columns of the matrix.
  Index cols() const { return m_cols; }
  /// Number of structural nonzeros.
  Index nonZeros() const { return static_cast<Index>(m_columns.size()); }

  /// First entry of row r; the row's entries are [rowStart(r), rowStart(r + 1)).
  Index rowStart(Index r) const { return m_rowStart[static_cast<std::size_t>(r)]; }
  /// The sorted columns of row r.
  std::span<const StorageIndex> row(Index r) const {
    return {m_columns.data() + rowStart(r), static_cast<std::size_t>(rowStart(r + 1) - rowStart(r))};
  }
  /// Column of entry e.
  Index column(Index e) const { return m_columns[static_cast<std::size_t>(e)]; }
  /// Row of entry e.
  Index entryRow(Index e) const { return m_entryRow[static_cast<std::size_t>(e)]; }

  /// The entry index of (r, c), or −1 when (r, c) is not in the pattern.
  Index find(Index r, Index c) const {
    const auto columns = row(r);
    const auto it = std::lower_bound(columns.begin(), columns.end(), static_cast<StorageIndex>(c));
    if (it == columns.end() || *it != c) return -1;
    return rowStart(r) + (it - columns.begin());
  }
  /// Whether (r, c) is a structural nonzero.
  bool contains(Index r, Index c) const { return find(r, c) >= 0; }

  /// rowStart(r) for r = 0 … rows().
  const std::vector<StorageIndex>& rowStarts() const { return m_rowStart; }
  /// The column of every entry, row by row.
  const std::vector<StorageIndex>& columns() const { return m_columns; }

  /// The transposed pattern (column c's rows become row c's columns).
  SparsityPattern transposed() const {
    std::vector<std::vector<StorageIndex>> columnsOfRows(static_cast<std::size_t>(m_cols));
    for (Index e = 0; e < nonZeros(); ++e)
      columnsOfRows[static_cast<std::size_t>(column(e))].push_back(static_cast<StorageIndex>(entryRow(e)));
    return SparsityPattern(m_rows, std::move(columnsOfRows));
  }

  /// Bytes held by the index arrays.
  std::size_t bytes() const {
    return (m_rowStart.size() + m_columns.size() + m_entryRow.size()) * sizeof(StorageIndex);
  }

  /// Equal when the shape and every entry are equal.
  friend bool operator==(const SparsityPattern&, const SparsityPattern&) = default;

private:
  Index m_rows = 0;
  Index m_cols = 0;
  std::vector<StorageIndex> m_rowStart{0};
  std::vector<StorageIndex> m_columns;
  std::vector<StorageIndex> m_entryRow;
};

}  // namespace snap
