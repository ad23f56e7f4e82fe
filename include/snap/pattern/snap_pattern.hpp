#pragma once
/// @file
/// The SnAp-n pattern (docs/math.md §4): for every parameter, the state rows it can reach within n
/// steps of a structural dynamics graph, computed once from the masks, with the parameters
/// that share a row set gathered into groups.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {

/// Where a pattern's rows may lie: with blocks (the layers of a stack), a parameter keeps only
/// rows of its own block, and the graph is followed only inside a block (docs/math.md §9, the
/// per-layer mode). Empty vectors mean one block holding everything.
struct PatternBlocks {
  std::vector<StorageIndex> ofRow;     ///< the block of each state row (k values)
  std::vector<StorageIndex> ofFactor;  ///< the block of each factor (F values)
};

/// The kept entries M_n of the influence matrix, grouped by row set.
///
/// R_1(j) is the rows parameter j's factor moves in one step (its home rows, docs/math.md §2);
/// R_n(j) adds every row reachable from R_{n−1}(j) in one step of the graph. Parameters of the
/// same factor share R_n; groups go further and gather all parameters whose R_n are equal (on a
/// dense network at n ≥ 2, a single group holding everything: RTRL). Groups are ordered by
/// their first parameter.
class SnApPattern {
public:
  /// The parameters sharing one row set.
  struct Group {
    std::vector<StorageIndex> rows;     ///< R_n, sorted state indices
    std::vector<StorageIndex> columns;  ///< θ indices, increasing
  };

  SnApPattern() = default;

  /// The pattern of `n` ≥ 1 steps of `graph` (k × k: row b lists the a with a → b), from the
  /// factors' rows (`factorPattern`, F × k) and the factor of each parameter, kept inside
  /// `blocks` when given.
  SnApPattern(const SparsityPattern& factorPattern, std::span<const StorageIndex> factorOfParameter,
              const SparsityPattern& graph, int n, const PatternBlocks& blocks = {})
      : m_n(n), m_stateSize(graph.rows()) {
    if (n < 1) detail::fail<ValueError>("n", "a number of steps n >= 1", n);
    const bool blocked = !blocks.ofRow.empty();
    if (blocked) {
      detail::requireLength("PatternBlocks::ofRow", static_cast<Index>(blocks.ofRow.size()), m_stateSize);
      detail::requireLength("PatternBlocks::ofFactor", static_cast<Index>(blocks.ofFactor.size()), factorPattern.rows());
    }
    const SparsityPattern successors = graph.transposed();  // row a: the rows b with a → b
    std::vector<std::uint8_t> marks(static_cast<std::size_t>(m_stateSize), 0);
    // R_n of each factor, computed once per distinct R_1.
    std::map<std::vector<StorageIndex>, Index> groupOfRows;
    std::vector<Index> groupOfFactor(static_cast<std::size_t>(factorPattern.rows()), -1);
    std::vector<std::vector<StorageIndex>> rowsOfGroup;
    auto groupOf = [&](Index f) {
      Index& group = groupOfFactor[static_cast<std::size_t>(f)];
      if (group >= 0) return group;
      const StorageIndex block = blocked ? blocks.ofFactor[static_cast<std::size_t>(f)] : 0;
      std::vector<StorageIndex> rows;
      for (StorageIndex row : factorPattern.row(f))
        if (!blocked || blocks.ofRow[static_cast<std::size_t>(row)] == block) rows.push_back(row);
      rows = reach(successors, std::move(rows), n, marks, blocked ? &blocks.ofRow : nullptr, block);
      const auto [it, inserted] = groupOfRows.emplace(std::move(rows), static_cast<Index>(rowsOfGroup.size()));
      if (inserted) rowsOfGroup.push_back(it->first);
      group = it->second;
      return group;
    };
    // Groups in order of their first parameter.
    m_groupOf.resize(factorOfParameter.size());
    std::vector<Index> renumber;
    for (std::size_t j = 0; j < factorOfParameter.size(); ++j) {
      const Index found = groupOf(factorOfParameter[j]);
      if (found >= static_cast<Index>(renumber.size())) renumber.resize(static_cast<std::size_t>(found) + 1, -1);
      Index& group = renumber[static_cast<std::size_t>(found)];
      if (group < 0) {
        group = static_cast<Index>(m_groups.size());
        m_groups.push_back({rowsOfGroup[static_cast<std::size_t>(found)], {}});
      }
      m_groups[static_cast<std::size_t>(group)].columns.push_back(static_cast<StorageIndex>(j));
      m_groupOf[j] = static_cast<StorageIndex>(group);
    }
    m_closed = true;
    for (const Group& group : m_groups) {
      m_keptEntries += static_cast<Index>(group.rows.size() * group.columns.size());
      if (m_closed) m_closed = isClosed(successors, group.rows, blocked ? &blocks.ofRow : nullptr);
    }
  }

  /// The pattern of any cell (snap::Cell) for n steps of its dynamics graph.
  template <class CellType>
  static SnApPattern of(const CellType& cell, int n) {
    return SnApPattern(cell.factorPattern(), cell.layout().factors(), cell.dynamicsGraph(), n);
  }

  /// The n of SnAp-n.
  int n() const { return m_n; }
  /// k.
  Index stateSize() const { return m_stateSize; }
  /// p.
  Index parameterCount() const { return static_cast<Index>(m_groupOf.size()); }
  /// |M_n| = Σ_j |R_n(j)|, the influence entries SnAp-n keeps.
  Index keptEntries() const { return m_keptEntries; }
  /// True when every parameter keeps every row (SnAp-n is then RTRL).
  bool isFull() const { return m_keptEntries == m_stateSize * parameterCount(); }
  /// True when every row set is closed under the graph (inside its block): no later step adds a
  /// row, so the influence outside the pattern stays exactly zero and SnAp-n computes RTRL's
  /// influence exactly (the per-layer influence, with blocks), at the cost of keptEntries().
  bool isClosed() const { return m_closed; }

  /// Number of groups (distinct row sets).
  Index groupCount() const { return static_cast<Index>(m_groups.size()); }
  /// Group g: its rows R and its parameters.
  const Group& group(Index g) const { return m_groups[static_cast<std::size_t>(g)]; }
  /// All groups.
  const std::vector<Group>& groups() const { return m_groups; }
  /// The group of parameter j.
  Index groupOf(Index j) const { return m_groupOf[static_cast<std::size_t>(j)]; }
  /// R_n(j), the rows parameter j keeps.
  std::span<const StorageIndex> rowsOf(Index j) const { return group(groupOf(j)).rows; }

  /// Bytes of the influence values (keptEntries scalars).
  template <class Scalar>
  std::size_t valueBytes() const {
    return static_cast<std::size_t>(m_keptEntries) * sizeof(Scalar);
  }
  /// Bytes of the pattern's own index arrays (rows and columns of the groups).
  std::size_t indexBytes() const {
    std::size_t entries = m_groupOf.size();
    for (const Group& group : m_groups) entries += group.rows.size() + group.columns.size();
    return entries * sizeof(StorageIndex);
  }

private:
  /// R_n from R_1 = `rows` by n − 1 breadth-first expansions (inside `block` when `ofRow` is
  /// given); `marks` is an all-zero scratch.
  std::vector<StorageIndex> reach(const SparsityPattern& successors, std::vector<StorageIndex> rows, int n,
                                  std::vector<std::uint8_t>& marks, const std::vector<StorageIndex>* ofRow,
                                  StorageIndex block) const {
    for (StorageIndex r : rows) marks[static_cast<std::size_t>(r)] = 1;
    std::size_t frontierBegin = 0;
    for (int level = 1; level < n && static_cast<Index>(rows.size()) < m_stateSize; ++level) {
      const std::size_t frontierEnd = rows.size();
      if (frontierBegin == frontierEnd) break;
      for (std::size_t i = frontierBegin; i < frontierEnd; ++i)
        for (StorageIndex next : successors.row(rows[i]))
          if (marks[static_cast<std::size_t>(next)] == 0 &&
              (ofRow == nullptr || (*ofRow)[static_cast<std::size_t>(next)] == block)) {
            marks[static_cast<std::size_t>(next)] = 1;
            rows.push_back(next);
          }
      frontierBegin = frontierEnd;
    }
    for (StorageIndex r : rows) marks[static_cast<std::size_t>(r)] = 0;
    std::sort(rows.begin(), rows.end());
    return rows;
  }

  /// Whether every successor of `rows` (inside the block of each row) is in `rows` (sorted).
  static bool isClosed(const SparsityPattern& successors, const std::vector<StorageIndex>& rows,
                       const std::vector<StorageIndex>* ofRow) {
    for (StorageIndex row : rows)
      for (StorageIndex next : successors.row(row)) {
        if (ofRow != nullptr && (*ofRow)[static_cast<std::size_t>(next)] != (*ofRow)[static_cast<std::size_t>(row)]) continue;
        if (!std::binary_search(rows.begin(), rows.end(), next)) return false;
      }
    return true;
  }

  int m_n = 1;
  Index m_stateSize = 0;
  Index m_keptEntries = 0;
  bool m_closed = false;
  std::vector<Group> m_groups;
  std::vector<StorageIndex> m_groupOf;
};

}  // namespace snap
