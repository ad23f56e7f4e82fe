#pragma once
/// @file
/// Rolling truncated BPTT(L): at every step, the gradient of that step's loss through the last L
/// steps, recomputed under the current parameters (docs/math.md §8).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/engines/engine_core.hpp"

namespace snap {

/// Options of the rolling BPTT engine.
struct RollingBPTTOptions {
  /// L ≥ 1: the steps each loss is backpropagated through.
  Index window = 16;
};

/// Rolling BPTT(L): the engine keeps, per stream, the last L inputs and the state before them.
/// Each step recomputes those L steps from that state under the current parameters (so the
/// states it returns are those of the current θ over the window), and accumulate(δ_t) adds
/// the gradient of δ_tᵀ y_t through them: ε_t = δ_t, ε_τ = D_{τ+1}ᵀ ε_{τ+1}, g += Σ_τ I_τᵀ ε_τ
/// for the L steps τ of the window. Then the window slides by one: its first recomputed state
/// becomes the state before it. An update every step with this gradient is the "fully online"
/// truncated BPTT that online learners are compared with (unlike BPTT(T), which updates once
/// per window and backpropagates each loss only to its window's start). Memory L steps per
/// stream, time ≈ 3L forward steps per step.
template <class CellType_>
class RollingBPTT {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = RollingBPTTOptions;        ///< the engine's options

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  explicit RollingBPTT(const CellType& cell, const Options& options = {}, const Batch& batch = {})
      : m_core(cell, batch), m_options(options) {
    if (options.window < 1) detail::fail<ValueError>("RollingBPTTOptions::window", "a window L of at least 1 step", options.window);
    build();
  }

  /// Advances every stream by x_t (m × B) recomputing its window under the current parameters,
  /// and returns s_t (k × B). After a mask change the engine first rebuilds (empty windows,
  /// zero gradient, states kept).
  const Matrix<Scalar>& step(const MatrixView<Scalar>& inputs) {
    prepareStep(inputs);
    commitStep();
    return m_core.state();
  }
  /// The first half of step(): checks x_t and recomputes each stream's window with it, into
  /// workspaces; returns s_t without changing the engine.
  const Matrix<Scalar>& prepareStep(const MatrixView<Scalar>& inputs) {
    m_core.requireSameSizes();
    m_core.checkInput(inputs);
    if (m_core.cellChanged()) {  // new masks: computed as the rebuilt engine will step
      m_rebuild = std::make_unique<RollingBPTT>(rebuilt());
      m_rebuild->recompute(inputs);
      m_staged = true;
      return m_rebuild->m_next;
    }
    recompute(inputs);
    m_staged = true;
    return m_next;
  }
  /// y_t of the prepared step (o × B).
  const Matrix<Scalar>& preparedOutputs() const { return m_rebuild ? m_rebuild->m_nextOutputs : m_nextOutputs; }
  /// The second half of step(): takes the prepared step (the windows slide by one).
  /// @throws UsageError without a prepareStep() since the last step or reset
  void commitStep() {
    if (!m_staged) detail::fail<UsageError>("commitStep", "a prepareStep() before", "no prepared step");
    if (m_rebuild) {
      RollingBPTT engine = std::move(*m_rebuild);
      engine.m_staged = true;
      *this = std::move(engine);
    }
    const Index streams = m_core.streams(), L = m_options.window;
    for (Index b = 0; b < streams; ++b) {
      Index& count = m_counts[static_cast<std::size_t>(b)];
      // The new input joins the window; a full window drops its oldest input, and its first
      // recomputed state becomes the state before the window.
      if (count == L) {
        m_starts.col(b) = m_windowStates[0].col(b);
        for (Index t = 0; t + 1 < L; ++t) m_inputs[static_cast<std::size_t>(t)].col(b) = m_inputs[static_cast<std::size_t>(t + 1)].col(b);
        --count;
      }
      m_inputs[static_cast<std::size_t>(count)].col(b) = m_stagedInputs.col(b);
      ++count;
    }
    std::swap(m_caches, m_stagedCaches);
    std::swap(m_sources, m_stagedSources);
    std::swap(m_windowStates, m_stagedStates);
    m_core.m_state = m_next;
    m_core.m_outputs = m_nextOutputs;
    ++m_core.m_steps;
    for (Index& steps : m_core.m_streamSteps) ++steps;
    m_staged = false;
  }

  /// Adds the gradient of δ_t (over the outputs, o × B, or over the states, k × B, for a cell
  /// whose output is the head of its state) through each stream's window.
  void accumulate(const MatrixView<Scalar>& lossGradients) {
    checkGradients(lossGradients);
    const Index streams = m_core.streams();
    for (Index b = 0; b < streams; ++b) {
      const auto last = static_cast<std::size_t>(m_counts[static_cast<std::size_t>(b)] - 1);
      m_lastCaches[static_cast<std::size_t>(b)] = &m_caches[last][static_cast<std::size_t>(b)];
    }
    const Matrix<Scalar>& stateGradients = stateGradientsOf(lossGradients);
    m_core.workers().run([&](int t) {
      const detail::Range part = detail::partOf(streams, t, m_core.threads());
      for (Index b = part.begin; b < part.end; ++b) backward(b, stateGradients.col(b), m_streamGradients.col(b));
    });
    for (Index b = 0; b < streams; ++b) m_core.m_gradient += m_streamGradients.col(b);  // in stream order
  }

  /// The accumulated gradient, θ-ordered, summed over the streams.
  const Vector<Scalar>& gradient() const { return m_core.m_gradient; }
  /// Sets the accumulated gradient to zero; the windows carry on.
  void resetGradient() { m_core.m_gradient.setZero(); }

  /// New sequences on every stream: zero states, empty windows.
  void resetState() {
    m_core.resetState();
    clearWindows();
  }
  /// New sequences from the states `initial` (k × B), with empty windows.
  void resetState(const MatrixView<Scalar>& initial) {
    m_core.resetState(initial);
    clearWindows();
    m_starts = initial;
  }
  /// A new sequence on stream b alone.
  void resetStream(Index stream) {
    m_core.resetStream(stream);
    m_counts[static_cast<std::size_t>(stream)] = 0;
    m_starts.col(stream).setZero();
    m_staged = false;
    m_rebuild.reset();
  }

  /// s_t of every stream, k × B.
  const Matrix<Scalar>& state() const { return m_core.state(); }
  /// y_t of every stream, o × B.
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
  const Options& options() const { return m_options; }
  /// Steps in stream b's window (at most L).
  Index windowSteps(Index stream = 0) const { return m_counts[static_cast<std::size_t>(m_core.checkedStream(stream))]; }
  /// Bytes of the windows: L caches, sources, inputs and states per stream, and the starts.
  std::size_t bytes() const {
    const CellType& cell = m_core.cell();
    const Index perStep = m_caches.front().front().size() + cell.layout().sourceSize() + cell.inputSize() + cell.stateSize();
    return static_cast<std::size_t>((perStep * m_options.window + cell.stateSize()) * m_core.streams()) * sizeof(Scalar);
  }

  /// Writes the engine's state under `prefix`: the states and outputs, each stream's window
  /// (`window/inputs` B × L × m, `window/counts` B, `window/starts` B × k, and for each window
  /// step t its caches, sources and states under `window/step<t>/`, so that a resumed run
  /// computes exactly what the uninterrupted one does) and the gradient.
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);
    m_core.save(archive, prefix, "RollingBPTT");
    putScalar<std::int64_t>(archive, prefix + "window", m_options.window);
    const Index streams = m_core.streams(), L = m_options.window, m = m_core.m_inputSize;
    std::vector<Scalar> inputs(static_cast<std::size_t>(streams * L * m));
    for (Index b = 0; b < streams; ++b)
      for (Index t = 0; t < L; ++t)
        Eigen::Map<Vector<Scalar>>(inputs.data() + (b * L + t) * m, m) = m_inputs[static_cast<std::size_t>(t)].col(b);
    archive[prefix + "window/inputs"] = NpyArray::of(inputs.data(), {streams, L, m});
    std::vector<std::int64_t> counts(m_counts.begin(), m_counts.end());
    archive[prefix + "window/counts"] = NpyArray::of(counts.data(), {streams});
    putArray(archive, prefix + "window/starts", Matrix<Scalar>(m_starts.transpose()));
    for (Index t = 0; t < L; ++t) {
      const std::string step = prefix + "window/step" + std::to_string(t) + "/";
      detail::EngineCore<CellType>::saveCaches(archive, step, m_caches[static_cast<std::size_t>(t)]);
      putArray(archive, step + "sources", Matrix<Scalar>(m_sources[static_cast<std::size_t>(t)].transpose()));
      putArray(archive, step + "states", Matrix<Scalar>(m_windowStates[static_cast<std::size_t>(t)].transpose()));
    }
    putArray(archive, prefix + "gradient", m_core.m_gradient);
  }
  /// Restores what saveState wrote, checked against the bound cell, B and L; on any error the
  /// engine is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    RollingBPTT loaded(cell(), m_options, batch());
    loaded.m_core.load(archive, prefix, "RollingBPTT");
    readScalar<std::int64_t>(archive, prefix + "window", m_options.window, m_options.window);
    const Index streams = loaded.streams(), L = m_options.window, m = loaded.m_core.m_inputSize;
    const Index k = loaded.m_core.m_stateSize, sources = loaded.m_sources.front().rows();
    const std::vector<Scalar> inputs = readValues<Scalar>(archive, prefix + "window/inputs", {streams, L, m});
    const std::vector<std::int64_t> counts =
        readValues<std::int64_t>(archive, prefix + "window/counts", {streams}, Domain<std::int64_t>{0, L});
    const Matrix<Scalar> starts = readMatrix<Matrix<Scalar>>(archive, prefix + "window/starts", streams, k);
    for (Index t = 0; t < L; ++t) {
      const std::string step = prefix + "window/step" + std::to_string(t) + "/";
      detail::EngineCore<CellType>::loadCaches(archive, step, loaded.m_caches[static_cast<std::size_t>(t)]);
      loaded.m_sources[static_cast<std::size_t>(t)] = readMatrix<Matrix<Scalar>>(archive, step + "sources", streams, sources).transpose();
      loaded.m_windowStates[static_cast<std::size_t>(t)] = readMatrix<Matrix<Scalar>>(archive, step + "states", streams, k).transpose();
    }
    loaded.m_core.m_gradient = readVector<Scalar>(archive, prefix + "gradient", loaded.m_core.m_gradient.size());
    for (Index b = 0; b < streams; ++b) {
      if (counts[static_cast<std::size_t>(b)] > loaded.m_core.streamSteps(b))
        detail::fail<FormatError>(detail::arrayArgument(prefix + "window/counts"), "at most the stream's steps since its reset",
                                  counts[static_cast<std::size_t>(b)]);
      for (Index t = 0; t < L; ++t)
        loaded.m_inputs[static_cast<std::size_t>(t)].col(b) = Eigen::Map<const Vector<Scalar>>(inputs.data() + (b * L + t) * m, m);
      loaded.m_counts[static_cast<std::size_t>(b)] = static_cast<Index>(counts[static_cast<std::size_t>(b)]);
    }
    loaded.m_starts = starts.transpose();
    *this = std::move(loaded);
  }

  /// Takes the other engine's state.
  RollingBPTT(RollingBPTT&&) noexcept = default;
  /// Takes the other engine's state.
  RollingBPTT& operator=(RollingBPTT&&) noexcept = default;

private:
  RollingBPTT rebuilt() const {
    RollingBPTT engine(cell(), m_options, batch());
    engine.m_core.keepFrom(m_core);
    engine.m_starts = m_core.state();  // the windows restart from the current states
    return engine;
  }

  void build() {
    m_core.resize();
    const CellType& cell = m_core.cell();
    const Index streams = m_core.streams(), L = m_options.window, k = cell.stateSize();
    const Index perStep = detail::checkedSum("cell", cell.makeCache().size(),
                                             cell.layout().sourceSize() + cell.inputSize() + 2 * k);
    detail::requireArray<Scalar>("RollingBPTTOptions::window", detail::checkedProduct("Batch::streams", L, streams), perStep,
                                 "rolling BPTT windows (L steps of B streams)");
    m_caches.assign(static_cast<std::size_t>(L), std::vector<StepCache<Scalar>>(static_cast<std::size_t>(streams), cell.makeCache()));
    m_stagedCaches = m_caches;
    m_sources.assign(static_cast<std::size_t>(L), Matrix<Scalar>::Zero(cell.layout().sourceSize(), streams));
    m_stagedSources = m_sources;
    m_windowStates.assign(static_cast<std::size_t>(L), Matrix<Scalar>::Zero(k, streams));
    m_stagedStates = m_windowStates;
    m_inputs.assign(static_cast<std::size_t>(L), Matrix<Scalar>::Zero(cell.inputSize(), streams));
    m_stagedInputs = Matrix<Scalar>::Zero(cell.inputSize(), streams);
    m_starts = Matrix<Scalar>::Zero(k, streams);
    m_next = Matrix<Scalar>::Zero(k, streams);
    m_nextOutputs = Matrix<Scalar>::Zero(cell.outputSize(), streams);
    m_counts.assign(static_cast<std::size_t>(streams), 0);
    m_epsilon = Matrix<Scalar>::Zero(k, streams);
    m_previous = Matrix<Scalar>::Zero(k, streams);
    m_adjoint = Matrix<Scalar>::Zero(cell.layout().factorCount(), streams);
    m_streamGradients = Matrix<Scalar>::Zero(cell.parameterCount(), streams);
    m_lastCaches.assign(static_cast<std::size_t>(streams), nullptr);
    m_stateGradients = Matrix<Scalar>::Zero(k, streams);
    m_outputFactors = Matrix<Scalar>::Zero(cell.layout().factorCount(), streams);
    m_staged = false;
  }

  void clearWindows() {
    std::fill(m_counts.begin(), m_counts.end(), Index(0));
    m_starts.setZero();
    m_staged = false;
    m_rebuild.reset();
  }

  /// Runs stream b's window (its inputs, then x) from its start under the current parameters into
  /// the staged caches, sources and states; returns the number of steps run.
  Index runWindow(Index b, const Scalar* input, bool withNew) {
    const CellType& cell = m_core.cell();
    const Index L = m_options.window, stored = m_counts[static_cast<std::size_t>(b)];
    // With a new input and a full window, the oldest input falls out first.
    const Index first = withNew && stored == L ? 1 : 0, steps = stored - first + (withNew ? 1 : 0);
    const Index m = m_core.m_inputSize;
    Eigen::Ref<const Vector<Scalar>> start = first == 0 ? m_starts.col(b) : windowStateOfCommitted(b);
    for (Index t = 0; t < steps; ++t) {
      const bool isNew = withNew && t == steps - 1;
      const Eigen::Map<const Vector<Scalar>> x(isNew ? input : m_inputs[static_cast<std::size_t>(t + first)].col(b).data(), m);
      StepCache<Scalar>& cache = m_stagedCaches[static_cast<std::size_t>(t)][static_cast<std::size_t>(b)];
      const auto previous = t == 0 ? Eigen::Ref<const Vector<Scalar>>(start)
                                   : Eigen::Ref<const Vector<Scalar>>(m_stagedStates[static_cast<std::size_t>(t - 1)].col(b));
      auto next = m_stagedStates[static_cast<std::size_t>(t)].col(b);
      cell.forward(x, previous, next, cache);
      cell.sources(cache, x, previous, m_stagedSources[static_cast<std::size_t>(t)].col(b));
    }
    return steps;
  }
  /// The state after the first step of stream b's committed window (the start once it slides).
  Eigen::Ref<const Vector<Scalar>> windowStateOfCommitted(Index b) const { return m_windowStates[0].col(b); }

  /// prepareStep's work: each stream's window with x_t, recomputed.
  void recompute(const MatrixView<Scalar>& inputs) {
    m_stagedInputs = inputs;
    const CellType& cell = m_core.cell();
    const Index streams = m_core.streams();
    m_core.workers().run([&](int t) {
      const detail::Range part = detail::partOf(streams, t, m_core.threads());
      for (Index b = part.begin; b < part.end; ++b) {
        const Index steps = runWindow(b, m_stagedInputs.col(b).data(), true);
        const auto last = static_cast<std::size_t>(steps - 1);
        m_next.col(b) = m_stagedStates[last].col(b);
        cell.output(m_stagedCaches[last][static_cast<std::size_t>(b)], m_next.col(b), m_nextOutputs.col(b));
      }
    });
    detail::requireFinite("next state", m_next);
    detail::requireFinite("output", m_nextOutputs);
  }
  void checkGradients(const MatrixView<Scalar>& lossGradients) const {
    m_core.checkStateGradient(lossGradients);
    if (m_core.cellChanged())
      detail::fail<UsageError>("accumulate", "a step() since the cell's masks changed", "a mask change after the last step");
  }
  /// δ_s of every stream from its window's last step.
  const Matrix<Scalar>& stateGradientsOf(const MatrixView<Scalar>& lossGradients) {
    const CellType& cell = m_core.cell();
    m_outputTerm = false;
    if constexpr (requirement::OutputIsStateHead<CellType>) {
      if (lossGradients.rows() == m_core.m_stateSize) {
        m_stateGradients = lossGradients;
      } else {
        m_stateGradients.topRows(lossGradients.rows()) = lossGradients;
        m_stateGradients.bottomRows(m_core.m_stateSize - lossGradients.rows()).setZero();
      }
    } else {
      for (Index b = 0; b < m_core.streams(); ++b)
        cell.outputBackward(*m_lastCaches[static_cast<std::size_t>(b)], lossGradients.col(b), m_stateGradients.col(b),
                            m_outputFactors.col(b));
      m_outputTerm = true;
    }
    return m_stateGradients;
  }

  /// Stream b's gradient of δ through its window, into `gradient`.
  void backward(Index b, const Eigen::Ref<const Vector<Scalar>>& delta, Eigen::Ref<Vector<Scalar>> gradient) {
    const CellType& cell = m_core.cell();
    const ParameterLayout& layout = cell.layout();
    const Index steps = m_counts[static_cast<std::size_t>(b)];
    gradient.setZero();
    auto epsilon = m_epsilon.col(b), previous = m_previous.col(b), adjoint = m_adjoint.col(b);
    epsilon = delta;
    if (m_outputTerm)
      layout.template addParameterGradient<Scalar>(m_outputFactors.col(b), m_sources[static_cast<std::size_t>(steps - 1)].col(b),
                                                   gradient);
    for (Index t = steps - 1; t >= 0; --t) {
      const StepCache<Scalar>& cache = m_caches[static_cast<std::size_t>(t)][static_cast<std::size_t>(b)];
      if (t > 0)
        cell.vectorJacobianProduct(cache, epsilon, previous, adjoint);
      else
        cell.factorGradient(cache, epsilon, adjoint);
      layout.template addParameterGradient<Scalar>(adjoint, m_sources[static_cast<std::size_t>(t)].col(b), gradient);
      if (t > 0) epsilon = previous;
    }
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  std::vector<std::vector<StepCache<Scalar>>> m_caches, m_stagedCaches;  ///< window step t, stream b
  std::vector<Matrix<Scalar>> m_sources, m_stagedSources;                ///< window step t: S × B
  std::vector<Matrix<Scalar>> m_windowStates, m_stagedStates;            ///< window step t: the states after it, k × B
  std::vector<Matrix<Scalar>> m_inputs;                                  ///< window step t: m × B
  Matrix<Scalar> m_stagedInputs, m_starts, m_next, m_nextOutputs;
  std::vector<Index> m_counts;  ///< steps in each stream's window
  Matrix<Scalar> m_epsilon, m_previous, m_adjoint, m_streamGradients, m_stateGradients, m_outputFactors;
  std::vector<const StepCache<Scalar>*> m_lastCaches;
  std::unique_ptr<RollingBPTT> m_rebuild;  ///< the engine a step under new masks continues with
  bool m_staged = false;
  bool m_outputTerm = false;
};

}  // namespace snap
