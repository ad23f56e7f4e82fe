#pragma once
/// @file
/// Backpropagation through time, full or truncated to windows of T steps (docs/math.md §3).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string_view>
#include <string>
#include <utility>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/engines/engine_core.hpp"
#include "snap/pattern/kernels.hpp"

namespace snap {

/// Options of the BPTT engine.
struct BPTTOptions {
  /// T: the backward pass stops at the start of each window of T batch steps; the states carry
  /// across windows. Empty means untruncated (the history grows with the sequence).
  std::optional<Index> window;
};

/// BPTT: stores each step's caches, then ε_t = δ_t + D_{t+1}ᵀ ε_{t+1}, g = Σ_t I_tᵀ ε_t over the
/// window (docs/math.md §3). The gradient is, at any time, that of the loss so far: a window still
/// open is backpropagated when gradient() is read, and committed when it closes.
///
/// Over B streams the window holds, per step, the B streams' caches, sources (S × B) and δ
/// (k × B, the state gradients of the losses on the outputs). The backward pass runs for the
/// whole batch: ε is k × B; for a gated cell the recurrent part of D_tᵀ ε is one matrix–matrix
/// product W_hhᵀ E over the B columns of the recurrent preactivation gradients E, and each stream
/// adds its direct terms from its cache (any other cell: its vectorJacobianProduct per stream);
/// the gradient, summed over the streams, is Σ e zᵀ tensor by tensor, a matrix product of depth
/// (window steps × B) for each weight. The windows of
/// truncated BPTT are the batch's: one closes every T batch steps. resetStream(b) cuts stream b's
/// backpropagation at that point of the open window, without starting a new window; so a batch
/// equals B single-stream engines when its streams reset on window boundaries. With T threads,
/// the products are split into fixed tiles of rows and the per-stream work by streams: the
/// results are bit-identical for every T.
template <class CellType_>
class BPTT {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = BPTTOptions;               ///< the engine's options

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  /// `batch` gives the streams B advanced together and the threads that share the work.
  explicit BPTT(const CellType& cell, const Options& options = {}, const Batch& batch = {})
      : m_core(cell, batch), m_options(options) {
    if (options.window && *options.window < 1)
      detail::fail<ValueError>("BPTTOptions::window", "a window T of at least 1 step", *options.window);
    if (options.window) requireHistory("BPTTOptions::window", *options.window);
    build();
  }

  /// Advances the states with the inputs x_t (m × B; a vector for one stream) and returns s_t
  /// (k × B). Closes the window first if it is full. After a mask change of the cell, the
  /// engine first rebuilds for the new masks (empty window, zero gradient, states kept). Every
  /// argument is checked before anything changes; an untruncated history that would outgrow
  /// snap::maxArrayBytes is refused (ValueError).
  const Matrix<Scalar>& step(const MatrixView<Scalar>& inputs) {
    prepareStep(inputs);
    commitStep();
    return m_core.state();
  }

  /// y_t of the step prepareStep() computed (o × B), before commitStep() takes it.
  const Matrix<Scalar>& preparedOutputs() const { return m_core.stagedOutputs(); }

  /// The first half of step(): checks x_t (that the cell keeps its sizes, and that an
  /// untruncated history can grow) and computes s_t from the current states, which it returns
  /// without changing anything else; commitStep() then takes the step. What a trainer calls to
  /// score s_t before the engine moves.
  const Matrix<Scalar>& prepareStep(const MatrixView<Scalar>& inputs) {
    m_core.requireSameSizes();
    if (!m_options.window && m_count == capacity()) requireHistory("steps", 2 * capacity());
    return m_core.stage(inputs);
  }

  /// The second half of step(): rebuilds after a mask change, closes a full window and stores
  /// the prepared step in the window.
  /// @throws UsageError without a prepareStep() since the last step or reset
  void commitStep() {
    m_core.requireStaged("commitStep");
    if (m_core.cellChanged()) {
      BPTT engine = rebuilt();
      engine.m_core.takeStaged(m_core);
      *this = std::move(engine);
    }
    if (m_options.window && m_count == *m_options.window) commitWindow();
    if (m_count == capacity()) grow();
    const Index streams = m_core.streams(), first = m_count * streams;
    m_core.commitStaged(m_caches[static_cast<std::size_t>(m_count)], m_sources.middleCols(first, streams));
    m_deltas.middleCols(first, streams).setZero();
    for (Index b = 0; b < streams; ++b) {
      m_cuts[static_cast<std::size_t>(first + b)] = m_count > 0 && m_pendingCuts[static_cast<std::size_t>(b)];
      m_pendingCuts[static_cast<std::size_t>(b)] = false;
    }
    ++m_count;
    m_totalValid = false;
  }

  /// Records the loss gradients of the last step: over the outputs y_t (o × B), or over the
  /// states s_t (k × B) for a cell whose output is the head of its state.
  void accumulate(const MatrixView<Scalar>& lossGradients) {
    m_core.checkStateGradient(lossGradients);
    if (m_count == 0)  // a mask change emptied the window after the last step
      detail::fail<UsageError>("accumulate", "a step() since the cell's masks changed", "no step");
    const Index streams = m_core.streams(), last = (m_count - 1) * streams;
    const MatrixView<Scalar> sources = m_sources.middleCols(last, streams);
    const Matrix<Scalar>& stateGradients =
        m_core.toStateGradients(lossGradients, m_caches[static_cast<std::size_t>(m_count - 1)], sources);
    m_core.addOutputTerm(m_outputGradient);
    m_deltas.middleCols(last, streams) += stateGradients;
    m_windowHasDeltas = true;
    m_totalValid = false;
  }

  /// The gradient of the loss so far, θ-ordered and summed over the streams: closed windows
  /// plus the open one.
  const Vector<Scalar>& gradient() {
    m_core.requireSameSizes();
    if (m_count == 0 || !m_windowHasDeltas) {
      m_core.cell().layout().flattenInto(m_committed, m_core.m_gradient);
      m_core.m_gradient += m_outputGradient;
      return m_core.m_gradient;
    }
    if (!m_totalValid) {
      copyTensors(m_committed, m_total);
      backward(m_total);
      m_totalValid = true;
    }
    m_core.cell().layout().flattenInto(m_total, m_core.m_gradient);
    m_core.m_gradient += m_outputGradient;
    return m_core.m_gradient;
  }

  /// Forgets the gradient so far, including the contributions of the δ already given in the
  /// open window; later δ still backpropagate through the whole window.
  void resetGradient() {
    setZero(m_committed);
    m_outputGradient.setZero();
    m_deltas.leftCols(m_count * m_core.streams()).setZero();
    m_core.m_gradient.setZero();
    m_windowHasDeltas = false;
    m_totalValid = false;
  }

  /// Closes the open window (its gradient is kept) and starts new sequences on every stream
  /// from zero states.
  void resetState() {
    commitWindow();
    m_core.resetState();
  }
  /// Closes the open window, as resetState() does, and starts from the states `initial` (k × B).
  /// @throws ShapeError unless `initial` is k × B
  /// @throws NonFiniteError if `initial` holds a NaN or an infinity (checked before the window
  ///         is closed: nothing changes then)
  void resetState(const MatrixView<Scalar>& initial) {
    m_core.checkInitialState(initial);  // before the window is closed
    commitWindow();
    m_core.resetState(initial);
  }
  /// A new sequence on stream b alone, from a zero state: inside the open window, stream b's
  /// backpropagation stops at this point (the window itself goes on; the other streams go on).
  /// @throws ShapeError unless 0 ≤ stream < B
  void resetStream(Index stream) {
    m_core.resetStream(stream);
    if (m_count > 0) m_pendingCuts[static_cast<std::size_t>(stream)] = true;
  }

  /// s_t of every stream, k × B (k values per column; [h; c] for an LSTM).
  const Matrix<Scalar>& state() const { return m_core.state(); }
  /// y_t of every stream, o × B (h for the gated cells).
  const Matrix<Scalar>& outputs() const { return m_core.outputs(); }
  /// The cell the engine is bound to.
  const CellType& cell() const { return m_core.cell(); }
  /// Batch steps since the last resetState() (closing a window does not reset it).
  Index steps() const { return m_core.steps(); }
  /// Batch steps stored in the open window.
  Index windowSteps() const { return m_count; }
  /// B, the streams advanced together.
  Index streams() const { return m_core.streams(); }
  /// The streams and threads the engine was built with.
  Batch batch() const { return {m_core.streams(), m_core.threads()}; }
  /// Bytes of the stored history of all B streams (caches, sources, state gradients and adjoints).
  std::size_t bytes() const {
    return static_cast<std::size_t>(valuesPerStep() * capacity() * m_core.streams()) * sizeof(Scalar);
  }
  /// The options the engine was built with.
  const Options& options() const { return m_options; }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the states, the open
  /// window (`window_steps` n, and its steps' caches, sources and δ as arrays B × n × …, and
  /// `window/cuts` B × n: 1 where the stream was reset before that step), `pending_cuts` (B:
  /// streams reset since the last step), the committed gradient (the cell's tensors, of the
  /// closed windows) and `output_gradient` (θ-ordered: the same-step terms of an output's own
  /// parameters).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, "BPTT");
    putScalar<std::int64_t>(archive, prefix + "window", m_options.window.value_or(0));
    putScalar<std::int64_t>(archive, prefix + "window_has_deltas", m_windowHasDeltas ? 1 : 0);
    putScalar<std::int64_t>(archive, prefix + "window_steps", m_count);
    putCaches(archive, prefix + "window/", [&](Index t, Index b) -> const StepCache<Scalar>& { return cacheAt(t, b); });
    putSteps(archive, prefix + "window/sources", 0, m_sources.rows(),
             [&](Index t, Index b) { return m_sources.col(column(t, b)).transpose(); });
    putSteps(archive, prefix + "window/deltas", 0, m_deltas.rows(),
             [&](Index t, Index b) { return m_deltas.col(column(t, b)).transpose(); });
    const Index streams = m_core.streams();
    std::vector<std::int64_t> cuts(static_cast<std::size_t>(streams * m_count));
    for (Index b = 0; b < streams; ++b)
      for (Index t = 0; t < m_count; ++t)
        cuts[static_cast<std::size_t>(b * m_count + t)] = m_cuts[static_cast<std::size_t>(column(t, b))];
    archive[prefix + "window/cuts"] = NpyArray::of(cuts.data(), {streams, m_count});
    std::vector<std::int64_t> pending(m_pendingCuts.begin(), m_pendingCuts.end());
    archive[prefix + "pending_cuts"] = NpyArray::of(pending.data(), {streams});
    const ParameterLayout& layout = m_core.cell().layout();
    for (Index t = 0; t < layout.tensorCount(); ++t)
      putArray(archive, prefix + "committed/" + layout.tensor(t).name, m_committed[static_cast<std::size_t>(t)]);
    putArray(archive, prefix + "output_gradient", m_outputGradient);
  }
  /// Restores what saveState wrote, checked against the bound cell, B and the window T
  /// (FormatError naming the array otherwise); on any error the engine is left as it was. The
  /// open window's length is checked against T and the steps taken, and every window array's
  /// shape and every value read, before the history grows to hold it. A checkpoint saved with
  /// any thread count loads with any other.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    BPTT loaded(cell(), m_options, batch());
    loaded.m_core.load(archive, prefix, "BPTT");
    const std::int64_t window = m_options.window.value_or(0);
    readScalar<std::int64_t>(archive, prefix + "window", window, window);
    const std::int64_t longest = m_options.window ? *m_options.window : std::numeric_limits<std::int32_t>::max();
    const std::int64_t count =
        readScalar<std::int64_t>(archive, prefix + "window_steps", 0, std::min<std::int64_t>(longest, loaded.m_core.steps()));
    loaded.m_windowHasDeltas = readScalar<std::int64_t>(archive, prefix + "window_has_deltas", 0, count > 0 ? 1 : 0) == 1;
    const std::int64_t streams = loaded.m_core.streams();
    const StepCache<Scalar>& shape = loaded.m_core.m_caches.front();
    std::vector<StoredArray> stored;  // every array read and checked before anything is set
    readCaches(archive, prefix + "window/", shape, count, streams, stored);
    auto readRows = [&](const char* name, Index size) {
      return readValues<Scalar>(archive, prefix + "window/" + name, {streams, count, size});
    };
    const auto sources = readRows("sources", loaded.m_sources.rows());
    const auto deltas = readRows("deltas", loaded.m_deltas.rows());
    const Domain<std::int64_t> flag{0, 1};
    const auto cuts = readValues<std::int64_t>(archive, prefix + "window/cuts", {streams, count}, flag);
    const auto pending = readValues<std::int64_t>(archive, prefix + "pending_cuts", {streams}, flag);
    const ParameterLayout& layout = cell().layout();
    for (Index t = 0; t < layout.tensorCount(); ++t)
      loaded.m_committed[static_cast<std::size_t>(t)] = readMatrix<RowMatrix<Scalar>>(
          archive, prefix + "committed/" + layout.tensor(t).name, layout.tensor(t).rows, layout.tensor(t).cols);
    loaded.m_outputGradient = readVector<Scalar>(archive, prefix + "output_gradient", layout.size());
    // Everything is read and checked: the history grows to the window's length.
    while (loaded.capacity() < count) loaded.grow();
    for (Index b = 0; b < streams; ++b)
      for (Index t = 0; t < count; ++t) {
        const auto arrays = cacheArrays(loaded.cacheAt(t, b));
        for (std::size_t i = 0; i < arrays.size(); ++i) {
          const Index rows = arrays[i].rows, cols = arrays[i].cols;
          Eigen::Map<Matrix<Scalar>>(arrays[i].data, rows, cols) =
              Eigen::Map<const RowMatrix<Scalar>>(stored[i].values.data() + (b * count + t) * rows * cols, rows, cols);
        }
      }
    auto setColumns = [&](const std::vector<Scalar>& values, Index size, auto&& target) {
      for (Index b = 0; b < streams; ++b)
        for (Index t = 0; t < count; ++t)
          target(t, b) = Eigen::Map<const Vector<Scalar>>(values.data() + (b * count + t) * size, size);
    };
    setColumns(sources, loaded.m_sources.rows(), [&](Index t, Index b) { return loaded.m_sources.col(loaded.column(t, b)); });
    setColumns(deltas, loaded.m_deltas.rows(), [&](Index t, Index b) { return loaded.m_deltas.col(loaded.column(t, b)); });
    for (Index b = 0; b < streams; ++b) {
      for (Index t = 0; t < count; ++t)
        loaded.m_cuts[static_cast<std::size_t>(loaded.column(t, b))] = cuts[static_cast<std::size_t>(b * count + t)] == 1;
      loaded.m_pendingCuts[static_cast<std::size_t>(b)] = pending[static_cast<std::size_t>(b)] == 1;
    }
    loaded.m_count = static_cast<Index>(count);
    loaded.m_totalValid = false;
    *this = std::move(loaded);
  }

private:
  /// Rows of W_hhᵀ E computed as one unit of work, and rows of the weight tensors whose
  /// gradient Σ e zᵀ is one unit: fixed splits, the same for every thread count (a larger
  /// parameter tile repacks the shared sources fewer times). One stream takes each product
  /// whole: its matrix–vector products are too small to share.
  Index recurrentTile() const {
    if constexpr (requirement::GatedCell<CellType>)
      if (m_core.streams() == 1) return m_core.cell().hiddenSize();
    return detail::EngineCore<CellType>::rowTile;
  }
  Index parameterTile() const {
    if constexpr (requirement::GatedCell<CellType>)
      if (m_core.streams() == 1) return m_core.cell().gateRows();
    return 128;
  }

  /// Column of stream b at window step t in the S × (steps·B), k × (steps·B) and
  /// 2·G·H × (steps·B) histories: the B streams of a step, then the next step's.
  Index column(Index t, Index b) const { return t * m_core.streams() + b; }
  const StepCache<Scalar>& cacheAt(Index t, Index b) const {
    return m_caches[static_cast<std::size_t>(t)][static_cast<std::size_t>(b)];
  }
  StepCache<Scalar>& cacheAt(Index t, Index b) { return m_caches[static_cast<std::size_t>(t)][static_cast<std::size_t>(b)]; }

  /// One rows × cols matrix of each stream and step of the open window, as a B × count × rows × cols
  /// array (B × count × cols for a row, `rows` = 0).
  template <class Get>
  void putSteps(NpzArchive& archive, const std::string& name, Index rows, Index cols, Get&& get) const {
    const Index count = m_count, streams = m_core.streams(), height = std::max<Index>(rows, 1), size = height * cols;
    std::vector<Scalar> values(static_cast<std::size_t>(streams * count * size));
    for (Index b = 0; b < streams; ++b)
      for (Index t = 0; t < count; ++t)
        Eigen::Map<RowMatrix<Scalar>>(values.data() + (b * count + t) * size, height, cols) = get(t, b);
    if (rows == 0)
      archive[name] = NpyArray::of(values.data(), {streams, count, cols});
    else
      archive[name] = NpyArray::of(values.data(), {streams, count, rows, cols});
  }
  /// The window's caches of the first m_count steps as arrays B × count × (the array's shape),
  /// named as cacheArrays() names them under `prefix`.
  template <class Get>
  void putCaches(NpzArchive& archive, const std::string& prefix, Get&& cacheOf) const {
    const Index count = m_count, streams = m_core.streams();
    const auto shapes = cacheArrays(m_core.m_caches.front(), prefix);
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const Index rows = shapes[i].rows, cols = shapes[i].cols, size = rows * cols;
      std::vector<Scalar> values(static_cast<std::size_t>(streams * count * size));
      for (Index b = 0; b < streams; ++b)
        for (Index t = 0; t < count; ++t) {
          const auto arrays = cacheArrays(cacheOf(t, b));
          Eigen::Map<RowMatrix<Scalar>>(values.data() + (b * count + t) * size, rows, cols) =
              Eigen::Map<const Matrix<Scalar>>(arrays[i].data, rows, cols);
        }
      if (shapes[i].isVector)
        archive[shapes[i].name] = NpyArray::of(values.data(), {streams, count, rows});
      else
        archive[shapes[i].name] = NpyArray::of(values.data(), {streams, count, rows, cols});
    }
  }
  /// What putCaches wrote, read and checked (not yet applied): one entry per cache array.
  struct StoredArray {
    std::vector<Scalar> values;  ///< B × count × rows × cols, row-major
  };
  static void readCaches(const NpzArchive& archive, const std::string& prefix, const StepCache<Scalar>& shape,
                         std::int64_t count, Index streams, std::vector<StoredArray>& stored) {
    for (const CacheArray<const Scalar*>& array : cacheArrays(shape, prefix))
      stored.push_back({array.isVector ? readValues<Scalar>(archive, array.name, {streams, count, array.rows})
                                       : readValues<Scalar>(archive, array.name, {streams, count, array.rows, array.cols})});
  }

  Index capacity() const { return static_cast<Index>(m_caches.size()); }

  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (empty window, zero gradient) with the states and step counts kept.
  BPTT rebuilt() const {
    BPTT engine(cell(), m_options, batch());
    engine.m_core.keepFrom(m_core);
    return engine;
  }

  /// Values stored per step and stream: the factors, z, δ and the adjoint e.
  Index valuesPerStep() const {
    const CellType& cell = m_core.cell();
    return m_core.m_caches.front().size() + cell.layout().sourceSize() + cell.stateSize() + cell.layout().factorCount();
  }

  /// Refuses a history of `steps` steps of B streams whose arrays would exceed snap::maxArrayBytes.
  void requireHistory(std::string_view argument, Index steps) const {
    const CellType& cell = m_core.cell();
    const Index perStep = m_core.m_caches.front().size();
    const Index columns = detail::checkedProduct(argument, steps, m_core.streams());
    detail::requireArray<StepCache<Scalar>>(argument, columns, "history of step caches");
    detail::requireArray<Scalar>(argument, columns, perStep, "history of step factors");
    detail::requireArray<Scalar>(argument, columns, cell.layout().sourceSize(), "history of sources");
    detail::requireArray<Scalar>(argument, columns, cell.stateSize(), "history of state gradients");
    detail::requireArray<Scalar>(argument, columns, cell.layout().factorCount(), "history of adjoints");
  }

  void build() {
    m_core.resize();
    const CellType& cell = m_core.cell();
    const Index initial = m_options.window ? *m_options.window : 16, streams = m_core.streams();
    m_caches.assign(static_cast<std::size_t>(initial),
                    std::vector<StepCache<Scalar>>(static_cast<std::size_t>(streams), cell.makeCache()));
    m_sources = Matrix<Scalar>::Zero(cell.layout().sourceSize(), initial * streams);
    m_deltas = Matrix<Scalar>::Zero(cell.stateSize(), initial * streams);
    m_adjoints = Matrix<Scalar>::Zero(cell.layout().factorCount(), initial * streams);
    m_cuts.assign(static_cast<std::size_t>(initial * streams), false);
    m_pendingCuts.assign(static_cast<std::size_t>(streams), false);
    m_epsilon = Matrix<Scalar>::Zero(cell.stateSize(), streams);
    m_previous = Matrix<Scalar>::Zero(cell.stateSize(), streams);
    m_committed = cell.layout().template zeroTensors<Scalar>();
    m_total = m_committed;
    m_outputGradient = Vector<Scalar>::Zero(cell.layout().size());
    m_recurrentGemms.clear();
    if constexpr (requirement::GatedCell<CellType>)
      if (streams > 1)
        for (int t = 0; t < m_core.threads(); ++t)
          m_recurrentGemms.emplace_back(std::min(recurrentTile(), cell.hiddenSize()), streams, cell.gateRows());
    buildParameterUnits();
    buildParameterGemms(initial);
    m_count = 0;
    m_windowHasDeltas = false;
    m_totalValid = false;
  }
  /// One workspace per thread for the parameter gradient's products over `steps` steps of B streams.
  void buildParameterGemms(Index steps) {
    const ParameterLayout& layout = m_core.cell().layout();
    Index widest = 1, tallest = 1;
    for (const ParameterUnit& unit : m_parameterUnits)
      if (layout.tensor(unit.tensor).source == SourceKind::Columns) {
        widest = std::max(widest, layout.tensor(unit.tensor).cols);
        tallest = std::max(tallest, unit.count);
      }
    m_parameterGemms.clear();
    for (int t = 0; t < m_core.threads(); ++t) m_parameterGemms.emplace_back(widest, tallest, steps * m_core.streams());
  }
  /// The units of the parameter gradient Σ e zᵀ: tiles of parameterTile() rows of each weight
  /// tensor, taken in turn from each (so that a thread's share holds every kind), then each
  /// vector tensor whole. A fixed split, the same for every thread count.
  void buildParameterUnits() {
    const ParameterLayout& layout = m_core.cell().layout();
    m_parameterUnits.clear();
    const Index tile = parameterTile();
    for (Index first = 0;; first += tile) {
      bool any = false;
      for (Index t = 0; t < layout.tensorCount(); ++t) {
        const TensorSpec& spec = layout.tensor(t);
        if (spec.source != SourceKind::Columns || first >= spec.rows) continue;
        m_parameterUnits.push_back({t, first, std::min(tile, spec.rows - first)});
        any = true;
      }
      if (!any) break;
    }
    for (Index t = 0; t < layout.tensorCount(); ++t)
      if (layout.tensor(t).source != SourceKind::Columns) m_parameterUnits.push_back({t, 0, layout.tensor(t).rows});
  }

  /// Doubles the history of an untruncated BPTT (the only allocation after construction).
  void grow() {
    const Index size = 2 * capacity(), streams = m_core.streams();
    requireHistory("steps", size);
    m_caches.resize(static_cast<std::size_t>(size),
                    std::vector<StepCache<Scalar>>(static_cast<std::size_t>(streams), m_core.cell().makeCache()));
    m_sources.conservativeResize(Eigen::NoChange, size * streams);
    m_deltas.conservativeResize(Eigen::NoChange, size * streams);
    m_adjoints.conservativeResize(Eigen::NoChange, size * streams);
    m_cuts.resize(static_cast<std::size_t>(size * streams), false);
    buildParameterGemms(size);
  }

  static void setZero(ParameterTensors<Scalar>& tensors) {
    for (RowMatrix<Scalar>& tensor : tensors) tensor.setZero();
  }
  static void copyTensors(const ParameterTensors<Scalar>& from, ParameterTensors<Scalar>& to) {
    for (std::size_t t = 0; t < from.size(); ++t) to[t] = from[t];  // same shapes: no allocation
  }

  /// Adds the open window's closed-form contribution to the committed gradient and empties it.
  void commitWindow() {
    if (m_count > 0 && m_windowHasDeltas) {
      if (m_totalValid)
        std::swap(m_committed, m_total);
      else
        backward(m_committed);
    }
    m_count = 0;
    std::fill(m_pendingCuts.begin(), m_pendingCuts.end(), false);
    m_windowHasDeltas = false;
    m_totalValid = false;
  }

  /// Stream b's reverse step at window step t from its factors (docs/math.md §2): e = the
  /// preactivation gradient of ε (what CellBase::factorGradient computes, here one gate
  /// block of H rows at a time), and, if `direct`, `previous` = Eᵀ ε for the unit-local direct
  /// couplings E, the part of D_tᵀ ε that does not pass through W_hh.
  void reverseStep(const StepCache<Scalar>& cache, const Eigen::Ref<const Vector<Scalar>>& epsilon,
                   Eigen::Ref<Vector<Scalar>> adjoint, Eigen::Ref<Vector<Scalar>> previous, bool direct) const {
    if constexpr (requirement::GatedCell<CellType>) {
      if (m_core.cell().structure().unitStates == 1)
        reverseStepOf<Eigen::InnerStride<1>>(cache, epsilon, adjoint, previous, direct);
      else
        reverseStepOf<Eigen::InnerStride<>>(cache, epsilon, adjoint, previous, direct);
    }
  }
  /// reverseStep() with the factors' rows read at the stride U (one state block: contiguous, vectorised).
  template <class Stride>
  void reverseStepOf(const StepCache<Scalar>& cache, const Eigen::Ref<const Vector<Scalar>>& epsilon,
                     Eigen::Ref<Vector<Scalar>> adjoint, Eigen::Ref<Vector<Scalar>> previous, bool direct) const {
    if constexpr (requirement::GatedCell<CellType>) {
      using Row = Eigen::Map<const Vector<Scalar>, 0, Stride>;
      const CellStructure& structure = m_core.cell().structure();
      const Index hidden = m_core.cell().hiddenSize(), blocks = structure.unitStates, rows = m_core.cell().gateRows();
      // H entries of row q of a U × n column-major factor matrix, from column `first`.
      auto row = [&](const Matrix<Scalar>& factors, Index q, Index first) {
        return Row(factors.data() + first * blocks + q, hidden, Stride(blocks));
      };
      for (Index g = 0; g < structure.gates; ++g) {
        auto input = adjoint.segment(g * hidden, hidden), recurrent = adjoint.segment(rows + g * hidden, hidden);
        for (Index q = 0; q < blocks; ++q) {
          const auto v = epsilon.segment(q * hidden, hidden);
          if (q == 0) {
            input = row(cache.immediateIh, q, g * hidden).cwiseProduct(v);
            recurrent = row(cache.immediateHh, q, g * hidden).cwiseProduct(v);
          } else {
            input += row(cache.immediateIh, q, g * hidden).cwiseProduct(v);
            recurrent += row(cache.immediateHh, q, g * hidden).cwiseProduct(v);
          }
        }
    }
    if (!direct) return;
    previous.setZero();
    for (Index q = 0; q < blocks; ++q)
      for (Index from = 0; from < blocks; ++from)
        if (structure.couples(q, from))
          previous.segment(from * hidden, hidden) +=
              Row(cache.direct.data() + q * blocks + from, hidden, Stride(blocks * blocks))
                  .cwiseProduct(epsilon.segment(q * hidden, hidden));
    }
  }

  /// target += Σ_t Σ_b I_{t,b}ᵀ ε_{t,b} over the open window, ε (k × B) backpropagated from its end
  /// to its start; a stream reset before step t takes no ε from step t into step t − 1.
  void backward(ParameterTensors<Scalar>& target) {
    m_core.requireSameSizes();  // the stored caches have the sizes of the cell the engine was built for
    const CellType& cell = m_core.cell();
    const Index streams = m_core.streams();
    const int threads = m_core.threads();
    for (Index t = m_count - 1; t >= 0; --t) {
      // Per stream: ε_t = δ_t (+ D_{t+1}ᵀ ε_{t+1} unless cut), then e_t = F_tᵀ ε_t and D_tᵀ ε_t
      // (for a gated cell, its direct terms; the recurrent part follows for the whole batch).
      m_core.workers().run([&](int thread) {
        const detail::Range part = detail::partOf(streams, thread, threads);
        for (Index b = part.begin; b < part.end; ++b) {
          const Index c = column(t, b);
          auto epsilon = m_epsilon.col(b);
          if (t == m_count - 1 || m_cuts[static_cast<std::size_t>(column(t + 1, b))])
            epsilon = m_deltas.col(c);
          else
            epsilon = m_previous.col(b) + m_deltas.col(c);
          if constexpr (requirement::GatedCell<CellType>)
            reverseStep(cacheAt(t, b), epsilon, m_adjoints.col(c), m_previous.col(b), t > 0);
          else if (t > 0)
            cell.vectorJacobianProduct(cacheAt(t, b), epsilon, m_previous.col(b), m_adjoints.col(c));
          else
            cell.factorGradient(cacheAt(t, b), epsilon, m_adjoints.col(c));
        }
      });
      if constexpr (requirement::GatedCell<CellType>)
        if (t > 0) addRecurrentPart(t);
    }
    addParameterGradient(target);
  }

  /// A gated cell's recurrent part of D_tᵀ ε for the whole batch: previous_h += W_hhᵀ E_t, in
  /// tiles of rows.
  void addRecurrentPart(Index t) {
    if constexpr (requirement::GatedCell<CellType>) {
      const CellType& cell = m_core.cell();
      const Index streams = m_core.streams(), rows = cell.gateRows(), hidden = cell.hiddenSize();
      const Index adjointStride = m_adjoints.rows(), stateStride = m_previous.rows();
      const Index rowTile = recurrentTile(), hiddenTiles = (hidden + rowTile - 1) / rowTile;
      const auto& weightHh = cell.weight_hh();
      const Scalar* recurrentAdjoints = m_adjoints.data() + column(t, 0) * adjointStride + rows;
      m_core.workers().run([&](int thread) {
        const detail::Range part = detail::partOf(hiddenTiles, thread, m_core.threads());
        for (Index tile = part.begin; tile < part.end; ++tile) {
          const Index r0 = tile * rowTile, count = std::min(rowTile, hidden - r0);
          if (streams == 1)
            m_previous.col(0).segment(r0, count).noalias() +=
                weightHh.middleCols(r0, count).transpose() * m_adjoints.col(column(t, 0)).tail(rows);
          else  // W_hhᵀ is H × G·H column-major with leading dimension H
            m_recurrentGemms[static_cast<std::size_t>(thread)].template accumulate<Eigen::ColMajor, Eigen::ColMajor>(
                count, streams, rows, weightHh.data() + r0, hidden, recurrentAdjoints, adjointStride,
                m_previous.data() + r0, stateStride);
        }
      });
    }
  }

  /// target += Σ e zᵀ over the window's steps and streams, tensor by tensor (docs/math.md §2: entry
  /// (r, c) of a weight gets Σ e[factor r] z[source c]): for a weight, a matrix product of depth
  /// count·B (transposed: the targets are row-major), for a bias the row sums of its factors'
  /// adjoints, for an elementwise weight the sums of e · z; in the fixed units of the parameter
  /// gradient, spread over the threads.
  void addParameterGradient(ParameterTensors<Scalar>& target) {
    const ParameterLayout& layout = m_core.cell().layout();
    const Index depth = m_count * m_core.streams(), sourceStride = m_sources.rows(), adjointStride = m_adjoints.rows();
    const auto units = static_cast<Index>(m_parameterUnits.size());
    m_core.workers().run([&](int thread) {
      const detail::Range part = detail::partOf(units, thread, m_core.threads());
      detail::GemmWorkspace<Scalar>& gemm = m_parameterGemms[static_cast<std::size_t>(thread)];
      for (Index u = part.begin; u < part.end; ++u) {
        const ParameterUnit& unit = m_parameterUnits[static_cast<std::size_t>(u)];
        const TensorSpec& spec = layout.tensor(unit.tensor);
        RowMatrix<Scalar>& weights = target[static_cast<std::size_t>(unit.tensor)];
        const Index offset = spec.factorOffset + unit.first;
        switch (spec.source) {
          case SourceKind::Columns:
            gemm.template accumulate<Eigen::ColMajor, Eigen::RowMajor>(
                spec.cols, unit.count, depth, m_sources.data() + spec.sourceOffset, sourceStride,
                m_adjoints.data() + offset, adjointStride, weights.data() + unit.first * spec.cols, spec.cols);
            break;
          case SourceKind::Constant: {
            auto bias = weights.col(0).segment(unit.first, unit.count);
            for (Index c = 0; c < depth; ++c)  // column by column: contiguous
              bias += m_adjoints.col(c).segment(offset, unit.count) * m_sources(spec.sourceOffset, c);
            break;
          }
          case SourceKind::Diagonal: {
            auto values = weights.col(0).segment(unit.first, unit.count);
            for (Index c = 0; c < depth; ++c)
              values += m_adjoints.col(c).segment(offset, unit.count).cwiseProduct(
                  m_sources.col(c).segment(spec.sourceOffset + unit.first, unit.count));
            break;
          }
        }
      }
    });
  }

  /// Rows [first, first + count) of one tensor: a unit of the parameter gradient.
  struct ParameterUnit {
    Index tensor, first, count;
  };

  detail::EngineCore<CellType> m_core;
  Options m_options;
  std::vector<std::vector<StepCache<Scalar>>> m_caches;  ///< per window step, the B streams' caches
  Matrix<Scalar> m_sources, m_deltas, m_adjoints;         ///< S, k and 2·G·H rows; column(t, b)
  std::vector<bool> m_cuts;         ///< at column(t, b): stream b was reset between steps t − 1 and t
  std::vector<bool> m_pendingCuts;  ///< streams reset since the last step (cut at the next one)
  Matrix<Scalar> m_epsilon, m_previous;  ///< ε_t and D_tᵀ ε_t, k × B
  ParameterTensors<Scalar> m_committed, m_total;  ///< the gradient of the closed windows; with the open one
  Vector<Scalar> m_outputGradient;                 ///< θ-ordered same-step terms of the output's parameters
  std::vector<ParameterUnit> m_parameterUnits;
  std::vector<detail::GemmWorkspace<Scalar>> m_recurrentGemms;  ///< one per thread, for W_hhᵀ E (B > 1)
  std::vector<detail::GemmWorkspace<Scalar>> m_parameterGemms;  ///< one per thread, for Σ e zᵀ
  Index m_count = 0;
  bool m_windowHasDeltas = false;  ///< a δ of the open window is not yet in the committed gradient
  bool m_totalValid = false;       ///< m_total holds committed + the open window
};

}  // namespace snap
