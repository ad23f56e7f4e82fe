#pragma once
/// @file
/// Unbiased Online Recurrent Optimization: a rank-one estimate of the influence (docs/math.md §5).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>

#include "snap/cells/cell_concept.hpp"
#include "snap/core/random.hpp"
#include "snap/engines/engine_core.hpp"

namespace snap {

/// Options of the UORO engine.
struct UOROOptions {
  double epsilon = 1e-7;   ///< ε of the normalisers ρ0 and ρ1, > 0
  std::uint64_t seed = 0;  ///< seeds the sign vectors ν
};

/// UORO: J_t ≈ s̃_t θ̃_tᵀ, updated with a fresh sign vector ν each step so that
/// E[s̃_t θ̃_tᵀ] = D_t s̃_{t−1} θ̃_{t−1}ᵀ + I_t (docs/math.md §5). Forward-mode product a = D_t s̃,
/// reverse-mode product b = I_tᵀ ν, kept factored (its norm and its addition to θ̃ read the
/// 2·G·H preactivation gradient and the sources); memory k + p, time O(nnz(D) + p) per step.
template <class CellType_>
class UORO {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = UOROOptions;               ///< the engine's options

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  explicit UORO(const CellType& cell, const Options& options = {})
      : m_core(cell), m_options(options), m_random(options.seed),
        m_epsilon(detail::positiveOptionIn<Scalar>("UOROOptions::epsilon", options.epsilon, "a finite epsilon > 0")) {
    build();
  }

  /// Advances the state with input x_t, updates the rank-one estimate, and returns s_t.
  /// After a mask change of the cell, the engine first rebuilds for the new masks (zero
  /// estimate and gradient, state and generator kept). Every argument is checked before
  /// anything changes.
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

  /// The second half of step(): rebuilds after a mask change, makes the prepared step current
  /// and updates the rank-one estimate with it.
  /// @throws UsageError without a prepareStep() since the last step or reset
  void commitStep() {
    m_core.requireStaged("commitStep");
    if (m_core.cellChanged()) {
      UORO engine = rebuilt();
      engine.m_core.takeStaged(m_core);
      *this = std::move(engine);
    }
    m_core.commitStaged();
    const CellType& cell = m_core.cell();
    const auto& cache = m_core.m_cache;
    const ParameterLayout& layout = cell.layout();
    cell.dynamicsProduct(cache, m_stateEstimate, m_forward);  // a = D_t s̃_{t−1}
    m_random.signs(m_signs);                                  // ν
    cell.preactivationGradient(cache, m_signs, m_adjoint);    // b = I_tᵀ ν, factored
    const Scalar reverseNorm = std::sqrt(layout.template squaredNormOfParameterGradient<Scalar>(m_adjoint, m_core.m_sources));
    const Scalar epsilon = m_epsilon;
    const Scalar rho0 = std::sqrt((m_parameterNorm + epsilon) / (m_forward.norm() + epsilon));
    const Scalar rho1 = std::sqrt((reverseNorm + epsilon) / (m_signs.norm() + epsilon));
    m_stateEstimate = rho0 * m_forward + rho1 * m_signs;
    // θ̃ ← θ̃ / ρ0 + b / ρ1, in one pass over θ̃ from the factored b.
    m_adjoint /= rho1;
    layout.template addParameterGradient<Scalar>(m_adjoint, m_core.m_sources, m_parameterEstimate, Scalar(1) / rho0);
    m_parameterNorm = m_parameterEstimate.norm();
  }

  /// Adds (δ_tᵀ s̃_t) θ̃_t to the gradient.
  void accumulate(const VectorView<Scalar>& stateGradient) {
    m_core.checkStateGradient(stateGradient);
    m_core.m_gradient += stateGradient.dot(m_stateEstimate) * m_parameterEstimate;
  }

  /// The accumulated gradient, θ-ordered (cell().unflatten() gives the PyTorch tensors).
  const Vector<Scalar>& gradient() const { return m_core.m_gradient; }
  /// Sets the accumulated gradient to zero; the state and the estimate s̃, θ̃ carry on.
  void resetGradient() { m_core.m_gradient.setZero(); }

  /// Zero state and zero estimate (a new sequence). resetState(s0) starts from s0.
  void resetState() {
    m_core.resetState();
    clearEstimate();
  }
  /// A new sequence from the state `initial`, with a zero estimate.
  /// @throws ShapeError unless `initial` has the state's length k
  /// @throws NonFiniteError if `initial` holds a NaN or an infinity (nothing changes then)
  void resetState(const VectorView<Scalar>& initial) {
    m_core.resetState(initial);
    clearEstimate();
  }

  /// s̃ (k) and θ̃ (p): J ≈ s̃ θ̃ᵀ.
  const Vector<Scalar>& stateEstimate() const { return m_stateEstimate; }
  /// θ̃ (p values, θ-ordered).
  const Vector<Scalar>& parameterEstimate() const { return m_parameterEstimate; }
  /// Sets the rank-one estimate (for checkpoints and tests).
  void setEstimate(const VectorView<Scalar>& stateEstimate, const VectorView<Scalar>& parameterEstimate) {
    detail::requireLength("state estimate", stateEstimate.size(), m_stateEstimate.size());
    detail::requireLength("parameter estimate", parameterEstimate.size(), m_parameterEstimate.size());
    detail::requireFinite("state estimate", stateEstimate);
    detail::requireFinite("parameter estimate", parameterEstimate);
    m_stateEstimate = stateEstimate;
    m_parameterEstimate = parameterEstimate;
    m_parameterNorm = m_parameterEstimate.norm();
  }
  /// The generator of the sign vectors (its state is part of a checkpoint).
  Random& random() { return m_random; }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the state, s̃, θ̃, the
  /// gradient and the generator of ν.
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, "UORO");
    putArray(archive, prefix + "state_estimate", m_stateEstimate);
    putArray(archive, prefix + "parameter_estimate", m_parameterEstimate);
    putArray(archive, prefix + "gradient", m_core.m_gradient);
    putRandom(archive, prefix + "random", m_random);
  }
  /// Restores what saveState wrote, checked against the bound cell (FormatError naming the
  /// array otherwise); on any error the engine is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    UORO loaded(cell(), m_options);
    loaded.m_core.load(archive, prefix, "UORO");
    const Index k = loaded.m_stateEstimate.size(), p = loaded.m_parameterEstimate.size();
    loaded.m_stateEstimate = readVector<Scalar>(archive, prefix + "state_estimate", k);
    loaded.m_parameterEstimate = readVector<Scalar>(archive, prefix + "parameter_estimate", p);
    loaded.m_parameterNorm = loaded.m_parameterEstimate.norm();  // as step() computes it
    loaded.m_core.m_gradient = readVector<Scalar>(archive, prefix + "gradient", p);
    loaded.m_random = readRandom(archive, prefix + "random");
    *this = std::move(loaded);
  }

  /// s_t, the current state (k values; [h; c] for an LSTM).
  const Vector<Scalar>& state() const { return m_core.state(); }
  /// The cell the engine is bound to.
  const CellType& cell() const { return m_core.cell(); }
  /// Steps since the last resetState().
  Index steps() const { return m_core.steps(); }
  /// The options the engine was built with.
  const Options& options() const { return m_options; }
  /// Bytes of the estimate: k + p values.
  std::size_t bytes() const {
    return static_cast<std::size_t>(m_stateEstimate.size() + m_parameterEstimate.size()) * sizeof(Scalar);
  }

private:
  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (zero estimate and gradient) with the state, step count and generator kept.
  UORO rebuilt() const {
    UORO engine(cell(), m_options);
    engine.m_core.keepFrom(m_core);
    engine.m_random = m_random;
    return engine;
  }

  void build() {
    m_core.resize();
    const CellType& cell = m_core.cell();
    const Index k = cell.stateSize(), p = cell.parameterCount();
    m_stateEstimate = Vector<Scalar>::Zero(k);
    m_parameterEstimate = Vector<Scalar>::Zero(p);
    m_forward = Vector<Scalar>::Zero(k);
    m_signs = Vector<Scalar>::Zero(k);
    m_adjoint = Vector<Scalar>::Zero(2 * cell.gateRows());
    m_parameterNorm = 0;
  }
  void clearEstimate() {
    m_stateEstimate.setZero();
    m_parameterEstimate.setZero();
    m_parameterNorm = 0;
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  Random m_random;
  Vector<Scalar> m_stateEstimate, m_parameterEstimate, m_forward, m_signs, m_adjoint;
  Scalar m_epsilon;            ///< ε in the cell's scalar type, checked there
  Scalar m_parameterNorm = 0;  ///< ‖θ̃‖, kept from the update that produced θ̃
};

}  // namespace snap
