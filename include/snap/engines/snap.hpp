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
#include <type_traits>
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
  /// fraction of D_t[R, R] is structurally nonzero, with sparse rows below it (blocks of one
  /// or two rows are always updated in place). Both are exact; this only picks the faster kernel.
  double denseBlockAbove = 0.5;
  /// For a stack of layers (snap::Stack): keep each parameter's influence inside its own layer,
  /// and let the loss gradient reach the lower layers only through the upper layers' same-step
  /// Jacobians (the rule of Zucchet et al. 2023; docs/math.md §9). False: SnAp-n over the
  /// stack's joint dynamics graph. A single cell has one layer: both are the same.
  bool perLayer = false;
};

namespace detail {
/// What an engine of the SnAp family keeps and follows: SnAp-n on the dynamics graph, or the
/// closure of the home rows under the unit-internal couplings (e-prop, RFLO).
struct TraceConfig {
  SnApOptions options;
  bool internal = false;         ///< follow internalGraph() instead of dynamicsGraph()
  const char* name = "SnAp";     ///< the engine's name in checkpoints
};
/// Selects the constructor of the SnAp family that takes a TraceConfig.
struct TraceTag {};
}  // namespace detail

/// SnAp-n: Ĵ_t = M_n ⊙ (I_t + D_t Ĵ_{t−1}), g = Σ_t Ĵ_tᵀ δ_t (docs/math.md §4), on the pattern M_n
/// computed once from the masks. The influence is stored per group of parameters sharing a
/// row set R, as a dense |R| × p_g block updated by J ← D_t[R, R] J + I_t[R, ·].
///
/// B streams share the pattern and the plan; each has its own influence values. The blocks of
/// one or two rows (every block of SnAp-1) keep the stream innermost, so that their update
/// reads each kept entry once for all B streams, their sources are contiguous loads across
/// streams and g[c] += Σ_b δ_b[R]ᵀ J_b[R, c] is summed in registers; the larger blocks keep
/// one row-major block per stream, multiplied by that stream's D_t^b[R, R]. The work is split
/// into fixed units of columns (whole small groups, column tiles of large ones, about equal
/// cost, chosen from the pattern alone): each unit updates all streams and owns the gradient
/// of its columns, so the results are bit-identical for every thread count.
template <class CellType_>
class SnAp {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = SnApOptions;               ///< the engine's options

  /// Binds to `cell` (which must outlive the engine and stay at the same address) and builds
  /// the pattern of `options.n` steps. `batch` gives the streams B advanced together and the
  /// threads that share the work.
  explicit SnAp(const CellType& cell, const Options& options = {}, const Batch& batch = {})
      : SnAp(detail::TraceTag{}, cell, detail::TraceConfig{options}, batch) {}

  /// Advances the states with the inputs x_t (m × B; a vector for one stream) and returns
  /// s_t (k × B). After a mask change of the cell, the engine first rebuilds its pattern for
  /// the new masks (zero influence and gradient, states kept). Every argument is checked
  /// before anything changes.
  const Matrix<Scalar>& step(const MatrixView<Scalar>& inputs) {
    prepareStep(inputs);
    commitStep();
    return m_core.state();
  }

  /// y_t of the step prepareStep() computed (o × B), before commitStep() takes it.
  const Matrix<Scalar>& preparedOutputs() const { return m_core.stagedOutputs(); }

  /// The first half of step(): checks x_t (and that the cell keeps its sizes) and computes
  /// s_t from the current states, which it returns without changing anything else; commitStep()
  /// then takes the step. What a trainer calls to score s_t before the engine moves.
  const Matrix<Scalar>& prepareStep(const MatrixView<Scalar>& inputs) {
    m_core.requireSameSizes();
    return m_core.stage(inputs);
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
    if (m_pending) updateInfluence(nullptr);
    m_core.commitStaged();
    m_pending = true;
  }

  /// Adds Σ_b Ĵ_{t,b}ᵀ δ_b to the gradient, for the loss gradients of the last step: over the
  /// outputs y_t (o × B), or over the states s_t (k × B) for a cell whose output is the head of
  /// its state (fused with the step's influence update when that is still pending).
  void accumulate(const MatrixView<Scalar>& lossGradients) {
    m_core.checkStateGradient(lossGradients);
    const Matrix<Scalar>& stateGradients = toStateGradients(lossGradients);
    const Index streams = m_core.streams();
    // δ with the stream innermost for the home blocks (δ itself for one stream).
    const Scalar* transposed = stateGradients.data();
    if (streams > 1) {
      m_deltaT = stateGradients.transpose();
      transposed = m_deltaT.data();
    }
    const Gradients delta{stateGradients.data(), stateGradients.outerStride(), transposed};
    if (m_pending) {
      updateInfluence(&delta);
    } else {
      m_core.workers().run([&](int t) {
        forEachPiece(t, [&](const GroupPlan& plan, const Piece& piece, Workspace&) { addGradient(plan, piece, delta); });
      });
    }
    m_gradientCurrent = false;
  }

  /// The accumulated gradient Σ_b Σ_t Ĵ_{t,b}ᵀ δ_{t,b}, θ-ordered (cell().unflatten() gives the
  /// PyTorch tensors).
  const Vector<Scalar>& gradient() {
    if (!m_gradientCurrent) {
      Scalar* out = m_core.m_gradient.data();
      for (std::size_t c = 0; c < m_columnParameter.size(); ++c)
        out[m_columnParameter[c]] = groupGradient()[c] + m_outputGradient[m_columnParameter[c]];
      m_gradientCurrent = true;
    }
    return m_core.m_gradient;
  }
  /// Sets the accumulated gradient to zero; the states and the influence Ĵ carry on.
  void resetGradient() {
    m_groupGradient.setZero();
    m_outputGradient.setZero();
    m_core.m_gradient.setZero();
    m_gradientCurrent = true;
  }

  /// Zero states and zero influence (new sequences on every stream). resetState(S0) starts
  /// from the columns of S0.
  void resetState() {
    m_core.resetState();
    clearInfluence();
  }
  /// New sequences from the states `initial` (k × B), with zero influence.
  /// @throws ShapeError unless `initial` is k × B
  /// @throws NonFiniteError if `initial` holds a NaN or an infinity (nothing changes then)
  void resetState(const MatrixView<Scalar>& initial) {
    m_core.resetState(initial);
    clearInfluence();
  }
  /// A new sequence on stream b alone: zero state and zero influence; the other streams go on.
  /// A pending influence update is performed first (for every stream), so the others keep it.
  /// @throws ShapeError unless 0 ≤ stream < B
  void resetStream(Index stream) {
    m_core.checkedStream(stream);
    if (m_pending && m_core.sameCell()) updateInfluence(nullptr);
    m_core.resetStream(stream);
    const Index streams = m_core.streams();
    for (const GroupPlan& plan : m_plans) {
      Scalar* block = m_influence.data() + plan.valueOffset * streams;
      const Index size = plan.rowCount * plan.columnCount;
      if (isHome(plan))
        for (Index v = 0; v < size; ++v) block[v * streams + stream] = Scalar(0);
      else
        std::fill(block + stream * size, block + (stream + 1) * size, Scalar(0));
    }
  }

  /// s_t of every stream, k × B (k values per column; [h; c] for an LSTM).
  const Matrix<Scalar>& state() const { return m_core.state(); }
  /// y_t of every stream, o × B (h for the gated cells).
  const Matrix<Scalar>& outputs() const { return m_core.outputs(); }
  /// The cell the engine is bound to.
  const CellType& cell() const { return m_core.cell(); }
  /// Batch steps since construction or the last resetState().
  Index steps() const { return m_core.steps(); }
  /// B, the streams advanced together.
  Index streams() const { return m_core.streams(); }
  /// The streams and threads the engine was built with.
  Batch batch() const { return {m_core.streams(), m_core.threads()}; }
  /// The options the engine was built with.
  const Options& options() const { return m_config.options; }
  /// The pattern M_n the engine keeps.
  const SnApPattern& pattern() const { return m_pattern; }

  /// Ĵ_t[row, j] of stream `stream` for parameter j (θ index): 0 outside the pattern.
  Scalar influence(Index row, Index j, Index stream = 0) {
    if (row < 0 || row >= m_core.m_stateSize)
      detail::fail<ShapeError>("row", "an index in [0, " + detail::describe(m_core.m_stateSize) + ")", row);
    if (j < 0 || j >= m_pattern.parameterCount())
      detail::fail<ShapeError>("j", "an index in [0, " + detail::describe(m_pattern.parameterCount()) + ")", j);
    m_core.checkedStream(stream);
    if (m_pending) {
      m_core.requireUnchangedCell("influence");
      updateInfluence(nullptr);
    }
    const Index g = m_pattern.groupOf(j);
    const GroupPlan& plan = m_plans[static_cast<std::size_t>(g)];
    const auto rows = m_pattern.group(g).rows;
    const auto it = std::lower_bound(rows.begin(), rows.end(), static_cast<StorageIndex>(row));
    if (it == rows.end() || *it != row) return Scalar(0);
    const auto* columns = m_columnParameter.data() + plan.columnOffset;
    const Index c = std::find(columns, columns + plan.columnCount, static_cast<StorageIndex>(j)) - columns;
    return m_influence[valueIndex(plan, it - rows.begin(), c, stream)];
  }

  /// Performs the lazy influence update of the last step now (it otherwise runs at the next
  /// accumulate() or step()).
  void flush() {
    if (!m_pending) return;
    m_core.requireUnchangedCell("flush");
    updateInfluence(nullptr);
  }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the states, the kept
  /// influence values (B × keptEntries: one row per stream, group blocks in pattern order,
  /// each row-major), the θ-ordered gradient of the influence (`gradient`) and of the same-step
  /// terms (`output_gradient`: the output's own parameters, the per-layer mode's), kept apart as
  /// the engine sums them, and the last step's factors with the flag
  /// saying whether Ĵ still has to take that step (saved as is rather than flushed: the
  /// update fused with accumulate() rounds differently from a flush followed by accumulate(),
  /// and a resumed run must take the same path). The layout does not depend on the threads.
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, m_config.name);
    putScalar<std::int64_t>(archive, prefix + "n", m_config.options.n);
    putScalar<std::int64_t>(archive, prefix + "per_layer", m_config.options.perLayer ? 1 : 0);
    const Index streams = m_core.streams(), kept = m_pattern.keptEntries();
    Matrix<Scalar> influence(streams, kept);
    for (Index b = 0; b < streams; ++b)
      forEachValue(b, [&](Index flat, Index stored) { influence(b, flat) = m_influence[stored]; });
    putArray(archive, prefix + "influence", influence);
    Vector<Scalar> gradient = Vector<Scalar>::Zero(m_core.m_gradient.size());
    for (std::size_t c = 0; c < m_columnParameter.size(); ++c) gradient[m_columnParameter[c]] = groupGradient()[c];
    putArray(archive, prefix + "gradient", gradient);
    putArray(archive, prefix + "output_gradient", m_outputGradient);
    putScalar<std::int64_t>(archive, prefix + "pending", m_pending ? 1 : 0);
    m_core.saveStep(archive, prefix + "step/", m_pending);
  }
  /// Restores what saveState wrote (with any thread count), checked against the bound cell,
  /// B and n (FormatError naming the array otherwise); on any error the engine is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    SnAp loaded(detail::TraceTag{}, cell(), m_config, batch());
    loaded.m_core.load(archive, prefix, m_config.name);
    readScalar<std::int64_t>(archive, prefix + "n", m_config.options.n, m_config.options.n);
    const std::int64_t perLayer = m_config.options.perLayer ? 1 : 0;
    readScalar<std::int64_t>(archive, prefix + "per_layer", perLayer, perLayer);
    const Index streams = loaded.streams(), kept = loaded.m_pattern.keptEntries();
    const Matrix<Scalar> influence = readMatrix<Matrix<Scalar>>(archive, prefix + "influence", streams, kept);
    for (Index b = 0; b < streams; ++b)
      loaded.forEachValue(b, [&](Index flat, Index stored) { loaded.m_influence[stored] = influence(b, flat); });
    const Vector<Scalar> gradient =
        readVector<Scalar>(archive, prefix + "gradient", loaded.m_core.m_gradient.size());
    for (std::size_t c = 0; c < loaded.m_columnParameter.size(); ++c)
      loaded.groupGradient()[c] = gradient[loaded.m_columnParameter[c]];
    loaded.m_outputGradient = readVector<Scalar>(archive, prefix + "output_gradient", loaded.m_outputGradient.size());
    loaded.m_gradientCurrent = false;
    // A step is pending only after one was taken.
    loaded.m_pending = readScalar<std::int64_t>(archive, prefix + "pending", 0, loaded.steps() > 0 ? 1 : 0) == 1;
    loaded.m_core.loadStep(archive, prefix + "step/");
    *this = std::move(loaded);
  }

  /// The fixed units of work of an influence update (whole groups or column tiles of about
  /// equal cost, from the pattern alone); the threads take contiguous shares of them.
  Index workUnits() const { return static_cast<Index>(m_unitStart.size()) - 1; }

  /// Influence values stored: keptEntries() of the pattern for each of the B streams.
  Index valueCount() const { return m_influence.size(); }
  /// Bytes of the index arrays that address the influence values (shared by the streams).
  std::size_t indexBytes() const {
    const std::size_t indices = m_rows.size() + m_localStart.size() + m_localColumn.size() + m_localEntry.size() +
                                m_entries.size() + m_columnParameter.size() + m_columnSource.size() +
                                m_homeLocal.size() + m_homeEntry.size() + m_factorEntries.size();
    return indices * sizeof(StorageIndex) + m_plans.size() * sizeof(GroupPlan) + m_segments.size() * sizeof(Segment) +
           m_pieces.size() * sizeof(Piece) + m_unitStart.size() * sizeof(Index);
  }
  /// Bytes of the influence state of all B streams: its values plus the index arrays that address them.
  std::size_t bytes() const { return static_cast<std::size_t>(valueCount()) * sizeof(Scalar) + indexBytes(); }
  /// Bytes of the per-step scratch: D_t's needed entries, the factors, sources and δ of the B
  /// streams, and each thread's workspace (a column tile of the largest block, D_t[R, R]).
  std::size_t workspaceBytes() const {
    std::size_t bytes = static_cast<std::size_t>(m_dynamicsValues.size() + m_factors.size() + m_factorColumns.size() +
                                                  m_graphValues.size() + m_sourcesT.size() + m_deltaT.size() +
                                                  m_spatialGradients.size() + m_spatialFactors.size()) * sizeof(Scalar);
    for (const Workspace& workspace : m_workspaces)
      bytes += static_cast<std::size_t>(workspace.block.size() + workspace.dense.size() + workspace.rowWeights.size() +
                                        workspace.coefficients.size()) * sizeof(Scalar) + workspace.gemm.bytes();
    return bytes;
  }

protected:
  /// An engine of the SnAp family as `config` says (SnAp-n, e-prop, RFLO).
  SnAp(detail::TraceTag, const CellType& cell, const detail::TraceConfig& config, const Batch& batch)
      : m_core(cell, batch), m_config(config) {
    const std::string options = std::string(config.name) + "Options::";
    if (config.options.n < 1) detail::fail<ValueError>(options + "n", "a number of steps n >= 1", config.options.n);
    if (std::isnan(config.options.denseBlockAbove))
      detail::fail<ValueError>(options + "denseBlockAbove", "a density threshold (a number)", config.options.denseBlockAbove);
    if constexpr (!requirement::HasInternalCouplings<CellType>)
      if (config.internal) detail::fail<UsageError>(config.name, "a cell with internalGraph()", "a cell without");
    build();
  }

private:
  /// How a group's block is updated each step.
  enum class Kernel {
    None,      ///< no row: a parameter whose influence on the state is dropped (or never exists)
    HomeRow,   ///< one row (SnAp-1 on RNN/GRU, the LSTM output gate): in place, fused
    HomePair,  ///< two rows (SnAp-1's h and c home block of the LSTM): in place, fused
    Sparse,    ///< D_t[R, R] as sparse rows, accumulated in registers
    Dense,     ///< D_t[R, R] dense enough for a matrix–matrix product
  };

  /// Where one group's data lives in the flat arrays.
  struct GroupPlan {
    Kernel kernel;
    Index rowCount, columnCount;
    Index valueOffset;    ///< first influence value of one stream; B times that in m_influence
    Index rowOffset;      ///< first of its rows in m_rows
    Index columnOffset;   ///< first of its columns in the group-ordered column arrays
    Index localOffset;    ///< first of its rowCount + 1 entries in m_localStart
    Index segmentOffset;  ///< first of its segments
    Index segmentCount;
  };
  /// A run of a group's columns with the same factor (one weight row's active entries, say):
  /// their I_t entries are F_t[:, factor] × z[source] on the factor's rows in the group, the
  /// homes [homeBegin, homeEnd) of m_homeLocal (local row) and m_homeEntry (factor pattern entry).
  /// Columns [begin, contiguousEnd) have consecutive sources from firstSource (a dense row),
  /// so their sources are read without a gather.
  struct Segment {
    StorageIndex begin, end;  ///< columns, relative to the group
    StorageIndex factor;      ///< the factor of the layout
    StorageIndex contiguousEnd, firstSource;
    StorageIndex homeBegin, homeEnd;
  };
  /// Columns [begin, end) of one group, with the segments that meet them: the piece of work
  /// a unit does on that group.
  struct Piece {
    Index group;
    Index begin, end;
    Index segmentBegin, segmentEnd;
  };
  /// One thread's scratch, sized at build.
  struct Workspace {
    Vector<Scalar> block;         ///< a column tile of one stream's block (Sparse, Dense)
    Vector<Scalar> dense;         ///< D_t^b[R, R], dense row-major
    Vector<Scalar> rowWeights;    ///< δ_b[R] of one group
    Vector<Scalar> coefficients;  ///< a home block's D_t[R, R] for the B streams, then B zeros
    detail::GemmWorkspace<Scalar> gemm;
  };
  /// δ of accumulate(): k × B (column b at data + b·stride) and the same with the stream
  /// innermost (row r at transposed + r·B).
  struct Gradients {
    const Scalar* data;
    Index stride;
    const Scalar* transposed;
  };

  /// Column tiles of large groups are multiples of this (full chunks of the sparse kernel).
  static constexpr Index columnGrain = 256 / static_cast<Index>(sizeof(Scalar));
  /// The work of one unit, in multiply-adds of one stream, is about max(total / this, minUnitCost).
  static constexpr double maxUnits = 64;
  static constexpr double minUnitCost = 4096;

  /// Values of one 4 KiB page.
  static constexpr Index pageValues = 4096 / static_cast<Index>(sizeof(Scalar));

  /// The gradient in group column order.
  Scalar* groupGradient() { return m_groupGradient.data() + m_gradientShift; }
  const Scalar* groupGradient() const { return m_groupGradient.data() + m_gradientShift; }

  static bool isHome(const GroupPlan& plan) {
    return plan.kernel == Kernel::HomeRow || plan.kernel == Kernel::HomePair || plan.kernel == Kernel::None;
  }

  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (new pattern, zero influence and gradient, nothing pending) with the states and step counts
  /// kept. Built apart, so that a refusal (an influence over snap::maxArrayBytes) changes nothing.
  SnAp rebuilt() const {
    SnAp engine(detail::TraceTag{}, cell(), m_config, batch());
    engine.m_core.keepFrom(m_core);
    return engine;
  }

  /// The state gradients of loss gradients, with the same-step terms of the output's own
  /// parameters added to m_outputGradient: through the output, and in the per-layer mode of a
  /// stack down through its layers' same-step Jacobians (the stack's spatialBackward()).
  const Matrix<Scalar>& toStateGradients(const MatrixView<Scalar>& lossGradients) {
    const Matrix<Scalar>& stateGradients = m_core.toStateGradients(lossGradients);
    m_core.addOutputTerm(m_outputGradient);
    if constexpr (requirement::HasSpatialBackward<CellType>) {
      if (m_spatial) {
        const CellType& cell = m_core.cell();
        for (Index b = 0; b < m_core.streams(); ++b) {
          cell.spatialBackward(m_core.m_caches[static_cast<std::size_t>(b)], stateGradients.col(b), m_spatialGradients.col(b),
                               m_spatialFactors.col(b));
          cell.layout().template addParameterGradient<Scalar>(m_spatialFactors.col(b), m_core.m_sources.col(b),
                                                              m_outputGradient);
        }
        return m_spatialGradients;
      }
    }
    return stateGradients;
  }

  /// Where Ĵ[R[r], column c] of stream b lives in m_influence.
  Index valueIndex(const GroupPlan& plan, Index r, Index c, Index b) const {
    const Index streams = m_core.streams(), v = r * plan.columnCount + c;
    if (isHome(plan)) return (plan.valueOffset + v) * streams + b;
    return plan.valueOffset * streams + b * plan.rowCount * plan.columnCount + v;
  }
  /// Calls visit(flat, stored) for each of stream b's values: its index in pattern order
  /// (each block row-major, as saved) and in m_influence.
  template <class Visit>
  void forEachValue(Index b, Visit&& visit) const {
    for (const GroupPlan& plan : m_plans)
      for (Index r = 0; r < plan.rowCount; ++r)
        for (Index c = 0; c < plan.columnCount; ++c)
          visit(plan.valueOffset + r * plan.columnCount + c, valueIndex(plan, r, c, b));
  }

  /// Builds the pattern, the flat plan of the per-step update (docs/math.md §4 grouping), the
  /// units of work and the workspaces.
  void build() {
    const CellType& cell = m_core.cell();
    const SparsityPattern& graph = followedGraph();
    PatternBlocks blocks;
    m_spatial = false;
    if constexpr (requirement::HasSpatialBackward<CellType>) {
      if (m_config.options.perLayer && cell.layerCount() > 1) {
        blocks = cell.layerBlocks();
        m_spatial = true;
      }
    }
    m_pattern = SnApPattern(cell.factorPattern(), cell.layout().factors(), graph, m_config.options.n, blocks);
    const Index streams = m_core.streams();
    detail::requireArray<Scalar>("cell", m_pattern.keptEntries(), "SnAp influence (the pattern's kept entries)");
    detail::requireArray<Scalar>("Batch::streams", streams, m_pattern.keptEntries(),
                                 "SnAp influence (the pattern's kept entries for each stream)");
    m_core.resize();
    const ParameterLayout& layout = cell.layout();
    const SparsityPattern& factorRows = cell.factorPattern();

    m_plans.clear();
    m_segments.clear();
    m_homeLocal.clear();
    m_homeEntry.clear();
    for (auto* indices : {&m_rows, &m_localStart, &m_localColumn, &m_localEntry, &m_entries, &m_columnParameter,
                          &m_columnSource})
      indices->clear();
    std::vector<StorageIndex> entrySlot(static_cast<std::size_t>(graph.nonZeros()), -1);
    std::vector<StorageIndex> localOf(static_cast<std::size_t>(cell.stateSize()), -1);
    std::vector<double> columnCost;  // per group: one stream's multiply-adds per column
    Index values = 0, largestRows = 0, largestDense = 0, tallestDense = 0;
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
      columnCost.push_back(static_cast<double>(rowCount + localEntries));
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
          const auto homeBegin = static_cast<StorageIndex>(m_homeLocal.size());
          for (Index e = factorRows.rowStart(factor); e < factorRows.rowStart(factor + 1); ++e) {
            const StorageIndex local = localOf[static_cast<std::size_t>(factorRows.column(e))];
            if (local < 0) continue;  // a row outside the group (another layer, in the per-layer mode)
            m_homeLocal.push_back(local);
            m_homeEntry.push_back(static_cast<StorageIndex>(e));
          }
          m_segments.push_back({static_cast<StorageIndex>(c), static_cast<StorageIndex>(c + 1), factor,
                                static_cast<StorageIndex>(c + 1), source, homeBegin,
                                static_cast<StorageIndex>(m_homeLocal.size())});
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
      if (rowCount == 0) {
        plan.kernel = Kernel::None;
      } else if (rowCount == 1) {
        plan.kernel = Kernel::HomeRow;
      } else if (rowCount == 2) {
        plan.kernel = Kernel::HomePair;
      } else if (static_cast<double>(localEntries) >=
                 m_config.options.denseBlockAbove * static_cast<double>(rowCount * rowCount)) {
        plan.kernel = Kernel::Dense;
        largestDense = std::max(largestDense, rowCount * rowCount);
        tallestDense = std::max(tallestDense, rowCount);
      }
      if (!isHome(plan)) largestRows = std::max(largestRows, rowCount);
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
    const Index largestTile = buildUnits(columnCost);
    Index widestDenseTile = 0;
    for (const Piece& piece : m_pieces)
      if (m_plans[static_cast<std::size_t>(piece.group)].kernel == Kernel::Dense)
        widestDenseTile = std::max(widestDenseTile, piece.end - piece.begin);

    // The factor pattern's entries the homes use (in the per-layer mode of a stack, the layers'
    // own): the only factor values computed per step when the cell can compute a subset.
    m_factorEntries.assign(m_homeEntry.begin(), m_homeEntry.end());
    std::sort(m_factorEntries.begin(), m_factorEntries.end());
    m_factorEntries.erase(std::unique(m_factorEntries.begin(), m_factorEntries.end()), m_factorEntries.end());
    for (StorageIndex& entry : m_homeEntry)
      entry = static_cast<StorageIndex>(std::lower_bound(m_factorEntries.begin(), m_factorEntries.end(), entry) -
                                        m_factorEntries.begin());
    const auto entries = static_cast<Index>(m_entries.size());
    const Index factors = static_cast<Index>(m_factorEntries.size()), sourceSize = layout.sourceSize();
    detail::requireArray<Scalar>("Batch::streams", streams, detail::checkedSum("cell", entries, factors + sourceSize),
                                 "SnAp per-step scratch (D_t's needed entries, factors and sources of each stream)");
    m_influence = Vector<Scalar>::Zero(values * streams);
    m_dynamicsValues = Matrix<Scalar>::Zero(entries, streams);
    m_factors = Vector<Scalar>::Zero(factors * streams);
    // Per stream, every factor value when the cell computes them all (then gathered), or the subset.
    const bool subset = requirement::HasFactorSubset<CellType>;
    m_factorColumns = Matrix<Scalar>::Zero(subset ? (streams > 1 ? factors : 0) : factorRows.nonZeros(),
                                           subset && streams == 1 ? 0 : streams);
    m_graphValues = Matrix<Scalar>::Zero(m_config.internal ? graph.nonZeros() : 0, streams);
    m_outputGradient = Vector<Scalar>::Zero(layout.size());
    m_spatialGradients = Matrix<Scalar>::Zero(m_spatial ? cell.stateSize() : 0, streams);
    m_spatialFactors = Matrix<Scalar>::Zero(m_spatial ? layout.factorCount() : 0, streams);
    m_sourcesT = streams > 1 ? Matrix<Scalar>::Zero(streams, sourceSize) : Matrix<Scalar>();
    m_deltaT = streams > 1 ? Matrix<Scalar>::Zero(streams, cell.stateSize()) : Matrix<Scalar>();
    m_workspaces.clear();
    for (int t = 0; t < m_core.threads(); ++t) {
      Workspace workspace;
      workspace.block = Vector<Scalar>::Zero(largestTile);
      workspace.dense = Vector<Scalar>::Zero(largestDense);
      workspace.rowWeights = Vector<Scalar>::Zero(largestRows);
      workspace.coefficients = Vector<Scalar>::Zero(5 * streams);
      if (largestDense > 0) workspace.gemm = detail::GemmWorkspace<Scalar>(widestDenseTile, tallestDense, tallestDense);
      m_workspaces.push_back(std::move(workspace));
    }
    // The gradient is walked in step with the home blocks' values: placed half a page apart
    // from them (mod 4 KiB), so that its loads never wait on a store to a value at the same
    // page offset (4K aliasing). Only the speed depends on the shift.
    m_groupGradient = Vector<Scalar>::Zero(layout.size() + pageValues);
    const auto distance = reinterpret_cast<std::uintptr_t>(m_groupGradient.data()) -
                          reinterpret_cast<std::uintptr_t>(m_influence.data());
    const std::uintptr_t page = pageValues * sizeof(Scalar);
    m_gradientShift = static_cast<Index>((page / 2 + page - distance % page) % page / sizeof(Scalar));
    m_gradientCurrent = false;
    m_pending = false;
  }

  /// Splits the groups, in order, into units of about equal cost (columnCost[g] per column):
  /// groups are packed whole, and a group above twice one unit's cost (and of at least four
  /// grains) is cut into column tiles of equal width in whole grains, one unit each. The split depends on the pattern alone.
  /// Returns the largest tile (rows × columns) of a Sparse or Dense group.
  Index buildUnits(const std::vector<double>& columnCost) {
    m_pieces.clear();
    m_unitStart.assign(1, 0);
    double total = 0;
    for (std::size_t g = 0; g < m_plans.size(); ++g) total += columnCost[g] * static_cast<double>(m_plans[g].columnCount);
    const double target = std::max(minUnitCost, total / maxUnits);
    double cost = 0;  // of the unit being filled
    auto closeUnit = [&] {
      if (static_cast<Index>(m_pieces.size()) > m_unitStart.back()) m_unitStart.push_back(static_cast<Index>(m_pieces.size()));
      cost = 0;
    };
    auto addPiece = [&](Index g, Index begin, Index end) {
      const GroupPlan& plan = m_plans[static_cast<std::size_t>(g)];
      Piece piece{g, begin, end, plan.segmentOffset, plan.segmentOffset};
      while (m_segments[static_cast<std::size_t>(piece.segmentBegin)].end <= begin) ++piece.segmentBegin;
      piece.segmentEnd = piece.segmentBegin;
      while (piece.segmentEnd < plan.segmentOffset + plan.segmentCount &&
             m_segments[static_cast<std::size_t>(piece.segmentEnd)].begin < end)
        ++piece.segmentEnd;
      m_pieces.push_back(piece);
      return isHome(plan) ? Index(0) : plan.rowCount * (end - begin);
    };
    Index largestTile = 0;
    for (std::size_t g = 0; g < m_plans.size(); ++g) {
      const Index columns = m_plans[g].columnCount;
      const double groupCost = columnCost[g] * static_cast<double>(columns);
      if (groupCost > 2 * target && columns >= 4 * columnGrain) {
        closeUnit();
        const auto tiles = static_cast<Index>(std::ceil(groupCost / target));
        const Index width = ((columns + tiles - 1) / tiles + columnGrain - 1) / columnGrain * columnGrain;
        for (Index c = 0; c < columns; c += width) {
          largestTile = std::max(largestTile, addPiece(static_cast<Index>(g), c, std::min(columns, c + width)));
          closeUnit();
        }
        continue;
      }
      if (cost > 0 && cost + groupCost > target) closeUnit();
      largestTile = std::max(largestTile, addPiece(static_cast<Index>(g), 0, columns));
      cost += groupCost;
      if (cost >= target) closeUnit();
    }
    closeUnit();
    return largestTile;
  }

  void clearInfluence() {
    m_influence.setZero();
    m_pending = false;
  }

  /// Calls work(plan, piece, workspace) for every piece of thread t's share of the units.
  template <class Work>
  void forEachPiece(int t, Work&& work) {
    const auto units = static_cast<Index>(m_unitStart.size()) - 1;
    const detail::Range part = detail::partOf(units, t, m_core.threads());
    Workspace& workspace = m_workspaces[static_cast<std::size_t>(t)];
    for (Index p = m_unitStart[static_cast<std::size_t>(part.begin)]; p < m_unitStart[static_cast<std::size_t>(part.end)]; ++p) {
      const Piece& piece = m_pieces[static_cast<std::size_t>(p)];
      work(m_plans[static_cast<std::size_t>(piece.group)], piece, workspace);
    }
  }

  /// Ĵ ← M_n ⊙ (I_t + D_t Ĵ) for every stream, one group block at a time (docs/math.md §4), and,
  /// when δ_t is given, g += Σ_b Ĵ_{t,b}ᵀ δ_b in the same pass. First each stream's D_t entries,
  /// factors and sources (per stream, split over the threads), then the units. For n = 1 every
  /// block is a home block (one row; the LSTM's h and c), so only D_t's diagonal or 2 × 2
  /// home blocks are computed and the step costs O(p) per stream.
  void updateInfluence(const Gradients* delta) {
    const CellType& cell = m_core.cell();
    const Index streams = m_core.streams();
    const Index sourceSize = m_core.m_sources.rows();
    const auto factorCount = m_factorEntries.size();
    m_core.workers().run([&](int t) {
      const detail::Range part = detail::partOf(streams, t, m_core.threads());
      for (Index b = part.begin; b < part.end; ++b) {
        const StepCache<Scalar>& cache = m_core.m_caches[static_cast<std::size_t>(b)];
        Scalar* dynamics = m_dynamicsValues.col(b).data();
        if constexpr (requirement::HasInternalCouplings<CellType>) {
          if (m_config.internal) {
            Scalar* all = m_graphValues.col(b).data();
            cell.internalJacobian(cache, std::span<Scalar>(all, static_cast<std::size_t>(m_graphValues.rows())));
            for (std::size_t i = 0; i < m_entries.size(); ++i) dynamics[i] = all[m_entries[i]];
          }
        }
        if (!m_config.internal) cell.dynamicsJacobian(cache, m_entries, std::span<Scalar>(dynamics, m_entries.size()));
        // The factors the homes use, with the stream innermost for B streams.
        if constexpr (requirement::HasFactorSubset<CellType>) {
          if (streams == 1) {
            cell.immediateFactors(cache, m_factorEntries, std::span<Scalar>(m_factors.data(), factorCount));
            continue;
          }
          Scalar* column = m_factorColumns.col(b).data();
          cell.immediateFactors(cache, m_factorEntries, std::span<Scalar>(column, factorCount));
          for (std::size_t i = 0; i < factorCount; ++i) m_factors[static_cast<Index>(i) * streams + b] = column[i];
        } else {
          Scalar* column = m_factorColumns.col(b).data();
          cell.immediateFactors(cache, std::span<Scalar>(column, static_cast<std::size_t>(m_factorColumns.rows())));
          for (std::size_t i = 0; i < factorCount; ++i) m_factors[static_cast<Index>(i) * streams + b] = column[m_factorEntries[i]];
        }
        if (streams == 1) continue;
        for (Index s = 0; s < sourceSize; ++s) m_sourcesT(b, s) = m_core.m_sources(s, b);
      }
    });
    m_core.workers().run([&](int t) {
      forEachPiece(t, [&](const GroupPlan& plan, const Piece& piece, Workspace& workspace) {
        switch (plan.kernel) {
          case Kernel::None:
            return;
          case Kernel::HomeRow:
            if (streams == 1)
              updateHomeBlock<1, 1>(plan, piece, workspace, delta);
            else
              updateHomeBlock<1, Eigen::Dynamic>(plan, piece, workspace, delta);
            return;
          case Kernel::HomePair:
            if (streams == 1)
              updateHomeBlock<2, 1>(plan, piece, workspace, delta);
            else
              updateHomeBlock<2, Eigen::Dynamic>(plan, piece, workspace, delta);
            return;
          case Kernel::Sparse:
          case Kernel::Dense:
            updateBlock(plan, piece, workspace, delta);
            return;
        }
      });
    });
    m_pending = false;
  }

  /// What the home-block kernel needs per group (N rows) and per segment (the factors): for one
  /// stream (Width 1) the values, for B streams a pointer to B values each.
  template <int N, int Width>
  struct HomeCoefficients {
    using Coefficient = std::conditional_t<Width == 1, Scalar, const Scalar*>;
    Coefficient dynamics[N][N] = {};
    Coefficient weight[N] = {};
    Coefficient factor[N] = {};
    Scalar* rows[N] = {};
  };

  /// A piece of a block of N = 1 or 2 rows (SnAp-1's home rows), for all streams: J ← D_t[R, R] J
  /// + I_t and, when δ_t is given, g += Σ_b J_bᵀ δ_b[R], in place and in one pass over the
  /// columns. Width is B when known at compile time (1), else Eigen::Dynamic.
  template <int N, int Width>
  void updateHomeBlock(const GroupPlan& plan, const Piece& piece, Workspace& workspace, const Gradients* delta) {
    constexpr bool single = Width == 1;
    const Index streams = single ? Index(1) : m_core.streams();
    const Index width = plan.columnCount * streams;
    Scalar* block = m_influence.data() + plan.valueOffset * streams;
    HomeCoefficients<N, Width> k;
    // B streams: D_t[R, R] gathered into the workspace, stream innermost, then B zeros.
    Scalar* coefficients = workspace.coefficients.data();
    const Scalar* zeros = coefficients + N * N * streams;
    if constexpr (!single) {
      std::fill(coefficients, coefficients + (N * N + 1) * streams, Scalar(0));
      for (int a = 0; a < N; ++a)
        for (int c = 0; c < N; ++c) k.dynamics[a][c] = coefficients + (a * N + c) * streams;
    }
    bool withGradient = false;
    for (int a = 0; a < N; ++a) {
      for (auto e = m_localStart[static_cast<std::size_t>(plan.localOffset + a)];
           e < m_localStart[static_cast<std::size_t>(plan.localOffset + a + 1)]; ++e) {
        const StorageIndex c = m_localColumn[static_cast<std::size_t>(e)];
        const Scalar* values = m_dynamicsValues.data() + m_localEntry[static_cast<std::size_t>(e)];
        if constexpr (single) {
          k.dynamics[a][c] = *values;
        } else {
          Scalar* target = coefficients + (a * N + c) * streams;
          for (Index b = 0; b < streams; ++b) target[b] = values[b * m_dynamicsValues.rows()];
        }
      }
      k.rows[a] = block + a * width;
      if (delta != nullptr) {
        const Scalar* weights = delta->transposed + m_rows[static_cast<std::size_t>(plan.rowOffset + a)] * streams;
        if constexpr (single)
          k.weight[a] = *weights;
        else
          k.weight[a] = weights;
        withGradient = withGradient || std::any_of(weights, weights + streams, [](Scalar w) { return w != Scalar(0); });
      }
    }
    const Scalar* z = single ? m_core.m_sources.data() : m_sourcesT.data();
    const StorageIndex* source = m_columnSource.data() + plan.columnOffset;
    Scalar* gradient = groupGradient() + plan.columnOffset;
    for (Index s = piece.segmentBegin; s < piece.segmentEnd; ++s) {
      const Segment& segment = m_segments[static_cast<std::size_t>(s)];
      for (int a = 0; a < N; ++a) {
        if constexpr (single)
          k.factor[a] = Scalar(0);
        else
          k.factor[a] = zeros;
      }
      for (StorageIndex h = segment.homeBegin; h < segment.homeEnd; ++h) {
        const StorageIndex home = m_homeLocal[static_cast<std::size_t>(h)];
        const Scalar* factors = m_factors.data() + m_homeEntry[static_cast<std::size_t>(h)] * streams;
        if constexpr (single)
          k.factor[home] = *factors;
        else
          k.factor[home] = factors;
      }
      const Index first = std::max<Index>(segment.begin, piece.begin);
      const Index contiguousEnd = std::min<Index>(segment.contiguousEnd, piece.end);
      const Index last = std::min<Index>(segment.end, piece.end);
      const Index dense = std::max<Index>(contiguousEnd - first, 0);
      const Index gatheredFirst = std::max<Index>(segment.contiguousEnd, first), rest = last - gatheredFirst;
      const Scalar* contiguous = z + (segment.firstSource + first - segment.begin) * streams;
      if (withGradient) {
        if (dense > 0) homeColumns<N, Width, true, false>(k, streams, first, dense, contiguous, nullptr, gradient);
        if (rest > 0) homeColumns<N, Width, true, true>(k, streams, gatheredFirst, rest, z, source + gatheredFirst, gradient);
      } else {
        if (dense > 0) homeColumns<N, Width, false, false>(k, streams, first, dense, contiguous, nullptr, gradient);
        if (rest > 0) homeColumns<N, Width, false, true>(k, streams, gatheredFirst, rest, z, source + gatheredFirst, gradient);
      }
    }
  }

  /// Lanes of the home kernel's stream loop: 64 bytes, accumulated in registers.
  static constexpr int lanes = 64 / static_cast<int>(sizeof(Scalar));

  /// Columns [first, first + count) of a home block for the B streams, with sources
  /// consecutive from `sources` (B values per column) or (Gathered) at sources + gather[c]·B.
  /// The gradient of each column is summed over the streams in a fixed order.
  template <int N, int Width, bool WithGradient, bool Gathered>
  static void homeColumns(const HomeCoefficients<N, Width>& k, Index streams, Index first, Index count,
                          const Scalar* __restrict sources, const StorageIndex* __restrict gather,
                          Scalar* __restrict gradient) {
    Scalar* __restrict row0 = k.rows[0] + first * streams;
    Scalar* __restrict row1 = k.rows[N - 1] + first * streams;
    Scalar* __restrict g = gradient + first;
    if constexpr (Width == 1) {
      // One stream: the coefficients are scalars, the columns are vectorised.
      const Scalar d00 = k.dynamics[0][0], d01 = k.dynamics[0][N - 1], d10 = k.dynamics[N - 1][0],
                   d11 = k.dynamics[N - 1][N - 1];
      const Scalar f0 = k.factor[0], f1 = k.factor[N - 1];
      const Scalar w0 = k.weight[0], w1 = k.weight[N - 1];
      for (Index c = 0; c < count; ++c) {
        Scalar source;
        if constexpr (Gathered)
          source = sources[gather[c]];
        else
          source = sources[c];
        if constexpr (N == 1) {
          const Scalar value = d00 * row0[c] + f0 * source;
          row0[c] = value;
          if constexpr (WithGradient) g[c] += w0 * value;
        } else {
          const Scalar old0 = row0[c], old1 = row1[c];
          const Scalar value0 = d00 * old0 + d01 * old1 + f0 * source;
          const Scalar value1 = d10 * old0 + d11 * old1 + f1 * source;
          row0[c] = value0;
          row1[c] = value1;
          if constexpr (WithGradient) g[c] += w0 * value0 + w1 * value1;
        }
      }
    } else {
      // B streams: each column's B values in chunks of `lanes`, the last ones one by one.
      using Lane = Eigen::Array<Scalar, lanes, 1>;
      using In = Eigen::Map<const Lane>;
      using Out = Eigen::Map<Lane>;
      const Scalar *d00 = k.dynamics[0][0], *d01 = k.dynamics[0][N - 1], *d10 = k.dynamics[N - 1][0],
                   *d11 = k.dynamics[N - 1][N - 1], *f0 = k.factor[0], *f1 = k.factor[N - 1];
      const Scalar *w0 = k.weight[0], *w1 = k.weight[N - 1];
      const Index full = streams / lanes * lanes;
      for (Index c = 0; c < count; ++c) {
        const Scalar* __restrict z = Gathered ? sources + gather[c] * streams : sources + c * streams;
        Scalar* __restrict j0 = row0 + c * streams;
        Scalar* __restrict j1 = row1 + c * streams;
        Lane sum = Lane::Zero();
        Scalar tail = 0;
        for (Index b = 0; b < full; b += lanes) {
          if constexpr (N == 1) {
            const Lane value = In(d00 + b) * Out(j0 + b) + In(f0 + b) * In(z + b);
            Out(j0 + b) = value;
            if constexpr (WithGradient) sum += In(w0 + b) * value;
          } else {
            const Lane old0 = Out(j0 + b), old1 = Out(j1 + b);
            const Lane value0 = In(d00 + b) * old0 + In(d01 + b) * old1 + In(f0 + b) * In(z + b);
            const Lane value1 = In(d10 + b) * old0 + In(d11 + b) * old1 + In(f1 + b) * In(z + b);
            Out(j0 + b) = value0;
            Out(j1 + b) = value1;
            if constexpr (WithGradient) sum += In(w0 + b) * value0 + In(w1 + b) * value1;
          }
        }
        for (Index b = full; b < streams; ++b) {
          if constexpr (N == 1) {
            const Scalar value = d00[b] * j0[b] + f0[b] * z[b];
            j0[b] = value;
            if constexpr (WithGradient) tail += w0[b] * value;
          } else {
            const Scalar old0 = j0[b], old1 = j1[b];
            const Scalar value0 = d00[b] * old0 + d01[b] * old1 + f0[b] * z[b];
            const Scalar value1 = d10[b] * old0 + d11[b] * old1 + f1[b] * z[b];
            j0[b] = value0;
            j1[b] = value1;
            if constexpr (WithGradient) tail += w0[b] * value0 + w1[b] * value1;
          }
        }
        if constexpr (WithGradient) g[c] += sum.sum() + tail;
      }
    }
  }

  /// A column tile of a Sparse or Dense block, stream by stream: next = D_t^b[R, R] J_b[:, tile]
  /// + I_t^b[R, tile] in the workspace, copied back, and, when δ_t is given, its gradient
  /// J_b[R, tile]ᵀ δ_b[R] added in stream order.
  void updateBlock(const GroupPlan& plan, const Piece& piece, Workspace& workspace, const Gradients* delta) {
    const Index streams = m_core.streams(), rows = plan.rowCount, columns = plan.columnCount;
    const Index c0 = piece.begin, width = piece.end - piece.begin;
    Scalar* next = workspace.block.data();
    for (Index b = 0; b < streams; ++b) {
      Scalar* block = m_influence.data() + plan.valueOffset * streams + b * rows * columns;
      const Scalar* dynamics = m_dynamicsValues.col(b).data();
      if (plan.kernel == Kernel::Sparse) {
        detail::sparseRowProduct(rows, width, columns, width, m_localStart.data() + plan.localOffset,
                                 m_localColumn.data(), m_localEntry.data(), dynamics, block + c0, next);
      } else {
        gatherDense(plan, dynamics, workspace.dense.data());
        std::fill(next, next + rows * width, Scalar(0));
        // nextᵀ (width × rows, col-major) = J_b[:, tile]ᵀ (width × rows) · D[R, R]ᵀ.
        workspace.gemm.template accumulate<Eigen::ColMajor, Eigen::ColMajor>(width, rows, rows, block + c0, columns,
                                                                             workspace.dense.data(), rows, next, width);
      }
      addImmediate(plan, piece, b, next);
      if (width == columns)
        std::copy(next, next + rows * width, block);
      else
        for (Index r = 0; r < rows; ++r) std::copy(next + r * width, next + (r + 1) * width, block + r * columns + c0);
      if (delta == nullptr) continue;
      const Scalar* weights = delta->data + b * delta->stride;
      for (Index r = 0; r < rows; ++r) workspace.rowWeights[r] = weights[m_rows[static_cast<std::size_t>(plan.rowOffset + r)]];
      Eigen::Map<Vector<Scalar>>(groupGradient() + plan.columnOffset + c0, width).noalias() +=
          Eigen::Map<const RowMatrix<Scalar>>(next, rows, width).transpose() * workspace.rowWeights.head(rows);
    }
  }

  /// D_t^b[R, R] from one stream's needed entries as a dense row-major block.
  void gatherDense(const GroupPlan& plan, const Scalar* values, Scalar* dense) const {
    const Index n = plan.rowCount;
    std::fill(dense, dense + n * n, Scalar(0));
    for (Index b = 0; b < n; ++b)
      for (auto e = m_localStart[static_cast<std::size_t>(plan.localOffset + b)];
           e < m_localStart[static_cast<std::size_t>(plan.localOffset + b + 1)]; ++e)
        dense[b * n + m_localColumn[static_cast<std::size_t>(e)]] =
            values[m_localEntry[static_cast<std::size_t>(e)]];
  }

  /// tile += I_t^b[R, tile] for stream b: each segment's factor times z_b[source] on its home
  /// rows (`tile` holds the piece's columns, rows of their count).
  void addImmediate(const GroupPlan& plan, const Piece& piece, Index b, Scalar* tile) const {
    const Index streams = m_core.streams(), width = piece.end - piece.begin;
    const Scalar* z = m_core.m_sources.col(b).data();
    const StorageIndex* source = m_columnSource.data() + plan.columnOffset;
    for (Index s = piece.segmentBegin; s < piece.segmentEnd; ++s) {
      const Segment& segment = m_segments[static_cast<std::size_t>(s)];
      const Index first = std::max<Index>(segment.begin, piece.begin);
      const Index contiguousEnd = std::min<Index>(segment.contiguousEnd, piece.end);
      const Index last = std::min<Index>(segment.end, piece.end);
      const Index gatheredFirst = std::max<Index>(segment.contiguousEnd, first);
      for (StorageIndex h = segment.homeBegin; h < segment.homeEnd; ++h) {
        const StorageIndex home = m_homeLocal[static_cast<std::size_t>(h)];
        const Scalar factor = m_factors[m_homeEntry[static_cast<std::size_t>(h)] * streams + b];
        Scalar* row = tile + home * width - piece.begin;
        const Scalar* contiguous = z + segment.firstSource - segment.begin;
        for (Index c = first; c < contiguousEnd; ++c) row[c] += factor * contiguous[c];
        for (Index c = gatheredFirst; c < last; ++c) row[c] += factor * z[source[c]];
      }
    }
  }

  /// g += Σ_b Ĵ_b[R, piece]ᵀ δ_b[R] for one piece (an accumulate() after the update).
  void addGradient(const GroupPlan& plan, const Piece& piece, const Gradients& delta) {
    const Index streams = m_core.streams(), columns = plan.columnCount;
    Scalar* gradient = groupGradient() + plan.columnOffset;
    if (isHome(plan)) {
      const Scalar* block = m_influence.data() + plan.valueOffset * streams;
      for (Index r = 0; r < plan.rowCount; ++r) {
        const Scalar* weights = delta.transposed + m_rows[static_cast<std::size_t>(plan.rowOffset + r)] * streams;
        if (std::all_of(weights, weights + streams, [](Scalar w) { return w == Scalar(0); })) continue;
        const Scalar* row = block + r * columns * streams;
        if (streams == 1) {
          const Scalar weight = weights[0];
          for (Index c = piece.begin; c < piece.end; ++c) gradient[c] += weight * row[c];
        } else {
          for (Index c = piece.begin; c < piece.end; ++c)
            gradient[c] += Eigen::Map<const Vector<Scalar>>(weights, streams).dot(
                Eigen::Map<const Vector<Scalar>>(row + c * streams, streams));
        }
      }
      return;
    }
    for (Index b = 0; b < streams; ++b) {
      const Scalar* block = m_influence.data() + plan.valueOffset * streams + b * plan.rowCount * columns;
      for (Index r = 0; r < plan.rowCount; ++r) {
        const Scalar weight = delta.data[b * delta.stride + m_rows[static_cast<std::size_t>(plan.rowOffset + r)]];
        if (weight == Scalar(0)) continue;
        const Scalar* row = block + r * columns;
        for (Index c = piece.begin; c < piece.end; ++c) gradient[c] += weight * row[c];
      }
    }
  }

  /// The graph the pattern follows: the dynamics graph, or the internal couplings (e-prop, RFLO).
  const SparsityPattern& followedGraph() const {
    if constexpr (requirement::HasInternalCouplings<CellType>)
      if (m_config.internal) return m_core.cell().internalGraph();
    return m_core.cell().dynamicsGraph();
  }

  detail::EngineCore<CellType> m_core;
  detail::TraceConfig m_config;
  SnApPattern m_pattern;
  std::vector<GroupPlan> m_plans;
  std::vector<Segment> m_segments;
  std::vector<StorageIndex> m_homeLocal, m_homeEntry;  ///< the segments' homes: local row, index in m_factorEntries
  std::vector<StorageIndex> m_factorEntries;           ///< the factor pattern entries the homes use, increasing
  std::vector<StorageIndex> m_rows, m_localStart, m_localColumn, m_localEntry, m_entries;
  std::vector<StorageIndex> m_columnParameter, m_columnSource;
  std::vector<Piece> m_pieces;     ///< the units' pieces, unit by unit
  std::vector<Index> m_unitStart;  ///< unit u is pieces [m_unitStart[u], m_unitStart[u + 1])
  Vector<Scalar> m_influence;       ///< home blocks stream innermost, the others a block per stream
  Vector<Scalar> m_factors;         ///< F_t's values at m_factorEntries, stream innermost
  Matrix<Scalar> m_factorColumns;   ///< per stream, the values the cell computes (B > 1, or all of them)
  Matrix<Scalar> m_graphValues;     ///< the internal couplings' values, one column per stream (e-prop, RFLO)
  Vector<Scalar> m_outputGradient;  ///< θ-ordered same-step terms: the output's parameters, the per-layer mode's
  Matrix<Scalar> m_spatialGradients, m_spatialFactors;  ///< per-layer mode: δ̃ (k × B) and its factor gradients
  bool m_spatial = false;           ///< the per-layer mode of a stack
  Vector<Scalar> m_groupGradient;   ///< the gradient in group column order, from m_gradientShift
  Index m_gradientShift = 0;
  Matrix<Scalar> m_dynamicsValues;  ///< D_t's needed entries, one column per stream
  Matrix<Scalar> m_sourcesT;        ///< B × S: the sources z with the stream innermost (B > 1)
  Matrix<Scalar> m_deltaT;          ///< B × k: δ with the stream innermost (B > 1)
  std::vector<Workspace> m_workspaces;  ///< one per thread
  bool m_gradientCurrent = false;
  bool m_pending = false;
};

}  // namespace snap
