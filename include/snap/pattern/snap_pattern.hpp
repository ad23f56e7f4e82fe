#pragma once
/// @file
/// The SnAp-n pattern (docs/math.md §4): for every parameter, the state rows it can reach within n
/// steps of the structural dynamics graph, computed once from the masks, with the parameters
/// that share a row set gathered into groups.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <utility>
#include <vector>

#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {

/// The kept entries M_n of the influence matrix, grouped by row set.
///
/// R_1(j) is parameter j's home rows (docs/math.md §2); R_n(j) adds every row reachable from R_{n−1}(j)
/// in one step of the dynamics graph. Parameters of the same home unit and gate class share
/// R_n; groups go further and gather all parameters whose R_n are equal (on a dense network at
/// n ≥ 2, a single group holding everything: RTRL).
class SnApPattern {
public:
  /// The parameters sharing one row set.
  struct Group {
    std::vector<StorageIndex> rows;     ///< R_n, sorted state indices
    std::vector<StorageIndex> columns;  ///< θ indices, increasing
  };

  SnApPattern() = default;

  /// The pattern of `n` ≥ 1 steps for a cell's structure, layout and dynamics graph.
  SnApPattern(const CellStructure& structure, const ParameterLayout& layout, const SparsityPattern& dynamicsGraph,
              int n)
      : m_n(n), m_stateSize(dynamicsGraph.rows()) {
    if (n < 1) detail::fail<ValueError>("n", "a number of steps n >= 1", n);
    const Index hidden = layout.hiddenSize(), blocks = structure.unitStates;
    // Gate classes: gates with the same set of reached blocks share R_1 for a given unit.
    std::vector<Index> classOfGate(static_cast<std::size_t>(structure.gates));
    std::vector<std::vector<Index>> classBlocks;
    for (Index g = 0; g < structure.gates; ++g) {
      std::vector<Index> reached;
      for (Index q = 0; q < blocks; ++q)
        if (structure.reaches(g, q)) reached.push_back(q);
      Index found = 0;
      while (found < static_cast<Index>(classBlocks.size()) && classBlocks[static_cast<std::size_t>(found)] != reached)
        ++found;
      if (found == static_cast<Index>(classBlocks.size())) classBlocks.push_back(reached);
      classOfGate[static_cast<std::size_t>(g)] = found;
    }
    const SparsityPattern successors = dynamicsGraph.transposed();  // row a: the rows b with a → b
    const auto classCount = static_cast<Index>(classBlocks.size());
    std::map<std::vector<StorageIndex>, Index> groupOfRows;
    std::vector<Index> groupOfClass(static_cast<std::size_t>(hidden * classCount));
    std::vector<std::uint8_t> reached(static_cast<std::size_t>(m_stateSize), 0);
    for (Index unit = 0; unit < hidden; ++unit)
      for (Index cls = 0; cls < classCount; ++cls) {
        std::vector<StorageIndex> rows;
        for (Index q : classBlocks[static_cast<std::size_t>(cls)])
          rows.push_back(static_cast<StorageIndex>(q * hidden + unit));
        rows = reach(successors, std::move(rows), n, reached);
        const auto [it, inserted] = groupOfRows.emplace(std::move(rows), static_cast<Index>(m_groups.size()));
        if (inserted) m_groups.push_back({it->first, {}});
        groupOfClass[static_cast<std::size_t>(unit * classCount + cls)] = it->second;
      }
    m_groupOf.resize(static_cast<std::size_t>(layout.size()));
    for (Index j = 0; j < layout.size(); ++j) {
      const Index cls = classOfGate[static_cast<std::size_t>(layout.gate(j))];
      const Index group = groupOfClass[static_cast<std::size_t>(layout.unit(j) * classCount + cls)];
      m_groups[static_cast<std::size_t>(group)].columns.push_back(static_cast<StorageIndex>(j));
      m_groupOf[static_cast<std::size_t>(j)] = static_cast<StorageIndex>(group);
    }
    std::erase_if(m_groups, [](const Group& group) { return group.columns.empty(); });
    for (std::size_t g = 0; g < m_groups.size(); ++g)
      for (StorageIndex j : m_groups[g].columns) m_groupOf[static_cast<std::size_t>(j)] = static_cast<StorageIndex>(g);
    for (const Group& group : m_groups)
      m_keptEntries += static_cast<Index>(group.rows.size() * group.columns.size());
  }

  /// The pattern of any cell (snap::Cell) for n steps.
  template <class CellType>
  static SnApPattern of(const CellType& cell, int n) {
    return SnApPattern(cell.structure(), cell.layout(), cell.dynamicsGraph(), n);
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
  /// R_n from R_1 = `rows` by n − 1 breadth-first expansions; `marks` is an all-zero scratch.
  std::vector<StorageIndex> reach(const SparsityPattern& successors, std::vector<StorageIndex> rows, int n,
                                  std::vector<std::uint8_t>& marks) const {
    for (StorageIndex r : rows) marks[static_cast<std::size_t>(r)] = 1;
    std::size_t frontierBegin = 0;
    for (int level = 1; level < n && static_cast<Index>(rows.size()) < m_stateSize; ++level) {
      const std::size_t frontierEnd = rows.size();
      if (frontierBegin == frontierEnd) break;
      for (std::size_t i = frontierBegin; i < frontierEnd; ++i)
        for (StorageIndex next : successors.row(rows[i]))
          if (marks[static_cast<std::size_t>(next)] == 0) {
            marks[static_cast<std::size_t>(next)] = 1;
            rows.push_back(next);
          }
      frontierBegin = frontierEnd;
    }
    for (StorageIndex r : rows) marks[static_cast<std::size_t>(r)] = 0;
    std::sort(rows.begin(), rows.end());
    return rows;
  }

  int m_n = 1;
  Index m_stateSize = 0;
  Index m_keptEntries = 0;
  std::vector<Group> m_groups;
  std::vector<StorageIndex> m_groupOf;
};

}  // namespace snap
