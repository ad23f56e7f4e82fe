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
#include "snap/archive/arrays.hpp"
#include "snap/pattern/kernels.hpp"

namespace snap {
namespace requirement {
/// A PyTorch-style gated cell (CellBase) that can finish a step from preactivations computed
/// outside it (the built-in cells, and any CellBase cell that splits its forward() the same
/// way): the engines then compute a batch's preactivations as two matrix–matrix products, and
/// BPTT applies W_hhᵀ to the batch at once. Without it, each stream runs forward() and the
/// cell's own products.
template <class C>
concept GatedCell = HasScalar<C> && requires(const C& cell, const Vector<typename C::Scalar>& v,
                                             Vector<typename C::Scalar>& next, StepCache<typename C::Scalar>& cache) {
  cell.activate(v, next, cache);
  cell.weight_ih();
  cell.weight_hh();
  cell.bias_ih();
  cell.bias_hh();
  { cell.gateRows() } -> std::convertible_to<Index>;
  { cell.hiddenSize() } -> std::convertible_to<Index>;
  { cell.structure() } -> std::convertible_to<const CellStructure&>;
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
    m_outputSize = cell.outputSize();
    m_maskVersion = cell.maskVersion();
    const Index sources = cell.layout().sourceSize(), factors = cell.layout().factorCount();
    Index preactivations = 0;
    if constexpr (requirement::GatedCell<CellType>) preactivations = 2 * cell.gateRows();
    const Index perStream = checkedSum("Batch::streams", checkedSum("Batch::streams", sources, preactivations),
                                       checkedSum("Batch::streams", 3 * m_stateSize, 2 * m_outputSize + factors));
    requireArray<Scalar>("Batch::streams", m_streams, perStream, "states, outputs, sources and preactivations (B streams)");
    if (m_state.rows() != m_stateSize || m_state.cols() != m_streams) m_state = Matrix<Scalar>::Zero(m_stateSize, m_streams);
    m_next = Matrix<Scalar>::Zero(m_stateSize, m_streams);
    m_outputs = Matrix<Scalar>::Zero(m_outputSize, m_streams);
    m_nextOutputs = m_outputs;
    m_sources = Matrix<Scalar>::Zero(sources, m_streams);
    m_preactivations = Matrix<Scalar>::Zero(preactivations, m_streams);
    m_caches.assign(static_cast<std::size_t>(m_streams), cell.makeCache());
    m_stagedSources = m_sources;
    m_stagedCaches = m_caches;
    m_staged = false;
    m_streamSteps.resize(static_cast<std::size_t>(m_streams), 0);
    m_gradient = Vector<Scalar>::Zero(cell.parameterCount());
    m_stateGradients = Matrix<Scalar>::Zero(m_stateSize, m_streams);
    m_outputFactorGradients = Matrix<Scalar>::Zero(factors, m_streams);
    m_gemms.clear();
    if constexpr (requirement::GatedCell<CellType>)
      if (m_streams > 1)
        for (int t = 0; t < threads(); ++t)
          m_gemms.emplace_back(std::min(rowTile, cell.gateRows()), m_streams, std::max(m_inputSize, cell.hiddenSize()));
  }

  /// Throws a ShapeError unless the bound cell still has the sizes the engine was built for.
  void requireSameSizes() const {
    const CellType& cell = *m_cell;
    if (!sameSizes())
      fail<ShapeError>("cell", "the sizes the engine was built for (input " + describe(m_inputSize) + ", state " +
                                   describe(m_stateSize) + ", output " + describe(m_outputSize) + ")",
                       "input " + describe(cell.inputSize()) + ", state " + describe(cell.stateSize()) + ", output " +
                           describe(cell.outputSize()));
  }
  /// True when the bound cell still has the sizes the engine was built for.
  bool sameSizes() const {
    const CellType& cell = *m_cell;
    return cell.stateSize() == m_stateSize && cell.inputSize() == m_inputSize && cell.outputSize() == m_outputSize;
  }
  /// True when the bound cell still has the sizes and masks the engine was built for.
  bool sameCell() const { return sameSizes() && m_cell->maskVersion() == m_maskVersion; }

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
    m_outputs = other.m_outputs;
    m_steps = other.m_steps;
    m_streamSteps = other.m_streamSteps;
  }

  /// Runs the cell's forward step of the inputs (m × B) from the current states into the staged
  /// caches, sources z, outputs and next states, and returns the next states (k × B); nothing
  /// else changes. For a gated cell the preactivations of all streams are two matrix–matrix
  /// products (W_ih X, W_hh H) in fixed tiles of rows spread over the threads, and each stream
  /// then finishes its step on its own; any other cell runs its forward() per stream, the streams
  /// shared among the threads. A next state or output that is not finite is refused.
  /// commitStaged() then makes the step current.
  const Matrix<Scalar>& stage(const MatrixView<Scalar>& inputs) {
    checkInput(inputs);
    const CellType& cell = *m_cell;
    if constexpr (requirement::GatedCell<CellType>) computePreactivations(inputs);
    m_workers.run([&](int t) {
      const Range streams = partOf(m_streams, t, threads());
      for (Index b = streams.begin; b < streams.end; ++b) {
        StepCache<Scalar>& cache = m_stagedCaches[static_cast<std::size_t>(b)];
        if constexpr (requirement::GatedCell<CellType>) {
          cache.preactivations = m_preactivations.col(b);
          cell.activate(m_state.col(b), m_next.col(b), cache);
        } else {
          cell.forward(inputs.col(b), m_state.col(b), m_next.col(b), cache);
        }
        cell.sources(cache, inputs.col(b), m_state.col(b), m_stagedSources.col(b));
        cell.output(cache, m_next.col(b), m_nextOutputs.col(b));
      }
    });
    requireFinite("next state", m_next);
    requireFinite("output", m_nextOutputs);
    m_staged = true;
    return m_next;
  }
  /// The outputs y of the prepared step (o × B).
  const Matrix<Scalar>& stagedOutputs() const { return m_nextOutputs; }
  /// y_t of every stream, o × B.
  const Matrix<Scalar>& outputs() const { return m_outputs; }
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
    std::swap(m_outputs, m_nextOutputs);
    ++m_steps;
    for (Index& steps : m_streamSteps) ++steps;
    m_staged = false;
  }
  /// Takes the staged step of `other` (an engine rebuilt for new masks goes on with it).
  /// The staged step was computed by the cell under its new masks, but into caches made before
  /// the change: their workspaces (a stack's depends on its patterns) take this engine's shape
  /// and start from zeros, as a new cache's do (a stack's products expect their accumulator
  /// zero).
  void takeStaged(EngineCore& other) {
    std::swap(m_stagedCaches, other.m_stagedCaches);
    std::swap(m_stagedSources, other.m_stagedSources);
    std::swap(m_next, other.m_next);
    std::swap(m_nextOutputs, other.m_nextOutputs);
    m_staged = other.m_staged;
    const StepCache<Scalar>& shape = m_caches.front();
    for (StepCache<Scalar>& cache : m_stagedCaches) {
      cache.workspace = Vector<Scalar>::Zero(shape.workspace.size());
      for (std::size_t l = 0; l < cache.layers.size() && l < shape.layers.size(); ++l)
        cache.layers[l].workspace = Vector<Scalar>::Zero(shape.layers[l].workspace.size());
    }
  }

  /// Throws unless δ is k × B and finite, and every stream has stepped since its last reset,
  /// under the cell's current sizes and masks.
  void checkStateGradient(const MatrixView<Scalar>& stateGradients) const {
    requireSameSizes();
    const Index rows = stateGradients.rows(), cols = stateGradients.cols();
    if (requirement::OutputIsStateHead<CellType> && m_outputSize != m_stateSize &&
        !((rows == m_stateSize || rows == m_outputSize) && (cols == m_streams || (m_streams == 1 && cols == 1)))) {
      const std::string either = m_streams == 1 ? "length " + describe(m_stateSize) + " (the state s_t) or " +
                                                      describe(m_outputSize) + " (the output y_t)"
                                                : "shape " + shapeOf(m_stateSize, m_streams) + " (the states) or " +
                                                      shapeOf(m_outputSize, m_streams) + " (the outputs)";
      fail<ShapeError>(batchName("state gradient", m_streams), either,
                       m_streams == 1 && cols == 1 ? describe(rows) : shapeOf(rows, cols));
    }
    requireColumns(gradientName(stateGradients.rows()), stateGradients, gradientRows(stateGradients.rows()));
    requireFiniteColumns(gradientName(stateGradients.rows()), stateGradients);
    for (Index b = 0; b < m_streams; ++b)
      if (m_streamSteps[static_cast<std::size_t>(b)] == 0)
        fail<UsageError>("accumulate",
                         m_streams == 1 ? "a step() since the last resetState()" : "a step() since the last reset of every stream",
                         m_streams == 1 ? std::string("no step") : "no step of stream " + describe(b));
    requireUnchangedCell("accumulate");
  }

  /// The state gradients δ_s (k × B) of loss gradients checked by checkStateGradient(): given
  /// over the state (k rows, a cell whose output is the head of its state), as they are; given
  /// over the outputs y_t (o rows), δ_s = (∂y/∂s_t)ᵀ δ_y for each stream from its last step, with
  /// the factor gradient of the output's own parameters left in outputFactorGradients() (and
  /// hasOutputTerm() true when a cell's output has parameters).
  const Matrix<Scalar>& toStateGradients(const MatrixView<Scalar>& gradients) {
    return toStateGradients(gradients, m_caches, m_sources);
  }
  /// The same, from the given caches and sources of the last step (an engine that keeps its
  /// steps elsewhere, BPTT).
  const Matrix<Scalar>& toStateGradients(const MatrixView<Scalar>& gradients, const std::vector<StepCache<Scalar>>& caches,
                                         const MatrixView<Scalar>& sources) {
    m_outputTerm = false;
    m_termSources = sources.data();
    m_termSourceStride = sources.outerStride();
    if constexpr (requirement::OutputIsStateHead<CellType>) {
      if (gradients.rows() == m_stateSize) {
        m_stateGradients = gradients;
      } else {
        m_stateGradients.topRows(m_outputSize) = gradients;
        m_stateGradients.bottomRows(m_stateSize - m_outputSize).setZero();
      }
    } else {
      const CellType& cell = *m_cell;
      for (Index b = 0; b < m_streams; ++b)
        cell.outputBackward(caches[static_cast<std::size_t>(b)], gradients.col(b), m_stateGradients.col(b),
                            m_outputFactorGradients.col(b));
      m_outputTerm = true;
    }
    return m_stateGradients;
  }
  /// The rows a loss gradient must have: o (over the outputs), or k (over the state) when the
  /// output is the head of the state and `rows` is k.
  Index gradientRows(Index rows) const {
    if constexpr (requirement::OutputIsStateHead<CellType>)
      if (rows == m_stateSize) return m_stateSize;
    return m_outputSize;
  }
  /// "state gradient" for a cell whose output is the head of its state when the gradient is over
  /// the whole state (or the output is the whole state); "output gradient" otherwise.
  std::string_view gradientName(Index rows) const {
    if constexpr (requirement::OutputIsStateHead<CellType>)
      if (rows == m_stateSize || m_outputSize == m_stateSize) return "state gradient";
    return "output gradient";
  }
  /// True when the last toStateGradients() left factor gradients of the output's parameters.
  bool hasOutputTerm() const { return m_outputTerm; }
  /// target += Σ_b (∂y/∂θ)ᵀ δ_y of the last toStateGradients(), θ-ordered: the same-step term of
  /// the output's own parameters (no influence carries it).
  void addOutputTerm(VectorSpan<Scalar> target) const {
    if (!m_outputTerm) return;
    const ParameterLayout& layout = m_cell->layout();
    for (Index b = 0; b < m_streams; ++b)
      layout.template addParameterGradient<Scalar>(
          m_outputFactorGradients.col(b),
          Eigen::Map<const Vector<Scalar>>(m_termSources + b * m_termSourceStride, layout.sourceSize()), target);
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
    m_outputs.setZero();
    m_steps = 0;
    std::fill(m_streamSteps.begin(), m_streamSteps.end(), Index(0));
    m_staged = false;
  }
  void resetState(const MatrixView<Scalar>& initial) {
    checkInitialState(initial);
    m_state = initial;
    m_outputs.setZero();
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
    m_outputs.col(stream).setZero();
    m_streamSteps[static_cast<std::size_t>(stream)] = 0;
    m_staged = false;
  }

  /// @name Saving and loading (docs/reliability.md, "Checkpoint format")
  /// @{

  /// Writes `<prefix>engine` (the engine's name), `<prefix>streams` (B), `<prefix>state`
  /// (B × k: one row per stream), `<prefix>outputs` (B × o), `<prefix>steps` and
  /// `<prefix>stream_steps` (B).
  void save(NpzArchive& archive, const std::string& prefix, std::string_view engine) const {
    putText(archive, prefix + "engine", engine);
    putScalar<std::int64_t>(archive, prefix + "streams", m_streams);
    putArray(archive, prefix + "state", Matrix<Scalar>(m_state.transpose()));
    putArray(archive, prefix + "outputs", Matrix<Scalar>(m_outputs.transpose()));
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
    Matrix<Scalar> outputs = readMatrix<Matrix<Scalar>>(archive, prefix + "outputs", m_streams, m_outputSize);
    const std::int64_t steps = readCounter(archive, prefix + "steps");
    const std::vector<std::int64_t> streamSteps =
        readValues<std::int64_t>(archive, prefix + "stream_steps", {m_streams}, Domain<std::int64_t>{0, steps});
    m_state = state.transpose();
    m_outputs = outputs.transpose();
    m_steps = static_cast<Index>(steps);
    std::copy(streamSteps.begin(), streamSteps.end(), m_streamSteps.begin());
  }
  /// The last step's Jacobian factors and sources z of every stream, what a pending influence
  /// update consumes (zeros when nothing is pending: the values are then never read, and equal
  /// states save equal arrays).
  void saveStep(NpzArchive& archive, const std::string& prefix, bool pending) const {
    // A cell whose output has parameters or reads the input converts the next output gradient
    // from the last step's cache and sources, pending or not.
    const bool keep = pending || (!requirement::OutputIsStateHead<CellType> && m_steps > 0);
    saveCaches(archive, prefix, m_caches, keep);
    putArray(archive, prefix + "sources",
             keep ? Matrix<Scalar>(m_sources.transpose()) : Matrix<Scalar>::Zero(m_streams, m_sources.rows()));
  }
  void loadStep(const NpzArchive& archive, const std::string& prefix) {
    loadCaches(archive, prefix, m_caches);
    m_sources = readMatrix<Matrix<Scalar>>(archive, prefix + "sources", m_streams, m_sources.rows()).transpose();
  }
  /// B streams' caches as arrays B × (the array's shape), named as cacheArrays() names them
  /// under `prefix` (`<prefix>immediate_ih`: B × U × G·H, …); zeros unless `values`.
  static void saveCaches(NpzArchive& archive, const std::string& prefix, const std::vector<StepCache<Scalar>>& caches,
                         bool values = true) {
    const auto streams = static_cast<Index>(caches.size());
    const auto shapes = cacheArrays(caches.front(), prefix);
    std::vector<std::vector<CacheArray<const Scalar*>>> arrays;
    for (const StepCache<Scalar>& cache : caches) arrays.push_back(cacheArrays(cache, prefix));
    for (std::size_t i = 0; i < shapes.size(); ++i) {
      const Index rows = shapes[i].rows, cols = shapes[i].cols, size = rows * cols;
      std::vector<Scalar> stacked(static_cast<std::size_t>(streams * size), Scalar(0));
      if (values)
        for (Index b = 0; b < streams; ++b) {
          const CacheArray<const Scalar*>& array = arrays[static_cast<std::size_t>(b)][i];
          Eigen::Map<RowMatrix<Scalar>>(stacked.data() + b * size, rows, cols) =
              Eigen::Map<const Matrix<Scalar>>(array.data, rows, cols);
        }
      if (shapes[i].isVector)
        archive[shapes[i].name] = NpyArray::of(stacked.data(), {streams, rows});
      else
        archive[shapes[i].name] = NpyArray::of(stacked.data(), {streams, rows, cols});
    }
  }
  /// Reads caches saved by saveCaches into `caches`, whose count and sizes are the expected shapes.
  static void loadCaches(const NpzArchive& archive, const std::string& prefix, std::vector<StepCache<Scalar>>& caches) {
    const auto streams = static_cast<Index>(caches.size());
    std::vector<std::vector<Scalar>> read;
    for (const CacheArray<Scalar*>& shape : cacheArrays(caches.front(), prefix))
      read.push_back(shape.isVector ? readValues<Scalar>(archive, shape.name, {streams, shape.rows})
                                    : readValues<Scalar>(archive, shape.name, {streams, shape.rows, shape.cols}));
    for (Index b = 0; b < streams; ++b) {
      const auto arrays = cacheArrays(caches[static_cast<std::size_t>(b)], prefix);
      for (std::size_t i = 0; i < arrays.size(); ++i) {
        const Index rows = arrays[i].rows, cols = arrays[i].cols;
        Eigen::Map<Matrix<Scalar>>(arrays[i].data, rows, cols) =
            Eigen::Map<const RowMatrix<Scalar>>(read[i].data() + b * rows * cols, rows, cols);
      }
    }
  }
  /// @}

  const CellType* m_cell;
  Index m_streams = 1;
  Workers m_workers;
  Index m_stateSize = 0, m_inputSize = 0, m_outputSize = 0;
  std::uint64_t m_maskVersion = 0;
  Index m_steps = 0;
  std::vector<Index> m_streamSteps;  ///< steps of each stream since its last reset
  Matrix<Scalar> m_state, m_next, m_sources;  ///< k × B, k × B, S × B
  Matrix<Scalar> m_outputs, m_nextOutputs;     ///< o × B: y of the last step, y of the prepared step
  Matrix<Scalar> m_stateGradients;             ///< k × B: the δ_s of toStateGradients()
  Matrix<Scalar> m_outputFactorGradients;      ///< F × B: the output's factor gradients of toStateGradients()
  bool m_outputTerm = false;
  const Scalar* m_termSources = nullptr;  ///< the sources of the last toStateGradients(): column b at b·stride
  Index m_termSourceStride = 0;
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
    if constexpr (requirement::GatedCell<CellType>) {
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
              target.col(0).noalias() = weight.middleRows(r0, count) * m_state.col(0).head(cell.hiddenSize());
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
  }

  Matrix<Scalar> m_preactivations;                  ///< 2·G·H × B, the batch's [a; c]
  std::vector<detail::GemmWorkspace<Scalar>> m_gemms;  ///< one per thread, for B > 1
};

}  // namespace detail
}  // namespace snap
