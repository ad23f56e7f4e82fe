#pragma once
/// @file
/// SnAp-n, the Sparse n-step Approximation of the RTRL influence matrix (MATH §4).

#include <algorithm>
#include <cstddef>
#include <span>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/engines/engine_core.hpp"
#include "snap/pattern/snap_pattern.hpp"

namespace snap {

/// Options of the SnAp engine.
struct SnApOptions {
  /// Steps of reach kept in the influence matrix, n ≥ 1 (a runtime value: the pattern is
  /// computed once, at construction). n = 1 costs O(p) per step; once n − 1 reaches the
  /// diameter of the dynamics graph, SnAp-n is RTRL.
  int n = 1;
};

/// SnAp-n: Ĵ_t = M_n ⊙ (I_t + D_t Ĵ_{t−1}), g = Σ_t Ĵ_tᵀ δ_t (MATH §4), on the pattern M_n
/// computed once from the masks. The influence is stored per group of parameters sharing a
/// row set R, as a dense |R| × p_g block updated by J ← D_t[R, R] J + I_t[R, ·].
template <class CellType_>
class SnAp {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;
  using Scalar = typename CellType::Scalar;
  using Options = SnApOptions;

  /// Binds to `cell` (which must outlive the engine and stay at the same address) and builds
  /// the pattern of `options.n` steps.
  explicit SnAp(const CellType& cell, const Options& options = {}) : m_core(cell), m_options(options) {
    if (options.n < 1) detail::fail<ValueError>("SnApOptions::n", "a number of steps n >= 1", options.n);
    build();
  }

  /// Advances the state with input x_t and returns s_t.
  const Vector<Scalar>& step(const VectorView<Scalar>& input) {
    if (m_core.cellChanged()) build();
    if (m_pending) updateInfluence();
    m_core.forward(input);
    m_pending = true;
    return m_core.state();
  }

  /// Adds Ĵ_tᵀ δ_t to the gradient, δ_t = ∂L_t/∂s_t for the last step.
  void accumulate(const VectorView<Scalar>& stateGradient) {
    m_core.checkStateGradient(stateGradient);
    if (m_pending) updateInfluence();
    const Scalar* delta = stateGradient.data();
    for (const GroupPlan& plan : m_plans) {
      const Scalar* block = m_influence.data() + plan.valueOffset;
      Scalar* gradient = m_groupGradient.data() + plan.columnOffset;
      for (Index b = 0; b < plan.rowCount; ++b) {
        const Scalar weight = delta[m_rows[static_cast<std::size_t>(plan.rowOffset + b)]];
        if (weight == Scalar(0)) continue;
        const Scalar* row = block + b * plan.columnCount;
        for (Index c = 0; c < plan.columnCount; ++c) gradient[c] += weight * row[c];
      }
    }
    m_gradientCurrent = false;
  }

  /// The accumulated gradient, θ-ordered (cell().unflatten() gives the PyTorch tensors).
  const Vector<Scalar>& gradient() {
    if (!m_gradientCurrent) {
      Scalar* out = m_core.m_gradient.data();
      for (std::size_t c = 0; c < m_columnParameter.size(); ++c) out[m_columnParameter[c]] = m_groupGradient[static_cast<Index>(c)];
      m_gradientCurrent = true;
    }
    return m_core.m_gradient;
  }
  void resetGradient() {
    m_groupGradient.setZero();
    m_core.m_gradient.setZero();
    m_gradientCurrent = true;
  }

  /// Zero state and zero influence (a new sequence). resetState(s0) starts from s0.
  void resetState() {
    m_core.resetState();
    clearInfluence();
  }
  void resetState(const VectorView<Scalar>& initial) {
    m_core.resetState(initial);
    clearInfluence();
  }

  const Vector<Scalar>& state() const { return m_core.state(); }
  const CellType& cell() const { return m_core.cell(); }
  Index steps() const { return m_core.steps(); }
  const Options& options() const { return m_options; }
  /// The pattern M_n the engine keeps.
  const SnApPattern& pattern() const { return m_pattern; }

  /// Ĵ_t[row, j] for parameter j (θ index): 0 outside the pattern.
  Scalar influence(Index row, Index j) {
    if (m_pending) updateInfluence();
    const Index g = m_pattern.groupOf(j);
    const GroupPlan& plan = m_plans[static_cast<std::size_t>(g)];
    const auto rows = m_pattern.group(g).rows;
    const auto it = std::lower_bound(rows.begin(), rows.end(), static_cast<StorageIndex>(row));
    if (it == rows.end() || *it != row) return Scalar(0);
    const auto& columns = m_pattern.group(g).columns;
    const Index c = std::lower_bound(columns.begin(), columns.end(), static_cast<StorageIndex>(j)) - columns.begin();
    return m_influence[plan.valueOffset + (it - rows.begin()) * plan.columnCount + c];
  }

  /// Influence values stored: keptEntries() of the pattern.
  Index valueCount() const { return m_influence.size(); }
  /// Bytes of the index arrays that address the influence values.
  std::size_t indexBytes() const {
    const std::size_t indices = m_rows.size() + m_localStart.size() + m_localColumn.size() + m_localEntry.size() +
                                m_entries.size() + m_columnParameter.size() + m_columnFactor.size() +
                                m_columnSource.size() + m_columnHome.size();
    return indices * sizeof(StorageIndex) + m_plans.size() * sizeof(GroupPlan);
  }
  /// Bytes of the influence state: its values plus the index arrays that address them.
  std::size_t bytes() const { return static_cast<std::size_t>(valueCount()) * sizeof(Scalar) + indexBytes(); }
  /// Bytes of the per-step scratch (the largest group's block and D_t's needed entries).
  std::size_t workspaceBytes() const {
    return static_cast<std::size_t>(m_workspace.size()) * sizeof(Scalar) + m_dynamicsValues.size() * sizeof(Scalar);
  }

private:
  /// Where one group's data lives in the flat arrays.
  struct GroupPlan {
    Index rowCount, columnCount;
    Index valueOffset;   ///< first influence value (rowCount × columnCount, row-major)
    Index rowOffset;     ///< first of its rows in m_rows
    Index columnOffset;  ///< first of its columns in the group-ordered column arrays
    Index localOffset;   ///< first of its rowCount + 1 entries in m_localStart
  };

  /// Builds the pattern and the flat plan of the per-step update (MATH §4 grouping).
  void build() {
    m_core.resize();
    const CellType& cell = m_core.cell();
    m_pattern = SnApPattern::of(cell, m_options.n);
    const SparsityPattern& graph = cell.dynamicsGraph();
    const ParameterLayout& layout = cell.layout();
    const CellStructure& structure = cell.structure();
    const Index blocks = structure.unitStates, hidden = cell.hiddenSize();

    m_plans.clear();
    m_rows.clear();
    m_localStart.clear();
    m_localColumn.clear();
    m_localEntry.clear();
    m_columnParameter.clear();
    m_columnFactor.clear();
    m_columnSource.clear();
    m_columnHome.clear();
    std::vector<StorageIndex> entrySlot(static_cast<std::size_t>(graph.nonZeros()), -1);
    m_entries.clear();
    std::vector<StorageIndex> localOf(static_cast<std::size_t>(cell.stateSize()), -1);
    Index values = 0, largest = 0;
    for (const SnApPattern::Group& group : m_pattern.groups()) {
      const auto rowCount = static_cast<Index>(group.rows.size());
      const auto columnCount = static_cast<Index>(group.columns.size());
      m_plans.push_back({rowCount, columnCount, values, static_cast<Index>(m_rows.size()),
                         static_cast<Index>(m_columnParameter.size()), static_cast<Index>(m_localStart.size())});
      values += rowCount * columnCount;
      largest = std::max(largest, rowCount * columnCount);
      for (Index b = 0; b < rowCount; ++b) localOf[static_cast<std::size_t>(group.rows[static_cast<std::size_t>(b)])] = static_cast<StorageIndex>(b);
      // D_t[R, R]: the graph entries whose row and column both lie in R.
      for (StorageIndex row : group.rows) {
        m_rows.push_back(row);
        m_localStart.push_back(static_cast<StorageIndex>(m_localColumn.size()));
        for (Index e = graph.rowStart(row); e < graph.rowStart(row + 1); ++e) {
          const StorageIndex local = localOf[static_cast<std::size_t>(graph.column(e))];
          if (local < 0) continue;
          auto& slot = entrySlot[static_cast<std::size_t>(e)];
          if (slot < 0) {
            slot = static_cast<StorageIndex>(m_entries.size());
            m_entries.push_back(static_cast<StorageIndex>(e));
          }
          m_localColumn.push_back(local);
          m_localEntry.push_back(slot);
        }
      }
      m_localStart.push_back(static_cast<StorageIndex>(m_localColumn.size()));
      // Columns: θ index, factor, source, and the local rows of its home blocks (MATH §2).
      for (StorageIndex j : group.columns) {
        m_columnParameter.push_back(j);
        m_columnFactor.push_back(static_cast<StorageIndex>(layout.factor(j)));
        m_columnSource.push_back(static_cast<StorageIndex>(layout.source(j)));
        for (Index q = 0; q < blocks; ++q)
          m_columnHome.push_back(structure.reaches(layout.gate(j), q)
                                     ? localOf[static_cast<std::size_t>(q * hidden + layout.unit(j))]
                                     : StorageIndex(-1));
      }
      for (StorageIndex row : group.rows) localOf[static_cast<std::size_t>(row)] = -1;
    }
    m_unitStates = blocks;
    m_influence = Vector<Scalar>::Zero(values);
    m_workspace = Vector<Scalar>::Zero(largest);
    m_dynamicsValues.assign(m_entries.size(), Scalar(0));
    m_groupGradient = Vector<Scalar>::Zero(layout.size());
    m_gradientCurrent = false;
    m_pending = false;
  }

  void clearInfluence() {
    m_influence.setZero();
    m_pending = false;
  }

  /// Ĵ ← M_n ⊙ (I_t + D_t Ĵ), one group block at a time (MATH §4). For n = 1 the blocks are
  /// the home rows (one row; the LSTM's h and c), so only D_t's diagonal or 2 × 2 home block
  /// is computed and the step costs O(p).
  void updateInfluence() {
    const CellType& cell = m_core.cell();
    const StepCache<Scalar>& cache = m_core.m_cache;
    cell.dynamicsJacobian(cache, m_entries, m_dynamicsValues);
    const Scalar* z = m_core.m_sources.data();
    for (const GroupPlan& plan : m_plans) {
      Scalar* block = m_influence.data() + plan.valueOffset;
      Scalar* next = m_workspace.data();
      const Index width = plan.columnCount;
      for (Index b = 0; b < plan.rowCount; ++b) {
        Scalar* out = next + b * width;
        std::fill(out, out + width, Scalar(0));
        const auto first = m_localStart[static_cast<std::size_t>(plan.localOffset + b)];
        const auto last = m_localStart[static_cast<std::size_t>(plan.localOffset + b + 1)];
        for (auto e = first; e < last; ++e) {
          const Scalar d = m_dynamicsValues[static_cast<std::size_t>(m_localEntry[static_cast<std::size_t>(e)])];
          const Scalar* in = block + m_localColumn[static_cast<std::size_t>(e)] * width;
          for (Index c = 0; c < width; ++c) out[c] += d * in[c];
        }
      }
      for (Index c = 0; c < width; ++c) {
        const auto column = static_cast<std::size_t>(plan.columnOffset + c);
        const Scalar source = z[m_columnSource[column]];
        const Index f = m_columnFactor[column];
        for (Index q = 0; q < m_unitStates; ++q) {
          const StorageIndex home = m_columnHome[column * static_cast<std::size_t>(m_unitStates) + static_cast<std::size_t>(q)];
          if (home >= 0) next[home * width + c] += cache.factor(q, f) * source;
        }
      }
      std::copy(next, next + plan.rowCount * width, block);
    }
    m_pending = false;
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  SnApPattern m_pattern;
  std::vector<GroupPlan> m_plans;
  std::vector<StorageIndex> m_rows, m_localStart, m_localColumn, m_localEntry, m_entries;
  std::vector<StorageIndex> m_columnParameter, m_columnFactor, m_columnSource, m_columnHome;
  Index m_unitStates = 1;
  Vector<Scalar> m_influence, m_workspace, m_groupGradient;
  std::vector<Scalar> m_dynamicsValues;
  bool m_gradientCurrent = false;
  bool m_pending = false;
};

}  // namespace snap
