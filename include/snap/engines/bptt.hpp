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
  /// T: the backward pass stops at the start of each window of T steps; the state carries
  /// across windows. Empty means untruncated (the history grows with the sequence).
  std::optional<Index> window;
};

/// BPTT: stores each step's cache, then ε_t = δ_t + D_{t+1}ᵀ ε_{t+1}, g = Σ_t I_tᵀ ε_t over the
/// window (docs/math.md §3). The gradient is, at any time, that of the loss so far: a window still
/// open is backpropagated when gradient() is read, and committed when it closes.
template <class CellType_>
class BPTT {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = BPTTOptions;               ///< the engine's options

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  explicit BPTT(const CellType& cell, const Options& options = {}) : m_core(cell), m_options(options) {
    if (options.window && *options.window < 1)
      detail::fail<ValueError>("BPTTOptions::window", "a window T of at least 1 step", *options.window);
    if (options.window) requireHistory("BPTTOptions::window", *options.window);
    build();
  }

  /// Advances the state with input x_t and returns s_t. Closes the window first if it is full.
  /// After a mask change of the cell, the engine first rebuilds for the new masks (empty
  /// window, zero gradient, state kept). Every argument is checked before anything changes;
  /// an untruncated history that would outgrow snap::maxArrayBytes is refused (ValueError).
  const Vector<Scalar>& step(const VectorView<Scalar>& input) {
    prepareStep(input);
    commitStep();
    return m_core.state();
  }

  /// The first half of step(): checks x_t (that the cell keeps its sizes, and that an
  /// untruncated history can grow) and computes s_t from the current state, which it returns
  /// without changing anything else; commitStep() then takes the step. What a trainer calls to
  /// score s_t before the engine moves.
  const Vector<Scalar>& prepareStep(const VectorView<Scalar>& input) {
    m_core.requireSameSizes();
    if (!m_options.window && m_count == capacity()) requireHistory("steps", 2 * capacity());
    return m_core.stage(input);
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
    const auto t = static_cast<std::size_t>(m_count);
    m_core.commitStaged(m_caches[t], m_sources.col(m_count));
    m_deltas.col(m_count).setZero();
    ++m_count;
    m_totalValid = false;
  }

  /// Records δ_t = ∂L_t/∂s_t for the last step.
  void accumulate(const VectorView<Scalar>& stateGradient) {
    m_core.checkStateGradient(stateGradient);
    if (m_count == 0)  // a mask change emptied the window after the last step
      detail::fail<UsageError>("accumulate", "a step() since the cell's masks changed", "no step");
    m_deltas.col(m_count - 1) += stateGradient;
    m_windowHasDeltas = true;
    m_totalValid = false;
  }

  /// The gradient of the loss so far, θ-ordered: closed windows plus the open one.
  const Vector<Scalar>& gradient() {
    m_core.requireSameSizes();
    if (m_count == 0 || !m_windowHasDeltas) {
      m_core.cell().layout().flattenInto(m_committed, m_core.m_gradient);
      return m_core.m_gradient;
    }
    if (!m_totalValid) {
      copyTensors(m_committed, m_total);
      backward(m_total);
      m_totalValid = true;
    }
    m_core.cell().layout().flattenInto(m_total, m_core.m_gradient);
    return m_core.m_gradient;
  }

  /// Forgets the gradient so far, including the contributions of the δ already given in the
  /// open window; later δ still backpropagate through the whole window.
  void resetGradient() {
    setZero(m_committed);
    m_deltas.leftCols(m_count).setZero();
    m_core.m_gradient.setZero();
    m_windowHasDeltas = false;
    m_totalValid = false;
  }

  /// Closes the open window (its gradient is kept) and starts a new sequence from zero or s0.
  void resetState() {
    commitWindow();
    m_core.resetState();
  }
  /// Closes the open window, as resetState() does, and starts from the state `initial`.
  /// @throws ShapeError unless `initial` has the state's length k
  /// @throws NonFiniteError if `initial` holds a NaN or an infinity (checked before the window
  ///         is closed: nothing changes then)
  void resetState(const VectorView<Scalar>& initial) {
    m_core.checkInitialState(initial);  // before the window is closed
    commitWindow();
    m_core.resetState(initial);
  }

  /// s_t, the current state (k values; [h; c] for an LSTM).
  const Vector<Scalar>& state() const { return m_core.state(); }
  /// The cell the engine is bound to.
  const CellType& cell() const { return m_core.cell(); }
  /// Steps since the last resetState() (closing a window does not reset it).
  Index steps() const { return m_core.steps(); }
  /// Steps stored in the open window.
  Index windowSteps() const { return m_count; }
  /// Bytes of the stored history (caches, sources, state gradients and adjoints).
  std::size_t bytes() const {
    const auto& cache = m_core.m_cache;
    const Index perStep = cache.immediateIh.size() + cache.immediateHh.size() + cache.direct.size() +
                          cache.preactivations.size() + m_sources.rows() + m_deltas.rows() + m_adjoints.rows();
    return static_cast<std::size_t>(perStep * capacity()) * sizeof(Scalar);
  }
  /// The options the engine was built with.
  const Options& options() const { return m_options; }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the state, the open
  /// window (its steps' factors, sources and δ, as arrays over the window's steps) and the
  /// committed gradient (the four tensors of the closed windows).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, "BPTT");
    putScalar<std::int64_t>(archive, prefix + "window", m_options.window.value_or(0));
    putScalar<std::int64_t>(archive, prefix + "window_has_deltas", m_windowHasDeltas ? 1 : 0);
    const StepCache<Scalar>& shape = m_core.m_cache;
    putSteps(archive, prefix + "window/immediate_ih", shape.immediateIh,
             [&](Index t) -> const Matrix<Scalar>& { return cacheAt(t).immediateIh; });
    putSteps(archive, prefix + "window/immediate_hh", shape.immediateHh,
             [&](Index t) -> const Matrix<Scalar>& { return cacheAt(t).immediateHh; });
    putSteps(archive, prefix + "window/direct", shape.direct,
             [&](Index t) -> const Matrix<Scalar>& { return cacheAt(t).direct; });
    const Index count = m_count;
    putArray(archive, prefix + "window/preactivations", preactivationsOfWindow());
    putArray(archive, prefix + "window/sources", Matrix<Scalar>(m_sources.leftCols(count).transpose()));
    putArray(archive, prefix + "window/deltas", Matrix<Scalar>(m_deltas.leftCols(count).transpose()));
    putArray(archive, prefix + "committed/weight_ih", m_committed.weight_ih);
    putArray(archive, prefix + "committed/weight_hh", m_committed.weight_hh);
    putArray(archive, prefix + "committed/bias_ih", m_committed.bias_ih);
    putArray(archive, prefix + "committed/bias_hh", m_committed.bias_hh);
  }
  /// Restores what saveState wrote, checked against the bound cell and the window T
  /// (FormatError naming the array otherwise); on any error the engine is left as it was. The
  /// open window's length is checked against T, the steps taken and every window array's
  /// shape, and every value read, before the history grows to hold it.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    BPTT loaded(cell(), m_options);
    loaded.m_core.load(archive, prefix, "BPTT");
    const std::int64_t window = m_options.window.value_or(0);
    readScalar<std::int64_t>(archive, prefix + "window", window, window);
    const std::int64_t longest = m_options.window ? *m_options.window : std::numeric_limits<std::int32_t>::max();
    const std::int64_t count = readLength(archive, prefix + "window/deltas", {loaded.m_deltas.rows()},
                                          std::min<std::int64_t>(longest, loaded.m_core.steps()));
    loaded.m_windowHasDeltas = readScalar<std::int64_t>(archive, prefix + "window_has_deltas", 0, count > 0 ? 1 : 0) == 1;
    const StepCache<Scalar>& shape = loaded.m_core.m_cache;
    const auto immediateIh = readValues<Scalar>(archive, prefix + "window/immediate_ih",
                                                {count, shape.immediateIh.rows(), shape.immediateIh.cols()});
    const auto immediateHh = readValues<Scalar>(archive, prefix + "window/immediate_hh",
                                                {count, shape.immediateHh.rows(), shape.immediateHh.cols()});
    const auto direct =
        readValues<Scalar>(archive, prefix + "window/direct", {count, shape.direct.rows(), shape.direct.cols()});
    const auto preactivations =
        readMatrix<Matrix<Scalar>>(archive, prefix + "window/preactivations", count, shape.preactivations.size());
    const auto sources = readMatrix<Matrix<Scalar>>(archive, prefix + "window/sources", count, loaded.m_sources.rows());
    const auto deltas = readMatrix<Matrix<Scalar>>(archive, prefix + "window/deltas", count, loaded.m_deltas.rows());
    const CellType& bound = cell();
    const Index rows = bound.gateRows();
    loaded.m_committed.weight_ih = readMatrix<RowMatrix<Scalar>>(archive, prefix + "committed/weight_ih", rows, bound.inputSize());
    loaded.m_committed.weight_hh = readMatrix<RowMatrix<Scalar>>(archive, prefix + "committed/weight_hh", rows, bound.hiddenSize());
    loaded.m_committed.bias_ih = readVector<Scalar>(archive, prefix + "committed/bias_ih", rows);
    loaded.m_committed.bias_hh = readVector<Scalar>(archive, prefix + "committed/bias_hh", rows);
    // Everything is read and checked: the history grows to the window's length.
    while (loaded.capacity() < count) loaded.grow();
    setSteps(immediateIh, count, [&](Index t) -> Matrix<Scalar>& { return loaded.cacheAt(t).immediateIh; });
    setSteps(immediateHh, count, [&](Index t) -> Matrix<Scalar>& { return loaded.cacheAt(t).immediateHh; });
    setSteps(direct, count, [&](Index t) -> Matrix<Scalar>& { return loaded.cacheAt(t).direct; });
    for (Index t = 0; t < count; ++t) loaded.cacheAt(t).preactivations = preactivations.row(t).transpose();
    loaded.m_sources.leftCols(count) = sources.transpose();
    loaded.m_deltas.leftCols(count) = deltas.transpose();
    loaded.m_count = static_cast<Index>(count);
    loaded.m_totalValid = false;
    *this = std::move(loaded);
  }

private:
  const StepCache<Scalar>& cacheAt(Index t) const { return m_caches[static_cast<std::size_t>(t)]; }
  StepCache<Scalar>& cacheAt(Index t) { return m_caches[static_cast<std::size_t>(t)]; }

  /// One matrix of each step of the open window (shaped as `shape`), as a count × rows × cols array.
  template <class Get>
  void putSteps(NpzArchive& archive, const std::string& name, const Matrix<Scalar>& shape, Get&& get) const {
    const Index count = m_count, rows = shape.rows(), cols = shape.cols();
    std::vector<Scalar> values(static_cast<std::size_t>(count * rows * cols));
    for (Index t = 0; t < count; ++t)
      Eigen::Map<RowMatrix<Scalar>>(values.data() + t * rows * cols, rows, cols) = get(t);
    archive[name] = NpyArray::of(values.data(), {count, rows, cols});
  }
  /// Sets one matrix of each of the first `count` steps (shaped as `get(t)`) from the
  /// count × rows × cols values readValues() returned.
  template <class Get>
  static void setSteps(const std::vector<Scalar>& values, Index count, Get&& get) {
    for (Index t = 0; t < count; ++t) {
      Matrix<Scalar>& target = get(t);
      const Index size = target.rows() * target.cols();
      target = Eigen::Map<const RowMatrix<Scalar>>(values.data() + t * size, target.rows(), target.cols());
    }
  }
  Matrix<Scalar> preactivationsOfWindow() const {
    Matrix<Scalar> values(m_count, m_core.m_cache.preactivations.size());
    for (Index t = 0; t < m_count; ++t) values.row(t) = cacheAt(t).preactivations.transpose();
    return values;
  }

  Index capacity() const { return static_cast<Index>(m_caches.size()); }

  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (empty window, zero gradient) with the state and step count kept.
  BPTT rebuilt() const {
    BPTT engine(cell(), m_options);
    engine.m_core.keepFrom(m_core);
    return engine;
  }

  /// Refuses a history of `steps` steps whose arrays would exceed snap::maxArrayBytes.
  void requireHistory(std::string_view argument, Index steps) const {
    const CellType& cell = m_core.cell();
    const StepCache<Scalar>& cache = m_core.m_cache;
    const Index perStep = cache.immediateIh.size() + cache.immediateHh.size() + cache.direct.size() +
                          cache.preactivations.size();
    detail::requireArray<StepCache<Scalar>>(argument, steps, "history of step caches");
    detail::requireArray<Scalar>(argument, steps, perStep, "history of step factors");
    detail::requireArray<Scalar>(argument, steps, cell.layout().sourceSize(), "history of sources");
    detail::requireArray<Scalar>(argument, steps, cell.stateSize(), "history of state gradients");
    detail::requireArray<Scalar>(argument, steps, 2 * cell.gateRows(), "history of adjoints");
  }

  void build() {
    m_core.resize();
    const CellType& cell = m_core.cell();
    const Index initial = m_options.window ? *m_options.window : 16;
    m_caches.assign(static_cast<std::size_t>(initial), cell.makeCache());
    m_sources = Matrix<Scalar>::Zero(cell.layout().sourceSize(), initial);
    m_deltas = Matrix<Scalar>::Zero(cell.stateSize(), initial);
    m_adjoints = Matrix<Scalar>::Zero(2 * cell.gateRows(), initial);
    m_epsilon = Vector<Scalar>::Zero(cell.stateSize());
    m_previous = Vector<Scalar>::Zero(cell.stateSize());
    m_committed = zeroTensors(cell);
    m_total = zeroTensors(cell);
    m_gemm = detail::GemmWorkspace<Scalar>(std::max(cell.inputSize(), cell.hiddenSize()), cell.gateRows(), initial);
    m_count = 0;
    m_windowHasDeltas = false;
    m_totalValid = false;
  }

  /// Doubles the history of an untruncated BPTT (the only allocation after construction).
  void grow() {
    const Index size = 2 * capacity();
    requireHistory("steps", size);
    m_caches.resize(static_cast<std::size_t>(size), m_core.cell().makeCache());
    m_sources.conservativeResize(Eigen::NoChange, size);
    m_deltas.conservativeResize(Eigen::NoChange, size);
    m_adjoints.conservativeResize(Eigen::NoChange, size);
  }

  static CellTensors<Scalar> zeroTensors(const CellType& cell) {
    return {RowMatrix<Scalar>::Zero(cell.gateRows(), cell.inputSize()),
            RowMatrix<Scalar>::Zero(cell.gateRows(), cell.hiddenSize()), Vector<Scalar>::Zero(cell.gateRows()),
            Vector<Scalar>::Zero(cell.gateRows())};
  }
  static void setZero(CellTensors<Scalar>& tensors) {
    tensors.weight_ih.setZero();
    tensors.weight_hh.setZero();
    tensors.bias_ih.setZero();
    tensors.bias_hh.setZero();
  }
  static void copyTensors(const CellTensors<Scalar>& from, CellTensors<Scalar>& to) {
    to.weight_ih = from.weight_ih;
    to.weight_hh = from.weight_hh;
    to.bias_ih = from.bias_ih;
    to.bias_hh = from.bias_hh;
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
    m_windowHasDeltas = false;
    m_totalValid = false;
  }

  /// target += Σ_t I_tᵀ ε_t over the open window, ε backpropagated from its end to its start.
  void backward(CellTensors<Scalar>& target) {
    m_core.requireSameSizes();  // the stored caches have the sizes of the cell the engine was built for
    const CellType& cell = m_core.cell();
    m_epsilon.setZero();
    for (Index t = m_count - 1; t >= 0; --t) {
      m_epsilon += m_deltas.col(t);
      const auto& cache = m_caches[static_cast<std::size_t>(t)];
      if (t > 0) {
        cell.vectorJacobianProduct(cache, m_epsilon, m_previous, m_adjoints.col(t));
        std::swap(m_epsilon, m_previous);
      } else {
        cell.preactivationGradient(cache, m_epsilon, m_adjoints.col(t));
      }
    }
    // Σ_t e_t z_tᵀ over the window as two matrix products (transposed: the targets are row-major).
    const Index rows = cell.gateRows(), inputs = cell.inputSize(), hidden = cell.hiddenSize();
    const Index sourceStride = m_sources.rows(), adjointStride = m_adjoints.rows();
    m_gemm.template accumulate<Eigen::ColMajor, Eigen::RowMajor>(inputs, rows, m_count, m_sources.data(), sourceStride,
                                                                 m_adjoints.data(), adjointStride,
                                                                 target.weight_ih.data(), inputs);
    m_gemm.template accumulate<Eigen::ColMajor, Eigen::RowMajor>(hidden, rows, m_count, m_sources.data() + inputs + 1,
                                                                 sourceStride, m_adjoints.data() + rows, adjointStride,
                                                                 target.weight_hh.data(), hidden);
    target.bias_ih += m_adjoints.topRows(rows).leftCols(m_count).rowwise().sum();
    target.bias_hh += m_adjoints.bottomRows(rows).leftCols(m_count).rowwise().sum();
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  std::vector<StepCache<Scalar>> m_caches;
  Matrix<Scalar> m_sources, m_deltas, m_adjoints;
  Vector<Scalar> m_epsilon, m_previous;
  CellTensors<Scalar> m_committed, m_total;
  detail::GemmWorkspace<Scalar> m_gemm;
  Index m_count = 0;
  bool m_windowHasDeltas = false;  ///< a δ of the open window is not yet in the committed gradient
  bool m_totalValid = false;       ///< m_total holds committed + the open window
};

}  // namespace snap
