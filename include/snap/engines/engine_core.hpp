#pragma once
/// @file
/// What every engine keeps the same way: the bound cell, the B streams' states, the step's
/// caches and sources, the batched forward step, the θ-ordered gradient, the threads, the
/// checks on what the user passes in, and the saving and loading of that shared state
/// (docs/design.md, "Batches and threads"; docs/reliability.md).

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/threads.hpp"
#include "snap/core/types.hpp"
#include "snap/io/state.hpp"
#include "snap/pattern/kernels.hpp"

namespace snap {
namespace requirement {
/// A cell that can finish a step from preactivations computed outside it (the built-in cells,
/// and any CellBase cell that splits its forward() the same way): the engines then compute a
/// batch's preactivations as two matrix–matrix products. Without it, each stream runs forward().
template <class C>
concept HasActivate = HasScalar<C> && requires(const C& cell, const Vector<typename C::Scalar>& v,
                                               Vector<typename C::Scalar>& next, StepCache<typename C::Scalar>& cache) {
  cell.activate(v, next, cache);
};
}  // namespace requirement

namespace detail {

/// Shared state and argument checks of the engines. Not an interface: each engine is a
/// complete class that holds one of these. Stream b is column b of every k × B or S × B matrix.
template <class CellType>
class EngineCore {
public:
  using Scalar = typename CellType::Scalar;

  /// Preactivation rows computed as one unit of work: a fixed split, the same for every thread
  /// count, so that the products round the same way for every T.
  static constexpr Index rowTile = 64;

  EngineCore(const CellType& cell, const Batch& batch) : m_cell(&cell), m_streams(batch.streams) {
    batch.validate();
    m_workers = Workers(batch.threads);
    resize();
  }

  const CellType& cell() const { return *m_cell; }
  /// s_t of every stream, k × B.
  const Matrix<Scalar>& state() const { return m_state; }
  Matrix<Scalar>& state() { return m_state; }
  /// Batch steps since construction or the last resetState().
  Index steps() const { return m_steps; }
  /// Steps of stream b since its last reset.
  Index streamSteps(Index stream) const { return m_streamSteps[static_cast<std::size_t>(checkedStream(stream))]; }
  Index streams() const { return m_streams; }
  int threads() const { return m_workers.threads(); }
  Workers& workers() { return m_workers; }

  /// Sizes everything for the bound cell (at construction and after a mask change, when the
  /// states are kept and the gradient restarts at zero with the new parameter count).
  void resize() {
    const CellType& cell = *m_cell;
    m_stateSize = cell.stateSize();
    m_inputSize = cell.inputSize();
    m_hiddenSize = cell.hiddenSize();
    m_maskVersion = cell.maskVersion();
    const Index sources = cell.layout().sourceSize(), preactivations = 2 * cell.gateRows();
    requireArray<Scalar>("Batch::streams", m_streams, checkedSum("Batch::streams", sources, preactivations + 2 * m_stateSize),
                         "states, sources and preactivations (B streams)");
    if (m_state.rows() != m_stateSize || m_state.cols() != m_streams) m_state = Matrix<Scalar>::Zero(m_stateSize, m_streams);
    m_next = Matrix<Scalar>::Zero(m_stateSize, m_streams);
    m_sources = Matrix<Scalar>::Zero(sources, m_streams);
    m_preactivations = Matrix<Scalar>::Zero(preactivations, m_streams);
    m_caches.assign(static_cast<std::size_t>(m_streams), cell.makeCache());
    m_stagedSources = m_sources;
    m_stagedCaches = m_caches;
    m_staged = false;
    m_streamSteps.resize(static_cast<std::size_t>(m_streams), 0);
    m_gradient = Vector<Scalar>::Zero(cell.parameterCount());
    m_gemms.clear();
    if (m_streams > 1)
      for (int t = 0; t < threads(); ++t)
        m_gemms.emplace_back(std::min(rowTile, cell.gateRows()), m_streams, std::max(m_inputSize, m_hiddenSize));
  }

  /// Throws a ShapeError unless the bound cell still has the sizes the engine was built for.
  void requireSameSizes() const {
    const CellType& cell = *m_cell;
    if (cell.stateSize() != m_stateSize || cell.inputSize() != m_inputSize || cell.hiddenSize() != m_hiddenSize)
      fail<ShapeError>("cell", "the sizes the engine was built for (input " + describe(m_inputSize) + ", hidden " +
                                   describe(m_hiddenSize) + ")",
                       "input " + describe(cell.inputSize()) + ", hidden " + describe(cell.hiddenSize()));
  }

  /// Throws unless the bound cell still has the sizes the engine was built for; returns true
  /// when its masks changed since (the engine then rebuilds its structures).
  bool cellChanged() const {
    requireSameSizes();
    return m_cell->maskVersion() != m_maskVersion;
  }

  /// Throws unless the last step can still be consumed: a step taken under the old masks has
  /// caches that do not fit the new structure (the next step() rebuilds instead).
  void requireUnchangedCell(std::string_view caller) const {
    if (cellChanged())
      fail<UsageError>(caller, "a step() since the cell's masks changed", "a mask change after the last step");
  }

  /// Throws ShapeError unless the argument is rows × B (a vector for B = 1), named in the
  /// singular for one stream and the plural for B (detail::requireColumns), and NonFiniteError
  /// unless it is finite.
  void requireColumns(std::string_view singular, const MatrixView<Scalar>& values, Index rows) const {
    detail::requireColumns(singular, values.rows(), values.cols(), rows, m_streams);
  }
  void requireFiniteColumns(std::string_view singular, const MatrixView<Scalar>& values) const {
    requireFinite(batchName(singular, m_streams), values);
  }

  /// Throws unless the inputs are m × B and finite, and the step count can advance; called
  /// before anything changes.
  void checkInput(const MatrixView<Scalar>& inputs) const {
    requireColumns("input", inputs, m_inputSize);
    requireFiniteColumns("input", inputs);
    requireCounterRoom("steps since the last resetState()", m_steps);
  }

  /// Takes the states and the step counts of `other` (an engine rebuilt for new masks keeps them).
  void keepFrom(const EngineCore& other) {
    m_state = other.m_state;
    m_steps = other.m_steps;
    m_streamSteps = other.m_streamSteps;
  }

  /// Runs the cell's forward step of the inputs (m × B) from the current states into the staged
  /// caches, the staged sources z = [x; 1; h_{t−1}; 1] and the next states, and returns those
  /// (k × B); nothing else changes. The preactivations of all streams are two matrix–matrix
  /// products (W_ih X, W_hh H) in fixed tiles of rows spread over the threads; each stream then
  /// finishes its step on its own. A next state that is not finite is refused. commitStaged()
  /// then makes the step current.
  const Matrix<Scalar>& stage(const MatrixView<Scalar>& inputs) {
    checkInput(inputs);
    const CellType& cell = *m_cell;
    for (Index b = 0; b < m_streams; ++b) cell.sources(inputs.col(b), m_state.col(b), m_stagedSources.col(b));
    if constexpr (requirement::HasActivate<CellType>) {
      computePreactivations(inputs);
      m_workers.run([&](int t) {
        const Range streams = partOf(m_streams, t, threads());
        for (Index b = streams.begin; b < streams.end; ++b) {
          StepCache<Scalar>& cache = m_stagedCaches[static_cast<std::size_t>(b)];
          cache.preactivations = m_preactivations.col(b);
          cell.activate(m_state.col(b), m_next.col(b), cache);
        }
      });
    } else {
      m_workers.run([&](int t) {
        const Range streams = partOf(m_streams, t, threads());
        for (Index b = streams.begin; b < streams.end; ++b)
          cell.forward(inputs.col(b), m_state.col(b), m_next.col(b), m_stagedCaches[static_cast<std::size_t>(b)]);
      });
    }
    requireFinite("next state", m_next);
    m_staged = true;
    return m_next;
  }
  /// Throws UsageError unless a step is staged (`caller` names the call that needs it).
  void requireStaged(std::string_view caller) const {
    if (!m_staged) fail<UsageError>(caller, "a prepareStep() before", "no prepared step");
  }
  /// Makes the staged step the last one: its caches and sources become current (swapped, no
  /// allocation) and its next states the states.
  void commitStaged() {
    std::swap(m_caches, m_stagedCaches);
    std::swap(m_sources, m_stagedSources);
    acceptStagedState();
  }
  /// The same, with the staged caches swapped into `caches` and the sources copied into
  /// `sources` (S × B): a history that keeps each step.
  void commitStaged(std::vector<StepCache<Scalar>>& caches, MatrixSpan<Scalar> sources) {
    std::swap(caches, m_stagedCaches);
    sources = m_stagedSources;
    acceptStagedState();
  }
  /// The staged next states become the states, one more step.
  void acceptStagedState() {
    std::swap(m_state, m_next);
    ++m_steps;
    for (Index& steps : m_streamSteps) ++steps;
    m_staged = false;
  }
  /// Takes the staged step of `other` (an engine rebuilt for new masks goes on with it).
  void takeStaged(EngineCore& other) {
    std::swap(m_stagedCaches, other.m_stagedCaches);
    std::swap(m_stagedSources, other.m_stagedSources);
    std::swap(m_next, other.m_next);
    m_staged = other.m_staged;
  }

  /// Throws unless δ is k × B and finite, and every stream has stepped since its last reset,
  /// under the cell's current sizes and masks.
  void checkStateGradient(const MatrixView<Scalar>& stateGradients) const {
    requireSameSizes();
    requireColumns("state gradient", stateGradients, m_stateSize);
    requireFiniteColumns("state gradient", stateGradients);
    for (Index b = 0; b < m_streams; ++b)
      if (m_streamSteps[static_cast<std::size_t>(b)] == 0)
        fail<UsageError>("accumulate",
                         m_streams == 1 ? "a step() since the last resetState()" : "a step() since the last reset of every stream",
                         m_streams == 1 ? std::string("no step") : "no step of stream " + describe(b));
    requireUnchangedCell("accumulate");
  }

  /// Throws ShapeError unless 0 ≤ stream < B; returns it.
  Index checkedStream(Index stream) const {
    if (stream < 0 || stream >= m_streams)
      fail<ShapeError>("stream", "an index in [0, " + describe(m_streams) + ")", stream);
    return stream;
  }

  /// Sets every state to zero, or to the columns of `initial` (k × B, checked); a prepared
  /// step is dropped.
  void resetState() {
    m_state.setZero();
    m_steps = 0;
    std::fill(m_streamSteps.begin(), m_streamSteps.end(), Index(0));
    m_staged = false;
  }
  void resetState(const MatrixView<Scalar>& initial) {
    checkInitialState(initial);
    m_state = initial;
    m_steps = 0;
    std::fill(m_streamSteps.begin(), m_streamSteps.end(), Index(0));
    m_staged = false;
  }
  void checkInitialState(const MatrixView<Scalar>& initial) const {
    requireColumns("initial state", initial, m_stateSize);
    requireFiniteColumns("initial state", initial);
  }
  /// Sets stream b's state to zero and its step count to 0 (checked first); a prepared step
  /// is dropped.
  void resetStream(Index stream) {
    checkedStream(stream);
    m_state.col(stream).setZero();
    m_streamSteps[static_cast<std::size_t>(stream)] = 0;
    m_staged = false;
  }

  /// @name Saving and loading (docs/reliability.md, "Checkpoint format")
  /// @{
  /// Writes `<prefix>engine` (the engine's name), `<prefix>streams` (B), `<prefix>state`
  /// (B × k: one row per stream), `<prefix>steps` and `<prefix>stream_steps` (B).
  void save(NpzArchive& archive, const std::string& prefix, std::string_view engine) const {
    putText(archive, prefix + "engine", engine);
    putScalar<std::int64_t>(archive, prefix + "streams", m_streams);
    putArray(archive, prefix + "state", Matrix<Scalar>(m_state.transpose()));
    putScalar<std::int64_t>(archive, prefix + "steps", m_steps);
    std::vector<std::int64_t> streamSteps(m_streamSteps.begin(), m_streamSteps.end());
    archive[prefix + "stream_steps"] = NpyArray::of(streamSteps.data(), {m_streams});
  }
  /// Reads what save() wrote, checked against the bound cell and B (the states finite, the
  /// steps counters, no stream with more steps than the batch). Called on a freshly built
  /// engine that replaces the loading one only once everything has been read.
  void load(const NpzArchive& archive, const std::string& prefix, std::string_view engine) {
    requireText(archive, prefix + "engine", engine, "the state of engine");
    readScalar<std::int64_t>(archive, prefix + "streams", m_streams, m_streams);
    Matrix<Scalar> state = readMatrix<Matrix<Scalar>>(archive, prefix + "state", m_streams, m_stateSize);
    const std::int64_t steps = readCounter(archive, prefix + "steps");
    const std::vector<std::int64_t> streamSteps =
        readValues<std::int64_t>(archive, prefix + "stream_steps", {m_streams}, Domain<std::int64_t>{0, steps});
    m_state = state.transpose();
    m_steps = static_cast<Index>(steps);
    std::copy(streamSteps.begin(), streamSteps.end(), m_streamSteps.begin());
  }
  /// The last step's Jacobian factors and sources z of every stream, what a pending influence
  /// update consumes (zeros when nothing is pending: the values are then never read, and equal
  /// states save equal arrays).
  void saveStep(NpzArchive& archive, const std::string& prefix, bool pending) const {
    saveCaches(archive, prefix, m_caches, pending);
    putArray(archive, prefix + "sources",
             pending ? Matrix<Scalar>(m_sources.transpose()) : Matrix<Scalar>::Zero(m_streams, m_sources.rows()));
  }
  void loadStep(const NpzArchive& archive, const std::string& prefix) {
    loadCaches(archive, prefix, m_caches);
    m_sources = readMatrix<Matrix<Scalar>>(archive, prefix + "sources", m_streams, m_sources.rows()).transpose();
  }
  /// B streams' caches as `<prefix>immediate_ih` (B × U × G·H), `immediate_hh`, `direct`
  /// (B × U·U × H) and `preactivations` (B × 2·G·H); zeros unless `values`.
  static void saveCaches(NpzArchive& archive, const std::string& prefix, const std::vector<StepCache<Scalar>>& caches,
                         bool values = true) {
    putStacked(archive, prefix + "immediate_ih", caches, values, [](const StepCache<Scalar>& c) -> const auto& { return c.immediateIh; });
    putStacked(archive, prefix + "immediate_hh", caches, values, [](const StepCache<Scalar>& c) -> const auto& { return c.immediateHh; });
    putStacked(archive, prefix + "direct", caches, values, [](const StepCache<Scalar>& c) -> const auto& { return c.direct; });
    const auto streams = static_cast<Index>(caches.size());
    Matrix<Scalar> preactivations = Matrix<Scalar>::Zero(streams, caches.front().preactivations.size());
    if (values)
      for (Index b = 0; b < streams; ++b) preactivations.row(b) = caches[static_cast<std::size_t>(b)].preactivations.transpose();
    putArray(archive, prefix + "preactivations", preactivations);
  }
  /// Reads caches saved by saveCaches into `caches`, whose count and sizes are the expected shapes.
  static void loadCaches(const NpzArchive& archive, const std::string& prefix, std::vector<StepCache<Scalar>>& caches) {
    const auto streams = static_cast<Index>(caches.size());
    auto read = [&](const char* name, auto member) {
      const Matrix<Scalar>& shape = caches.front().*member;
      const std::vector<Scalar> values =
          readValues<Scalar>(archive, prefix + name, {streams, shape.rows(), shape.cols()});
      const Index size = shape.size();
      for (Index b = 0; b < streams; ++b)
        caches[static_cast<std::size_t>(b)].*member =
            Eigen::Map<const RowMatrix<Scalar>>(values.data() + b * size, shape.rows(), shape.cols());
    };
    read("immediate_ih", &StepCache<Scalar>::immediateIh);
    read("immediate_hh", &StepCache<Scalar>::immediateHh);
    read("direct", &StepCache<Scalar>::direct);
    const Matrix<Scalar> preactivations =
        readMatrix<Matrix<Scalar>>(archive, prefix + "preactivations", streams, caches.front().preactivations.size());
    for (Index b = 0; b < streams; ++b) caches[static_cast<std::size_t>(b)].preactivations = preactivations.row(b).transpose();
  }
  /// @}

  const CellType* m_cell;
  Index m_streams = 1;
  Workers m_workers;
  Index m_stateSize = 0, m_inputSize = 0, m_hiddenSize = 0;
  std::uint64_t m_maskVersion = 0;
  Index m_steps = 0;
  std::vector<Index> m_streamSteps;  ///< steps of each stream since its last reset
  Matrix<Scalar> m_state, m_next, m_sources;  ///< k × B, k × B, S × B
  Vector<Scalar> m_gradient;                   ///< Σ over the streams, θ-ordered
  std::vector<StepCache<Scalar>> m_caches;     ///< the last step's factors, one per stream
  std::vector<StepCache<Scalar>> m_stagedCaches;  ///< the factors of a prepared step (stage())
  Matrix<Scalar> m_stagedSources;                 ///< its sources; m_next holds its next states
  bool m_staged = false;                          ///< a step is prepared and not yet committed

private:
  /// m_preactivations = [W_ih X + b_ih; W_hh H + b_hh] for the B columns, in tiles of rowTile
  /// rows spread over the threads (matrix–vector products for B = 1). Units alternate W_ih and
  /// W_hh tiles, so that each thread's share holds both kinds (W_hh's are the larger for m < H).
  void computePreactivations(const MatrixView<Scalar>& inputs) {
    const CellType& cell = *m_cell;
    const Index rows = cell.gateRows(), tiles = (rows + rowTile - 1) / rowTile;
    m_workers.run([&](int t) {
      const Range part = partOf(2 * tiles, t, threads());
      for (Index unit = part.begin; unit < part.end; ++unit) {
        const bool recurrent = unit % 2 == 1;
        const Index r0 = unit / 2 * rowTile, count = std::min(rowTile, rows - r0);
        const auto& weight = recurrent ? cell.weight_hh() : cell.weight_ih();
        const auto& bias = recurrent ? cell.bias_hh() : cell.bias_ih();
        const Index depth = weight.cols(), offset = recurrent ? rows + r0 : r0;
        auto target = m_preactivations.middleRows(offset, count);
        if (m_streams == 1) {
          if (recurrent)
            target.col(0).noalias() = weight.middleRows(r0, count) * m_state.col(0).head(m_hiddenSize);
          else
            target.col(0).noalias() = weight.middleRows(r0, count) * inputs.col(0);
        } else {
          target.setZero();
          const Scalar* rhs = recurrent ? m_state.data() : inputs.data();
          const Index rhsStride = recurrent ? m_state.rows() : inputs.outerStride();
          m_gemms[static_cast<std::size_t>(t)].template accumulate<Eigen::RowMajor, Eigen::ColMajor>(
              count, m_streams, depth, weight.data() + r0 * depth, depth, rhs, rhsStride, target.data(),
              m_preactivations.rows());
        }
        target.colwise() += bias.segment(r0, count);
      }
    });
  }

  template <class Get>
  static void putStacked(NpzArchive& archive, const std::string& name, const std::vector<StepCache<Scalar>>& caches,
                         bool values, Get&& get) {
    const auto streams = static_cast<Index>(caches.size());
    const Matrix<Scalar>& shape = get(caches.front());
    const Index rows = shape.rows(), cols = shape.cols();
    std::vector<Scalar> stacked(static_cast<std::size_t>(streams * rows * cols), Scalar(0));
    if (values)
      for (Index b = 0; b < streams; ++b)
        Eigen::Map<RowMatrix<Scalar>>(stacked.data() + b * rows * cols, rows, cols) = get(caches[static_cast<std::size_t>(b)]);
    archive[name] = NpyArray::of(stacked.data(), {streams, rows, cols});
  }

  Matrix<Scalar> m_preactivations;                  ///< 2·G·H × B, the batch's [a; c]
  std::vector<detail::GemmWorkspace<Scalar>> m_gemms;  ///< one per thread, for B > 1
};

}  // namespace detail
}  // namespace snap
