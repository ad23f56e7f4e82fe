#pragma once
/// @file
/// SnAp-n, the Sparse n-step Approximation of the RTRL influence matrix (docs/math.md §4).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/engines/engine_core.hpp"
#include "snap/pattern/kernels.hpp"
#include "snap/pattern/snap_pattern.hpp"

namespace snap {

/// Options of the SnAp engine.
struct SnApOptions {
  /// Steps of reach kept in the influence matrix, n ≥ 1 (a runtime value: the pattern is
  /// computed once, at construction). n = 1 costs O(p) per step; once n − 1 reaches the
  /// diameter of the dynamics graph, SnAp-n is RTRL.
  int n = 1;
  /// A group's block is updated with a dense matrix–matrix product when at least this
  /// fraction of D_t[R, R] is structurally nonzero, with sparse rows below it (blocks of up
  /// to 4 rows are always updated in place). Both are exact; this only picks the faster kernel.
  double denseBlockAbove = 0.5;
};

/// SnAp-n: Ĵ_t = M_n ⊙ (I_t + D_t Ĵ_{t−1}), g = Σ_t Ĵ_tᵀ δ_t (docs/math.md §4), on the pattern M_n
/// computed once from the masks. The influence is stored per group of parameters sharing a
/// row set R, as a dense |R| × p_g block updated by J ← D_t[R, R] J + I_t[R, ·].
template <class CellType_>
class SnAp {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = SnApOptions;               ///< the engine's options

  /// Binds to `cell` (which must outlive the engine and stay at the same address) and builds
  /// the pattern of `options.n` steps.
  explicit SnAp(const CellType& cell, const Options& options = {}) : m_core(cell), m_options(options) {
    if (options.n < 1) detail::fail<ValueError>("SnApOptions::n", "a number of steps n >= 1", options.n);
    if (std::isnan(options.denseBlockAbove))
      detail::fail<ValueError>("SnApOptions::denseBlockAbove", "a density threshold (a number)", options.denseBlockAbove);
    build();
  }

  /// Advances the state with input x_t and returns s_t.
  /// After a mask change of the cell, the engine first rebuilds its pattern for the new masks
  /// (zero influence and gradient, state kept). Every argument is checked before anything changes.
  const Vector<Scalar>& step(const VectorView<Scalar>& input) {
    prepareStep(input);
    commitStep();
    return m_core.state();
  }

  /// The first half of step(): checks x_t (and that the cell keeps its sizes) and computes
  /// s_t from the current state, which it returns without changing anything else; commitStep()
  /// then takes the step. What a trainer calls to score s_t before the engine moves.
  const Vector<Scalar>& prepareStep(const VectorView<Scalar>& input) {
    m_core.requireSameSizes();
    return m_core.stage(input);
  }

  /// The second half of step(): rebuilds after a mask change, performs the pending influence
  /// update and makes the prepared step current.
  /// @throws UsageError without a prepareStep() since the last step or reset
  void commitStep() {
    m_core.requireStaged("commitStep");
    if (m_core.cellChanged()) {
      SnAp engine = rebuilt();
      engine.m_core.takeStaged(m_core);
      *this = std::move(engine);
    }
    if (m_pending) updateInfluence();
    m_core.commitStaged();
    m_pending = true;
  }

  /// Adds Ĵ_tᵀ δ_t to the gradient, δ_t = ∂L_t/∂s_t for the last step (fused with the
  /// step's influence update when that is still pending).
  void accumulate(const VectorView<Scalar>& stateGradient) {
    m_core.checkStateGradient(stateGradient);
    if (m_pending) {
      updateInfluence(stateGradient.data());
    } else {
      for (const GroupPlan& plan : m_plans)
        addGradient(plan, m_influence.data() + plan.valueOffset, stateGradient.data());
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
  /// Sets the accumulated gradient to zero; the state and the influence Ĵ carry on.
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
  /// A new sequence from the state `initial`, with zero influence.
  /// @throws ShapeError unless `initial` has the state's length k
  /// @throws NonFiniteError if `initial` holds a NaN or an infinity (nothing changes then)
  void resetState(const VectorView<Scalar>& initial) {
    m_core.resetState(initial);
    clearInfluence();
  }

  /// s_t, the current state (k values; [h; c] for an LSTM).
  const Vector<Scalar>& state() const { return m_core.state(); }
  /// The cell the engine is bound to.
  const CellType& cell() const { return m_core.cell(); }
  /// Steps since the last resetState().
  Index steps() const { return m_core.steps(); }
  /// The options the engine was built with.
  const Options& options() const { return m_options; }
  /// The pattern M_n the engine keeps.
  const SnApPattern& pattern() const { return m_pattern; }

  /// Ĵ_t[row, j] for parameter j (θ index): 0 outside the pattern.
  Scalar influence(Index row, Index j) {
    if (row < 0 || row >= m_core.m_stateSize)
      detail::fail<ShapeError>("row", "an index in [0, " + detail::describe(m_core.m_stateSize) + ")", row);
    if (j < 0 || j >= m_pattern.parameterCount())
      detail::fail<ShapeError>("j", "an index in [0, " + detail::describe(m_pattern.parameterCount()) + ")", j);
    if (m_pending) {
      m_core.requireUnchangedCell("influence");
      updateInfluence();
    }
    const Index g = m_pattern.groupOf(j);
    const GroupPlan& plan = m_plans[static_cast<std::size_t>(g)];
    const auto rows = m_pattern.group(g).rows;
    const auto it = std::lower_bound(rows.begin(), rows.end(), static_cast<StorageIndex>(row));
    if (it == rows.end() || *it != row) return Scalar(0);
    const auto* columns = m_columnParameter.data() + plan.columnOffset;
    const Index c = std::find(columns, columns + plan.columnCount, static_cast<StorageIndex>(j)) - columns;
    return m_influence[plan.valueOffset + (it - rows.begin()) * plan.columnCount + c];
  }

  /// Performs the lazy influence update of the last step now (it otherwise runs at the next
  /// accumulate() or step()).
  void flush() {
    if (!m_pending) return;
    m_core.requireUnchangedCell("flush");
    updateInfluence();
  }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the state, the kept
  /// influence values (group blocks in pattern order, each row-major), the θ-ordered gradient,
  /// and the last step's factors with the flag saying whether Ĵ still has to take that step
  /// (saved as is rather than flushed: the update fused with accumulate() rounds differently
  /// from a flush followed by accumulate(), and a resumed run must take the same path).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, "SnAp");
    putScalar<std::int64_t>(archive, prefix + "n", m_options.n);
    putArray(archive, prefix + "influence", m_influence);
    Vector<Scalar> gradient = Vector<Scalar>::Zero(m_core.m_gradient.size());
    for (std::size_t c = 0; c < m_columnParameter.size(); ++c)
      gradient[m_columnParameter[c]] = m_groupGradient[static_cast<Index>(c)];
    putArray(archive, prefix + "gradient", gradient);
    putScalar<std::int64_t>(archive, prefix + "pending", m_pending ? 1 : 0);
    m_core.saveStep(archive, prefix + "step/", m_pending);
  }
  /// Restores what saveState wrote, checked against the bound cell and n (FormatError naming
  /// the array otherwise); on any error the engine is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    SnAp loaded(cell(), m_options);
    loaded.m_core.load(archive, prefix, "SnAp");
    readScalar<std::int64_t>(archive, prefix + "n", m_options.n, m_options.n);
    loaded.m_influence = readVector<Scalar>(archive, prefix + "influence", loaded.m_influence.size());
    const Vector<Scalar> gradient =
        readVector<Scalar>(archive, prefix + "gradient", loaded.m_core.m_gradient.size());
    for (std::size_t c = 0; c < loaded.m_columnParameter.size(); ++c)
      loaded.m_groupGradient[static_cast<Index>(c)] = gradient[loaded.m_columnParameter[c]];
    loaded.m_gradientCurrent = false;
    // A step is pending only after one was taken.
    loaded.m_pending = readScalar<std::int64_t>(archive, prefix + "pending", 0, loaded.steps() > 0 ? 1 : 0) == 1;
    loaded.m_core.loadStep(archive, prefix + "step/");
    *this = std::move(loaded);
  }

  /// Influence values stored: keptEntries() of the pattern.
  Index valueCount() const { return m_influence.size(); }
  /// Bytes of the index arrays that address the influence values.
  std::size_t indexBytes() const {
    const std::size_t indices = m_rows.size() + m_localStart.size() + m_localColumn.size() + m_localEntry.size() +
                                m_entries.size() + m_columnParameter.size() + m_columnSource.size() +
                                m_segmentHome.size();
    return indices * sizeof(StorageIndex) + m_plans.size() * sizeof(GroupPlan) + m_segments.size() * sizeof(Segment);
  }
  /// Bytes of the influence state: its values plus the index arrays that address them.
  std::size_t bytes() const { return static_cast<std::size_t>(valueCount()) * sizeof(Scalar) + indexBytes(); }
  /// Bytes of the per-step scratch (the largest group's block and D_t's needed entries).
  std::size_t workspaceBytes() const {
    return static_cast<std::size_t>(m_workspace.size() + m_denseDynamics.size() + m_factors.size() +
                                    m_rowWeights.size()) * sizeof(Scalar) +
           m_dynamicsValues.size() * sizeof(Scalar) + m_gemm.bytes();
  }

private:
  /// How a group's block is updated each step.
  enum class Kernel {
    HomeRow,   ///< one row (SnAp-1 on RNN/GRU, the LSTM output gate): in place, fused
    HomePair,  ///< two rows (SnAp-1's h and c home block of the LSTM): in place, fused
    Sparse,    ///< D_t[R, R] as sparse rows, accumulated in registers
    Dense,     ///< D_t[R, R] dense enough for a matrix–matrix product
  };

  /// Where one group's data lives in the flat arrays.
  struct GroupPlan {
    Kernel kernel;
    Index rowCount, columnCount;
    Index valueOffset;    ///< first influence value (rowCount × columnCount, row-major)
    Index rowOffset;      ///< first of its rows in m_rows
    Index columnOffset;   ///< first of its columns in the group-ordered column arrays
    Index localOffset;    ///< first of its rowCount + 1 entries in m_localStart
    Index segmentOffset;  ///< first of its segments
    Index segmentCount;
  };
  /// A run of a group's columns with the same preactivation factor (one weight row's active
  /// entries and its bias): their I_t entries are factor × z[source] on the same home rows.
  /// Columns [begin, contiguousEnd) have consecutive sources from firstSource (a dense row),
  /// so their sources are read without a gather.
  struct Segment {
    StorageIndex begin, end;  ///< columns, relative to the group
    StorageIndex factor;      ///< preactivation column of the layout
    StorageIndex contiguousEnd, firstSource;
  };

  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (new pattern, zero influence and gradient, nothing pending) with the state and step count
  /// kept. Built apart, so that a refusal (an influence over snap::maxArrayBytes) changes nothing.
  SnAp rebuilt() const {
    SnAp engine(cell(), m_options);
    engine.m_core.keepFrom(m_core);
    return engine;
  }

  /// Builds the pattern and the flat plan of the per-step update (docs/math.md §4 grouping).
  void build() {
    const CellType& cell = m_core.cell();
    m_pattern = SnApPattern::of(cell, m_options.n);
    detail::requireArray<Scalar>("cell", m_pattern.keptEntries(), "SnAp influence (the pattern's kept entries)");
    m_core.resize();
    const SparsityPattern& graph = cell.dynamicsGraph();
    const ParameterLayout& layout = cell.layout();
    const CellStructure& structure = cell.structure();
    const Index blocks = structure.unitStates, hidden = cell.hiddenSize();
    m_unitStates = blocks;

    m_plans.clear();
    m_segments.clear();
    m_segmentHome.clear();
    for (auto* indices : {&m_rows, &m_localStart, &m_localColumn, &m_localEntry, &m_entries, &m_columnParameter,
                          &m_columnSource})
      indices->clear();
    std::vector<StorageIndex> entrySlot(static_cast<std::size_t>(graph.nonZeros()), -1);
    std::vector<StorageIndex> localOf(static_cast<std::size_t>(cell.stateSize()), -1);
    Index values = 0, largestBlock = 0, largestRows = 0, largestDense = 0, widestDense = 0, tallestDense = 0;
    for (const SnApPattern::Group& group : m_pattern.groups()) {
      const auto rowCount = static_cast<Index>(group.rows.size());
      const auto columnCount = static_cast<Index>(group.columns.size());
      GroupPlan plan{Kernel::Sparse, rowCount, columnCount, values, static_cast<Index>(m_rows.size()),
                     static_cast<Index>(m_columnParameter.size()), static_cast<Index>(m_localStart.size()),
                     static_cast<Index>(m_segments.size()), 0};
      values += rowCount * columnCount;
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
      const Index localEntries = m_localStart.back() - m_localStart[static_cast<std::size_t>(plan.localOffset)];
      // Columns (θ index and source) ordered by factor then source, so that a weight row's
      // entries and its bias form one segment (factor and home rows, docs/math.md §2).
      std::vector<StorageIndex> columns = group.columns;
      std::stable_sort(columns.begin(), columns.end(), [&](StorageIndex a, StorageIndex b) {
        return layout.factor(a) < layout.factor(b);
      });
      for (Index c = 0; c < columnCount; ++c) {
        const StorageIndex j = columns[static_cast<std::size_t>(c)];
        const auto source = static_cast<StorageIndex>(layout.source(j));
        m_columnParameter.push_back(j);
        m_columnSource.push_back(source);
        const auto factor = static_cast<StorageIndex>(layout.factor(j));
        if (c == 0 || m_segments.back().factor != factor) {
          m_segments.push_back({static_cast<StorageIndex>(c), static_cast<StorageIndex>(c + 1), factor,
                                static_cast<StorageIndex>(c + 1), source});
          for (Index q = 0; q < blocks; ++q)
            m_segmentHome.push_back(structure.reaches(layout.gate(j), q)
                                        ? localOf[static_cast<std::size_t>(q * hidden + layout.unit(j))]
                                        : StorageIndex(-1));
        } else {
          Segment& segment = m_segments.back();
          if (segment.contiguousEnd == segment.end &&
              source == segment.firstSource + (segment.end - segment.begin))
            ++segment.contiguousEnd;
          ++segment.end;
        }
      }
      plan.segmentCount = static_cast<Index>(m_segments.size()) - plan.segmentOffset;
      // The kernel: in place for tiny blocks, else sparse rows or a dense product by cost.
      if (rowCount == 1) {
        plan.kernel = Kernel::HomeRow;
      } else if (rowCount == 2) {
        plan.kernel = Kernel::HomePair;
      } else if (static_cast<double>(localEntries) >=
                 m_options.denseBlockAbove * static_cast<double>(rowCount * rowCount)) {
        plan.kernel = Kernel::Dense;
        largestDense = std::max(largestDense, rowCount * rowCount);
        widestDense = std::max(widestDense, columnCount);
        tallestDense = std::max(tallestDense, rowCount);
      }
      if (plan.kernel == Kernel::Sparse || plan.kernel == Kernel::Dense) {
        largestBlock = std::max(largestBlock, rowCount * columnCount);
        largestRows = std::max(largestRows, rowCount);
      }
      m_plans.push_back(plan);
      for (StorageIndex row : group.rows) localOf[static_cast<std::size_t>(row)] = -1;
    }
    // D_t's needed entries in graph order, so that computing them walks the weights row by row.
    std::vector<StorageIndex> order(m_entries.size()), slotOf(m_entries.size());
    std::iota(order.begin(), order.end(), StorageIndex(0));
    std::sort(order.begin(), order.end(), [&](StorageIndex a, StorageIndex b) {
      return m_entries[static_cast<std::size_t>(a)] < m_entries[static_cast<std::size_t>(b)];
    });
    std::vector<StorageIndex> sortedEntries(m_entries.size());
    for (std::size_t i = 0; i < order.size(); ++i) {
      sortedEntries[i] = m_entries[static_cast<std::size_t>(order[i])];
      slotOf[static_cast<std::size_t>(order[i])] = static_cast<StorageIndex>(i);
    }
    m_entries = std::move(sortedEntries);
    for (StorageIndex& slot : m_localEntry) slot = slotOf[static_cast<std::size_t>(slot)];
    m_influence = Vector<Scalar>::Zero(values);
    m_workspace = Vector<Scalar>::Zero(largestBlock);
    m_rowWeights = Vector<Scalar>::Zero(largestRows);
    m_denseDynamics = Vector<Scalar>::Zero(largestDense);
    m_gemm = largestDense > 0 ? detail::GemmWorkspace<Scalar>(widestDense, tallestDense, tallestDense)
                              : detail::GemmWorkspace<Scalar>();
    m_dynamicsValues.assign(m_entries.size(), Scalar(0));
    m_factors = Vector<Scalar>::Zero(2 * cell.gateRows() * blocks);
    m_groupGradient = Vector<Scalar>::Zero(layout.size());
    m_gradientCurrent = false;
    m_pending = false;
  }

  void clearInfluence() {
    m_influence.setZero();
    m_pending = false;
  }

  /// Ĵ ← M_n ⊙ (I_t + D_t Ĵ), one group block at a time (docs/math.md §4), and, when δ_t is given,
  /// g += Ĵ_tᵀ δ_t in the same pass. For n = 1 every block is a home block (one row; the
  /// LSTM's h and c), so only D_t's diagonal or 2 × 2 home blocks are computed and the step
  /// costs O(p).
  void updateInfluence(const Scalar* delta = nullptr) {
    const CellType& cell = m_core.cell();
    const StepCache<Scalar>& cache = m_core.m_cache;
    cell.dynamicsJacobian(cache, m_entries, m_dynamicsValues);
    const Index rows = cell.gateRows(), blocks = m_unitStates;
    Eigen::Map<Matrix<Scalar>>(m_factors.data(), blocks, rows) = cache.immediateIh;
    Eigen::Map<Matrix<Scalar>>(m_factors.data() + blocks * rows, blocks, rows) = cache.immediateHh;
    for (const GroupPlan& plan : m_plans) {
      Scalar* block = m_influence.data() + plan.valueOffset;
      switch (plan.kernel) {
        case Kernel::HomeRow:
          updateHomeBlock<1>(plan, block, delta);
          continue;
        case Kernel::HomePair:
          updateHomeBlock<2>(plan, block, delta);
          continue;
        case Kernel::Sparse:
          detail::sparseRowProduct(plan.rowCount, plan.columnCount, m_localStart.data() + plan.localOffset,
                                   m_localColumn.data(), m_localEntry.data(), m_dynamicsValues.data(), block,
                                   m_workspace.data());
          finishFromWorkspace(plan, block, delta);
          continue;
        case Kernel::Dense:
          gatherDense(plan);
          m_gemm.rowMajorProduct(plan.rowCount, plan.rowCount, plan.columnCount, m_denseDynamics.data(), block,
                                 m_workspace.data());
          finishFromWorkspace(plan, block, delta);
          continue;
      }
      if (delta != nullptr) addGradient(plan, block, delta);
    }
    m_pending = false;
  }

  /// A block of N = 1 or 2 rows (SnAp-1's home rows): J ← D_t[R, R] J + I_t and, when δ_t is
  /// given, g += Jᵀ δ_t[R], in place and in one pass over the columns.
  template <int N>
  void updateHomeBlock(const GroupPlan& plan, Scalar* block, const Scalar* delta) {
    HomeCoefficients<N> k;
    for (int b = 0; b < N; ++b) {
      for (auto e = m_localStart[static_cast<std::size_t>(plan.localOffset + b)];
           e < m_localStart[static_cast<std::size_t>(plan.localOffset + b + 1)]; ++e)
        k.dynamics[b][m_localColumn[static_cast<std::size_t>(e)]] =
            m_dynamicsValues[static_cast<std::size_t>(m_localEntry[static_cast<std::size_t>(e)])];
      k.weight[b] = delta != nullptr ? delta[m_rows[static_cast<std::size_t>(plan.rowOffset + b)]] : Scalar(0);
      k.rows[b] = block + b * plan.columnCount;
    }
    const bool withGradient = std::any_of(k.weight, k.weight + N, [](Scalar w) { return w != Scalar(0); });
    const Scalar* z = m_core.m_sources.data();
    const StorageIndex* source = m_columnSource.data() + plan.columnOffset;
    Scalar* gradient = m_groupGradient.data() + plan.columnOffset;
    for (Index s = plan.segmentOffset; s < plan.segmentOffset + plan.segmentCount; ++s) {
      const Segment& segment = m_segments[static_cast<std::size_t>(s)];
      for (int b = 0; b < N; ++b) k.factor[b] = Scalar(0);
      for (Index q = 0; q < m_unitStates; ++q) {
        const StorageIndex home = m_segmentHome[static_cast<std::size_t>(s * m_unitStates + q)];
        if (home >= 0) k.factor[home] = m_factors[segment.factor * m_unitStates + q];
      }
      const Index dense = segment.contiguousEnd - segment.begin, rest = segment.end - segment.contiguousEnd;
      const Scalar* contiguous = z + segment.firstSource;
      if (withGradient) {
        homeColumns<N, true, false>(k, segment.begin, dense, contiguous, nullptr, gradient);
        if (rest > 0) homeColumns<N, true, true>(k, segment.contiguousEnd, rest, z, source + segment.contiguousEnd, gradient);
      } else {
        homeColumns<N, false, false>(k, segment.begin, dense, contiguous, nullptr, gradient);
        if (rest > 0) homeColumns<N, false, true>(k, segment.contiguousEnd, rest, z, source + segment.contiguousEnd, gradient);
      }
    }
  }

  /// What the home-block kernel needs per group (N rows) and per segment (the factors).
  template <int N>
  struct HomeCoefficients {
    Scalar dynamics[N][N] = {};
    Scalar weight[N] = {};
    Scalar factor[N] = {};
    Scalar* rows[N] = {};
  };

  /// Columns [first, first + count) of a home block, with sources consecutive from `sources`
  /// or (Gathered) at sources[gather[c]].
  template <int N, bool WithGradient, bool Gathered>
  static void homeColumns(const HomeCoefficients<N>& k, Index first, Index count, const Scalar* __restrict sources,
                          const StorageIndex* __restrict gather, Scalar* __restrict gradient) {
    Scalar* __restrict row0 = k.rows[0] + first;
    Scalar* __restrict row1 = k.rows[N - 1] + first;
    Scalar* __restrict g = gradient + first;
    for (Index c = 0; c < count; ++c) {
      Scalar source;
      if constexpr (Gathered)
        source = sources[gather[c]];
      else
        source = sources[c];
      if constexpr (N == 1) {
        const Scalar value = k.dynamics[0][0] * row0[c] + k.factor[0] * source;
        row0[c] = value;
        if constexpr (WithGradient) g[c] += k.weight[0] * value;
      } else {
        const Scalar old0 = row0[c], old1 = row1[c];
        const Scalar value0 = k.dynamics[0][0] * old0 + k.dynamics[0][1] * old1 + k.factor[0] * source;
        const Scalar value1 = k.dynamics[1][0] * old0 + k.dynamics[1][1] * old1 + k.factor[1] * source;
        row0[c] = value0;
        row1[c] = value1;
        if constexpr (WithGradient) g[c] += k.weight[0] * value0 + k.weight[1] * value1;
      }
    }
  }

  /// D_t[R, R] as a dense row-major block in m_denseDynamics.
  void gatherDense(const GroupPlan& plan) {
    const Index n = plan.rowCount;
    std::fill(m_denseDynamics.data(), m_denseDynamics.data() + n * n, Scalar(0));
    for (Index b = 0; b < n; ++b)
      for (auto e = m_localStart[static_cast<std::size_t>(plan.localOffset + b)];
           e < m_localStart[static_cast<std::size_t>(plan.localOffset + b + 1)]; ++e)
        m_denseDynamics[b * n + m_localColumn[static_cast<std::size_t>(e)]] =
            m_dynamicsValues[static_cast<std::size_t>(m_localEntry[static_cast<std::size_t>(e)])];
  }

  /// Adds I_t to the product in the workspace, copies it back into the group's block and, when
  /// δ_t is given, adds the block's gradient Ĵ[R, ·]ᵀ δ[R].
  void finishFromWorkspace(const GroupPlan& plan, Scalar* block, const Scalar* delta) {
    Scalar* next = m_workspace.data();
    addImmediate(plan, next);
    const Index rows = plan.rowCount, width = plan.columnCount;
    std::copy(next, next + rows * width, block);
    if (delta == nullptr) return;
    for (Index b = 0; b < rows; ++b) m_rowWeights[b] = delta[m_rows[static_cast<std::size_t>(plan.rowOffset + b)]];
    Eigen::Map<Vector<Scalar>>(m_groupGradient.data() + plan.columnOffset, width).noalias() +=
        Eigen::Map<const RowMatrix<Scalar>>(next, rows, width).transpose() * m_rowWeights.head(rows);
  }

  /// block += I_t[R, columns]: each segment's factor times z[source] on its home rows.
  void addImmediate(const GroupPlan& plan, Scalar* block) {
    const Scalar* z = m_core.m_sources.data();
    const StorageIndex* source = m_columnSource.data() + plan.columnOffset;
    const Index width = plan.columnCount;
    for (Index s = plan.segmentOffset; s < plan.segmentOffset + plan.segmentCount; ++s) {
      const Segment& segment = m_segments[static_cast<std::size_t>(s)];
      for (Index q = 0; q < m_unitStates; ++q) {
        const StorageIndex home = m_segmentHome[static_cast<std::size_t>(s * m_unitStates + q)];
        if (home < 0) continue;
        const Scalar factor = m_factors[segment.factor * m_unitStates + q];
        Scalar* row = block + home * width;
        const Scalar* contiguous = z + segment.firstSource - segment.begin;
        for (StorageIndex c = segment.begin; c < segment.contiguousEnd; ++c) row[c] += factor * contiguous[c];
        for (StorageIndex c = segment.contiguousEnd; c < segment.end; ++c) row[c] += factor * z[source[c]];
      }
    }
  }

  /// g += Ĵ[R, columns]ᵀ δ[R] for one group.
  void addGradient(const GroupPlan& plan, const Scalar* block, const Scalar* delta) {
    Scalar* gradient = m_groupGradient.data() + plan.columnOffset;
    for (Index b = 0; b < plan.rowCount; ++b) {
      const Scalar weight = delta[m_rows[static_cast<std::size_t>(plan.rowOffset + b)]];
      if (weight == Scalar(0)) continue;
      const Scalar* row = block + b * plan.columnCount;
      for (Index c = 0; c < plan.columnCount; ++c) gradient[c] += weight * row[c];
    }
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  SnApPattern m_pattern;
  std::vector<GroupPlan> m_plans;
  std::vector<Segment> m_segments;
  std::vector<StorageIndex> m_segmentHome;  ///< U local home rows (or −1) per segment
  std::vector<StorageIndex> m_rows, m_localStart, m_localColumn, m_localEntry, m_entries;
  std::vector<StorageIndex> m_columnParameter, m_columnSource;
  Index m_unitStates = 1;
  Vector<Scalar> m_influence, m_workspace, m_denseDynamics, m_factors, m_groupGradient;
  Vector<Scalar> m_rowWeights;  ///< δ_t[R] of one group
  detail::GemmWorkspace<Scalar> m_gemm;
  std::vector<Scalar> m_dynamicsValues;
  bool m_gradientCurrent = false;
  bool m_pending = false;
};

}  // namespace snap
