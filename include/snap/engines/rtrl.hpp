#pragma once
/// @file
/// Real-time recurrent learning with the full influence matrix (docs/math.md §3).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/engines/engine_core.hpp"
#include "snap/pattern/kernels.hpp"

namespace snap {

/// Options of the RTRL engine.
struct RTRLOptions {
  /// D_t is applied as a dense matrix when the dynamics graph has at least this density,
  /// as a sparse one below it. Both are exact; this only chooses the faster kernel.
  double denseDynamicsAbove = 0.25;
};

/// Exact RTRL: J_t = I_t + D_t J_{t−1}, g = Σ_t J_tᵀ δ_t (docs/math.md §3). Memory k·p, time
/// nnz(D)·p per step.
template <class CellType_>
class RTRL {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = RTRLOptions;               ///< the engine's options

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  explicit RTRL(const CellType& cell, const Options& options = {}) : m_core(cell), m_options(options) {
    if (std::isnan(options.denseDynamicsAbove))
      detail::fail<ValueError>("RTRLOptions::denseDynamicsAbove", "a density threshold (a number)", options.denseDynamicsAbove);
    build();
  }

  /// Advances the state with input x_t and returns s_t.
  /// After a mask change of the cell, the engine first rebuilds for the new masks (zero
  /// influence and gradient, state kept). Every argument is checked before anything changes.
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
      RTRL engine = rebuilt();
      engine.m_core.takeStaged(m_core);
      *this = std::move(engine);
    }
    if (m_pending) updateInfluence();
    m_core.commitStaged();
    m_pending = true;
  }

  /// Adds J_tᵀ δ_t to the gradient, δ_t = ∂L_t/∂s_t for the last step.
  void accumulate(const VectorView<Scalar>& stateGradient) {
    m_core.checkStateGradient(stateGradient);
    if (m_pending) updateInfluence();
    m_core.m_gradient.noalias() += m_influence.transpose() * stateGradient;
  }

  /// The accumulated gradient, θ-ordered (cell().unflatten() gives the PyTorch tensors).
  const Vector<Scalar>& gradient() const { return m_core.m_gradient; }
  /// Sets the accumulated gradient to zero; the state and the influence J carry on.
  void resetGradient() { m_core.m_gradient.setZero(); }

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

  /// Performs the lazy influence update of the last step now (it otherwise runs at the next
  /// accumulate() or step()); afterwards influence() needs no update.
  void flush() {
    if (!m_pending) return;
    m_core.requireUnchangedCell("flush");
    updateInfluence();
  }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the state, J, the
  /// gradient, and the last step's factors with the flag saying whether J still has to take
  /// that step (saved as is rather than flushed, so that a resumed run takes the same path).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, "RTRL");
    putArray(archive, prefix + "influence", m_influence);
    putArray(archive, prefix + "gradient", m_core.m_gradient);
    putScalar<std::int64_t>(archive, prefix + "pending", m_pending ? 1 : 0);
    m_core.saveStep(archive, prefix + "step/", m_pending);
  }
  /// Restores what saveState wrote, checked against the bound cell (FormatError naming the
  /// array otherwise); on any error the engine is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    RTRL loaded(cell(), m_options);
    loaded.m_core.load(archive, prefix, "RTRL");
    const Index k = loaded.m_influence.rows(), p = loaded.m_influence.cols();
    loaded.m_influence = readMatrix<RowMatrix<Scalar>>(archive, prefix + "influence", k, p);
    loaded.m_core.m_gradient = readVector<Scalar>(archive, prefix + "gradient", p);
    // A step is pending only after one was taken.
    loaded.m_pending = readScalar<std::int64_t>(archive, prefix + "pending", 0, loaded.steps() > 0 ? 1 : 0) == 1;
    loaded.m_core.loadStep(archive, prefix + "step/");
    *this = std::move(loaded);
  }

  /// s_t, the current state (k values; [h; c] for an LSTM).
  const Vector<Scalar>& state() const { return m_core.state(); }
  /// The cell the engine is bound to.
  const CellType& cell() const { return m_core.cell(); }
  /// Steps since the last resetState().
  Index steps() const { return m_core.steps(); }
  /// The influence matrix J_t (k × p).
  const RowMatrix<Scalar>& influence() {
    if (m_pending) {
      m_core.requireUnchangedCell("influence");
      updateInfluence();
    }
    return m_influence;
  }
  /// Bytes of the influence matrix J (k·p values), the state carried from step to step.
  std::size_t bytes() const { return static_cast<std::size_t>(m_influence.size()) * sizeof(Scalar); }
  /// Bytes of the per-step scratch: the second k × p buffer, D_t, and the product's packing.
  std::size_t workspaceBytes() const {
    return static_cast<std::size_t>(m_next.size() + m_denseDynamics.size()) * sizeof(Scalar) +
           m_values.size() * (sizeof(Scalar) + sizeof(StorageIndex)) + m_gemm.bytes();
  }
  /// The options the engine was built with.
  const Options& options() const { return m_options; }

private:
  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (zero influence and gradient, nothing pending) with the state and step count kept. Built
  /// apart, so that a refusal (an influence over snap::maxArrayBytes) changes nothing.
  RTRL rebuilt() const {
    RTRL engine(cell(), m_options);
    engine.m_core.keepFrom(m_core);
    return engine;
  }

  void build() {
    const CellType& cell = m_core.cell();
    const Index k = cell.stateSize(), p = cell.parameterCount();
    detail::requireArray<Scalar>("cell", k, p, "RTRL influence (k x p)");
    m_core.resize();
    m_influence = RowMatrix<Scalar>::Zero(k, p);
    m_next = RowMatrix<Scalar>::Zero(k, p);
    const SparsityPattern& graph = cell.dynamicsGraph();
    m_dense = static_cast<double>(graph.nonZeros()) >= m_options.denseDynamicsAbove * static_cast<double>(k * k);
    m_values.assign(static_cast<std::size_t>(graph.nonZeros()), Scalar(0));
    m_entryOrder.resize(static_cast<std::size_t>(graph.nonZeros()));
    for (std::size_t e = 0; e < m_entryOrder.size(); ++e) m_entryOrder[e] = static_cast<StorageIndex>(e);
    m_denseDynamics = RowMatrix<Scalar>::Zero(m_dense ? k : 0, m_dense ? k : 0);
    m_gemm = m_dense ? detail::GemmWorkspace<Scalar>(p, k, k) : detail::GemmWorkspace<Scalar>();
    m_pending = false;
  }

  void clearInfluence() {
    m_influence.setZero();
    m_pending = false;
  }

  /// J ← D_t J + I_t with the last step's factors.
  void updateInfluence() {
    const CellType& cell = m_core.cell();
    const auto& cache = m_core.m_cache;
    const SparsityPattern& graph = cell.dynamicsGraph();
    cell.dynamicsJacobian(cache, std::span<Scalar>(m_values));
    const Index k = m_influence.rows(), p = m_influence.cols();
    if (m_dense) {
      for (Index e = 0; e < graph.nonZeros(); ++e)
        m_denseDynamics(graph.entryRow(e), graph.column(e)) = m_values[static_cast<std::size_t>(e)];
      m_gemm.rowMajorProduct(k, k, p, m_denseDynamics.data(), m_influence.data(), m_next.data());
    } else {
      detail::sparseRowProduct(k, p, graph.rowStarts().data(), graph.columns().data(), m_entryOrder.data(),
                               m_values.data(), m_influence.data(), m_next.data());
    }
    addImmediate(cell, cache);
    std::swap(m_influence, m_next);
    m_pending = false;
  }

  /// m_next += I_t, column by column from the factored form (docs/math.md §2).
  void addImmediate(const CellType& cell, const StepCache<Scalar>& cache) {
    const ParameterLayout& layout = cell.layout();
    const CellStructure& structure = cell.structure();
    const Index hidden = cell.hiddenSize(), p = layout.size();
    const Scalar* z = m_core.m_sources.data();
    for (Index j = 0; j < p; ++j) {
      const Index f = layout.factor(j), unit = layout.unit(j), gate = layout.gate(j);
      const Scalar source = z[layout.source(j)];
      for (Index q = 0; q < structure.unitStates; ++q)
        if (structure.reaches(gate, q)) m_next(q * hidden + unit, j) += cache.factor(q, f) * source;
    }
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  RowMatrix<Scalar> m_influence, m_next, m_denseDynamics;
  std::vector<Scalar> m_values;
  std::vector<StorageIndex> m_entryOrder;  ///< 0, 1, …: the sparse kernel reads values in graph order
  detail::GemmWorkspace<Scalar> m_gemm;
  bool m_dense = true;
  bool m_pending = false;
};

}  // namespace snap
