#pragma once
/// @file
/// Unbiased Online Recurrent Optimization: a rank-one estimate of the influence (docs/math.md §5).

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/core/random.hpp"
#include "snap/engines/engine_core.hpp"

namespace snap {

/// Options of the UORO engine.
struct UOROOptions {
  double epsilon = 1e-7;   ///< ε of the normalisers ρ0 and ρ1, > 0
  std::uint64_t seed = 0;  ///< seeds the sign vectors ν: stream b draws from a generator seeded seed + b
};

/// UORO: J_t ≈ s̃_t θ̃_tᵀ, updated with a fresh sign vector ν each step so that
/// E[s̃_t θ̃_tᵀ] = D_t s̃_{t−1} θ̃_{t−1}ᵀ + I_t (docs/math.md §5). Forward-mode product a = D_t s̃,
/// reverse-mode product b = I_tᵀ ν, kept factored (its norm and its addition to θ̃ read the
/// factor gradient and the sources); memory k + p, time O(nnz(D) + p) per step and
/// stream. Each stream has its own estimate (column b of s̃, k × B, and of θ̃, p × B) and its own
/// generator; the gradient Σ_b (δ_bᵀ s̃_b) θ̃_b is one matrix–vector product over θ̃.
template <class CellType_>
class UORO {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = UOROOptions;               ///< the engine's options

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  /// `batch` gives the streams B advanced together and the threads that share the work.
  explicit UORO(const CellType& cell, const Options& options = {}, const Batch& batch = {})
      : m_core(cell, batch), m_options(options),
        m_epsilon(detail::positiveOptionIn<Scalar>("UOROOptions::epsilon", options.epsilon, "a finite epsilon > 0")) {
    for (Index b = 0; b < m_core.streams(); ++b) m_random.emplace_back(options.seed + static_cast<std::uint64_t>(b));
    build();
  }

  /// Advances the states with the inputs x_t (m × B; a vector for one stream), updates the
  /// rank-one estimates, and returns s_t (k × B). After a mask change of the cell, the engine
  /// first rebuilds for the new masks (zero estimates and gradient, states and generators kept).
  /// Every argument is checked before anything changes.
  const Matrix<Scalar>& step(const MatrixView<Scalar>& inputs) {
    prepareStep(inputs);
    commitStep();
    return m_core.state();
  }

  /// y_t of the step prepareStep() computed (o × B), before commitStep() takes it.
  const Matrix<Scalar>& preparedOutputs() const { return m_core.stagedOutputs(); }

  /// The first half of step(): checks x_t (and that the cell keeps its sizes) and computes
  /// s_t from the current state, which it returns without changing anything else; commitStep()
  /// then takes the step. What a trainer calls to score s_t before the engine moves.
  const Matrix<Scalar>& prepareStep(const MatrixView<Scalar>& inputs) {
    m_core.requireSameSizes();
    return m_core.stage(inputs);
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
    // The streams are independent: each thread updates its share of them.
    m_core.workers().run([&](int t) {
      const detail::Range streams = detail::partOf(m_core.streams(), t, m_core.threads());
      for (Index b = streams.begin; b < streams.end; ++b) updateEstimate(b);
    });
  }

  /// Adds Σ_b (δ_bᵀ s̃_b) θ̃_b to the gradient, for the loss gradients of the last step: over the
  /// outputs y_t (o × B), or over the states s_t (k × B) for a cell whose output is the head of
  /// its state.
  void accumulate(const MatrixView<Scalar>& lossGradients) {
    m_core.checkStateGradient(lossGradients);
    const Matrix<Scalar>& stateGradients = m_core.toStateGradients(lossGradients);
    m_core.addOutputTerm(m_core.m_gradient);
    m_weights = (stateGradients.cwiseProduct(m_stateEstimate)).colwise().sum().transpose();
    // g += θ̃ w, split into fixed tiles of parameters (the same sums for every thread count).
    const Index p = m_parameterEstimate.rows(), tiles = (p + parameterTile - 1) / parameterTile;
    m_core.workers().run([&](int t) {
      const detail::Range part = detail::partOf(tiles, t, m_core.threads());
      for (Index tile = part.begin; tile < part.end; ++tile) {
        const Index j0 = tile * parameterTile, count = std::min(parameterTile, p - j0);
        m_core.m_gradient.segment(j0, count).noalias() += m_parameterEstimate.middleRows(j0, count) * m_weights;
      }
    });
  }

  /// The accumulated gradient, θ-ordered (cell().unflatten() gives the PyTorch tensors).
  const Vector<Scalar>& gradient() const { return m_core.m_gradient; }
  /// Sets the accumulated gradient to zero; the state and the estimate s̃, θ̃ carry on.
  void resetGradient() { m_core.m_gradient.setZero(); }

  /// Zero states and zero estimates (new sequences on every stream). resetState(S0) starts
  /// from the columns of S0.
  void resetState() {
    m_core.resetState();
    clearEstimate();
  }
  /// New sequences from the states `initial` (k × B), with zero estimates.
  /// @throws ShapeError unless `initial` is k × B
  /// @throws NonFiniteError if `initial` holds a NaN or an infinity (nothing changes then)
  void resetState(const MatrixView<Scalar>& initial) {
    m_core.resetState(initial);
    clearEstimate();
  }
  /// A new sequence on stream b alone: zero state and zero estimate; the other streams go on.
  /// @throws ShapeError unless 0 ≤ stream < B
  void resetStream(Index stream) {
    m_core.resetStream(stream);
    m_stateEstimate.col(stream).setZero();
    m_parameterEstimate.col(stream).setZero();
    m_parameterNorms[stream] = 0;
  }

  /// s̃ (k × B): J ≈ s̃ θ̃ᵀ for each stream's column.
  const Matrix<Scalar>& stateEstimate() const { return m_stateEstimate; }
  /// θ̃ (p × B, θ-ordered).
  const Matrix<Scalar>& parameterEstimate() const { return m_parameterEstimate; }
  /// Sets the rank-one estimates (for checkpoints and tests): k × B and p × B.
  void setEstimate(const MatrixView<Scalar>& stateEstimate, const MatrixView<Scalar>& parameterEstimate) {
    m_core.requireColumns("state estimate", stateEstimate, m_stateEstimate.rows());
    m_core.requireColumns("parameter estimate", parameterEstimate, m_parameterEstimate.rows());
    detail::requireFinite("state estimate", stateEstimate);
    detail::requireFinite("parameter estimate", parameterEstimate);
    m_stateEstimate = stateEstimate;
    m_parameterEstimate = parameterEstimate;
    m_parameterNorms = m_parameterEstimate.colwise().norm().transpose();
  }
  /// The generator of stream b's sign vectors (its state is part of a checkpoint).
  Random& random(Index stream = 0) { return m_random[static_cast<std::size_t>(m_core.checkedStream(stream))]; }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the states, s̃ and θ̃
  /// (B × k and B × p), the gradient and each stream's generator of ν (`random<b>`).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, "UORO");
    putArray(archive, prefix + "state_estimate", Matrix<Scalar>(m_stateEstimate.transpose()));
    putArray(archive, prefix + "parameter_estimate", Matrix<Scalar>(m_parameterEstimate.transpose()));
    putArray(archive, prefix + "gradient", m_core.m_gradient);
    for (std::size_t b = 0; b < m_random.size(); ++b) putRandom(archive, prefix + "random" + std::to_string(b), m_random[b]);
  }
  /// Restores what saveState wrote, checked against the bound cell (FormatError naming the
  /// array otherwise); on any error the engine is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    UORO loaded(cell(), m_options, batch());
    loaded.m_core.load(archive, prefix, "UORO");
    const Index k = loaded.m_stateEstimate.rows(), p = loaded.m_parameterEstimate.rows(), streams = loaded.streams();
    loaded.m_stateEstimate = readMatrix<Matrix<Scalar>>(archive, prefix + "state_estimate", streams, k).transpose();
    loaded.m_parameterEstimate = readMatrix<Matrix<Scalar>>(archive, prefix + "parameter_estimate", streams, p).transpose();
    loaded.m_parameterNorms = loaded.m_parameterEstimate.colwise().norm().transpose();  // as step() computes them
    loaded.m_core.m_gradient = readVector<Scalar>(archive, prefix + "gradient", p);
    for (std::size_t b = 0; b < loaded.m_random.size(); ++b)
      loaded.m_random[b] = readRandom(archive, prefix + "random" + std::to_string(b));
    *this = std::move(loaded);
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
  const Options& options() const { return m_options; }
  /// Bytes of the estimates: (k + p) · B values.
  std::size_t bytes() const {
    return static_cast<std::size_t>(m_stateEstimate.size() + m_parameterEstimate.size()) * sizeof(Scalar);
  }

private:
  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (zero estimate and gradient) with the state, step count and generator kept.
  UORO rebuilt() const {
    UORO engine(cell(), m_options, batch());
    engine.m_core.keepFrom(m_core);
    engine.m_random = m_random;
    return engine;
  }

  /// Parameters of one unit of the gradient's product: a fixed split, the same for every T.
  static constexpr Index parameterTile = 4096;

  void build() {
    m_core.resize();
    const CellType& cell = m_core.cell();
    const Index k = cell.stateSize(), p = cell.parameterCount(), streams = m_core.streams();
    detail::requireArray<Scalar>("Batch::streams", streams, detail::checkedSum("cell", k, p), "UORO estimates ((k + p) x B)");
    m_stateEstimate = Matrix<Scalar>::Zero(k, streams);
    m_parameterEstimate = Matrix<Scalar>::Zero(p, streams);
    m_forward = Matrix<Scalar>::Zero(k, streams);
    m_signs = Matrix<Scalar>::Zero(k, streams);
    m_adjoint = Matrix<Scalar>::Zero(cell.layout().factorCount(), streams);
    m_parameterNorms = Vector<Scalar>::Zero(streams);
    m_weights = Vector<Scalar>::Zero(streams);
  }
  void clearEstimate() {
    m_stateEstimate.setZero();
    m_parameterEstimate.setZero();
    m_parameterNorms.setZero();
  }

  /// Stream b's rank-one update with its committed step: s̃ ← ρ0 D_t s̃ + ρ1 ν, θ̃ ← θ̃ / ρ0 + I_tᵀ ν / ρ1.
  void updateEstimate(Index b) {
    const CellType& cell = m_core.cell();
    const auto& cache = m_core.m_caches[static_cast<std::size_t>(b)];
    const ParameterLayout& layout = cell.layout();
    auto forward = m_forward.col(b), signs = m_signs.col(b), adjoint = m_adjoint.col(b);
    const auto sources = m_core.m_sources.col(b);
    cell.dynamicsProduct(cache, m_stateEstimate.col(b), forward);  // a = D_t s̃_{t−1}
    m_random[static_cast<std::size_t>(b)].signs(signs);            // ν
    cell.factorGradient(cache, signs, adjoint);                    // b = I_tᵀ ν, factored
    const Scalar reverseNorm = std::sqrt(layout.template squaredNormOfParameterGradient<Scalar>(adjoint, sources));
    const Scalar epsilon = m_epsilon;
    const Scalar rho0 = std::sqrt((m_parameterNorms[b] + epsilon) / (forward.norm() + epsilon));
    const Scalar rho1 = std::sqrt((reverseNorm + epsilon) / (signs.norm() + epsilon));
    m_stateEstimate.col(b) = rho0 * forward + rho1 * signs;
    // θ̃ ← θ̃ / ρ0 + b / ρ1, in one pass over θ̃ from the factored b.
    adjoint /= rho1;
    layout.template addParameterGradient<Scalar>(adjoint, sources, m_parameterEstimate.col(b), Scalar(1) / rho0);
    m_parameterNorms[b] = m_parameterEstimate.col(b).norm();
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  std::vector<Random> m_random;  ///< one generator per stream, seeded seed + b
  Matrix<Scalar> m_stateEstimate, m_parameterEstimate, m_forward, m_signs, m_adjoint;
  Vector<Scalar> m_parameterNorms;  ///< ‖θ̃_b‖, kept from the update that produced θ̃
  Vector<Scalar> m_weights;         ///< δ_bᵀ s̃_b of the last accumulate()
  Scalar m_epsilon;                 ///< ε in the cell's scalar type, checked there
};

}  // namespace snap
