#pragma once
/// @file
/// A linear readout of h with softmax cross-entropy (docs/math.md §3, §7): the loss of each step and
/// its gradient δ_t with respect to the state. Its own parameters get the ordinary direct
/// gradient and are not part of θ.

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/arrays.hpp"

namespace snap {

/// y = W h + b over `outputs` classes, W (outputs × H) and b stored together in one
/// parameter vector [W row-major; b], initialised as torch.nn.Linear (uniform in ±1/√H).
template <class Scalar_>
class Readout {
public:
  using Scalar = Scalar_;  ///< float or double

  /// A readout of H = `hiddenSize` units over `outputs` classes, its weights drawn from `seed`.
  /// @throws ShapeError if hiddenSize < 1 or outputs < 2
  Readout(Index hiddenSize, Index outputs, std::uint64_t seed = 0) : m_hidden(hiddenSize), m_outputs(outputs) {
    if (hiddenSize < 1) detail::fail<ShapeError>("hiddenSize", "at least 1", hiddenSize);
    if (outputs < 2) detail::fail<ShapeError>("outputs", "at least 2 classes", outputs);
    detail::requireArray<Scalar>("hiddenSize", hiddenSize, "state gradient (H)");
    const Index count = detail::checkedProduct("outputs", outputs, detail::checkedSum("hiddenSize", hiddenSize, 1));
    detail::requireArray<Scalar>("outputs", count, "parameters [W; b] (outputs x (H + 1))");
    Random random(seed);
    const double bound = 1.0 / std::sqrt(static_cast<double>(hiddenSize));
    m_parameters.resize(outputs * hiddenSize + outputs);
    for (Index i = 0; i < m_parameters.size(); ++i) m_parameters[i] = static_cast<Scalar>(random.uniform(-bound, bound));
    m_gradient = Vector<Scalar>::Zero(m_parameters.size());
    m_logits = Vector<Scalar>::Zero(outputs);
    m_probabilities = Vector<Scalar>::Zero(outputs);
    m_scores = Matrix<Scalar>::Zero(outputs, 1);
    m_scoredHidden = Matrix<Scalar>::Zero(hiddenSize, 1);
    m_scoredTargets.assign(1, 0);
    m_scored.assign(1, false);
    m_delta = Vector<Scalar>::Zero(hiddenSize);
  }

  /// H, the hidden units it reads.
  Index hiddenSize() const { return m_hidden; }
  /// The number of classes.
  Index outputs() const { return m_outputs; }

  /// W (outputs × H) and b, as views of the parameter vector.
  Eigen::Map<const RowMatrix<Scalar>> weight() const { return {m_parameters.data(), m_outputs, m_hidden}; }
  /// b (outputs values), a view of the parameter vector's tail.
  Eigen::Map<const Vector<Scalar>> bias() const { return {m_parameters.data() + m_outputs * m_hidden, m_outputs}; }

  /// [W row-major; b], what an optimizer updates.
  const Vector<Scalar>& parameters() const { return m_parameters; }
  /// [W row-major; b], writable.
  Vector<Scalar>& parameters() { return m_parameters; }
  /// Sets W and b from tensors of shapes outputs × H and outputs (of any scalar type), finite
  /// once converted to Scalar; on any error nothing changes.
  template <class Weight, class Bias>
  void setWeights(const Eigen::MatrixBase<Weight>& weight, const Eigen::MatrixBase<Bias>& bias) {
    detail::requireShape("readout weight", weight.rows(), weight.cols(), m_outputs, m_hidden);
    detail::requireShape("readout bias", bias.rows(), bias.cols(), m_outputs, 1);
    // Checked after the conversion: 1e300 is finite as a double and infinite as a float.
    const RowMatrix<Scalar> w = weight.template cast<Scalar>();
    const Vector<Scalar> b = bias.template cast<Scalar>();
    if (!w.allFinite() || !b.allFinite())
      detail::fail<ValueError>("readout weights", std::string("finite values in ") + detail::scalarName<Scalar>(),
                               "a NaN or infinity");
    Eigen::Map<RowMatrix<Scalar>>(m_parameters.data(), m_outputs, m_hidden) = w;
    m_parameters.tail(m_outputs) = b;
  }

  /// The accumulated gradient of the summed loss, in the order of parameters().
  const Vector<Scalar>& gradient() const { return m_gradient; }
  /// Sets the accumulated gradient to zero.
  void resetGradient() { m_gradient.setZero(); }

  /// Softmax probabilities of the last loss() or predict() call.
  const Vector<Scalar>& probabilities() const { return m_probabilities; }

  /// Softmax probabilities for the state's h (its first H entries). Probabilities that are not
  /// finite (logits that overflowed) throw NonFiniteError and leave probabilities() as it was.
  const Vector<Scalar>& predict(const VectorView<Scalar>& state) {
    checkState(state);
    softmax(state.head(m_hidden), m_logits);
    if (!detail::allFinite(m_logits)) detail::fail<NonFiniteError>("probabilities", "finite probabilities", "a NaN");
    m_probabilities = m_logits;
    return m_probabilities;
  }

  /// Cross-entropy −ln p(target) of the state's h, in nats. Writes δ = ∂loss/∂state into
  /// `stateGradient` (zero beyond h), adds the readout's own gradient and sets probabilities().
  /// All or nothing: a loss or δ that is not finite throws NonFiniteError and changes neither
  /// the readout nor `stateGradient`.
  Scalar loss(const VectorView<Scalar>& state, Index target, VectorSpan<Scalar> stateGradient) {
    const Scalar value = evaluateLoss(state, target, stateGradient);
    commitLoss();
    return value;
  }

  /// The first half of loss(): the loss and δ, with the same checks, but the readout's gradient
  /// and probabilities() are left as they are until commitLoss(). What a trainer calls to know
  /// that a step's loss is finite before it lets the engine take the step. The losses of B
  /// streams wait in B slots (`slot` = the stream) and commitLoss() adds them all; a slot
  /// evaluated twice keeps the last evaluation. The first use of a slot beyond those used so far
  /// sizes its storage once.
  Scalar evaluateLoss(const VectorView<Scalar>& state, Index target, VectorSpan<Scalar> stateGradient, Index slot = 0) {
    checkState(state);
    if (slot < 0) detail::fail<ShapeError>("slot", "an index >= 0", slot);
    if (target < 0 || target >= m_outputs)
      detail::fail<ValueError>("target", "a class in [0, " + detail::describe(m_outputs) + ")", target);
    detail::requireLength("state gradient", stateGradient.size(), state.size());
    const auto h = state.head(m_hidden);
    softmax(h, m_logits);
    const Scalar loss = -std::log(std::max(m_logits[target], std::numeric_limits<Scalar>::min()));
    if (!std::isfinite(loss) || !detail::allFinite(m_logits)) detail::fail<NonFiniteError>("loss", "a finite loss", loss);
    m_logits[target] -= Scalar(1);  // ∂loss/∂logits = p − onehot
    m_delta.noalias() = weight().transpose() * m_logits;
    detail::requireFinite("loss gradient", m_delta);
    if (slot >= static_cast<Index>(m_scored.size())) {
      detail::requireArray<Scalar>("slot", slot + 1, m_outputs + m_hidden, "pending losses");
      m_scores.conservativeResize(Eigen::NoChange, slot + 1);
      m_scoredHidden.conservativeResize(Eigen::NoChange, slot + 1);
      m_scoredTargets.resize(static_cast<std::size_t>(slot + 1), 0);
      m_scored.resize(static_cast<std::size_t>(slot + 1), false);
    }
    m_scores.col(slot) = m_logits;
    m_scoredHidden.col(slot) = h;
    m_scoredTargets[static_cast<std::size_t>(slot)] = target;
    m_scored[static_cast<std::size_t>(slot)] = true;
    stateGradient.setZero();
    stateGradient.head(m_hidden) = m_delta;
    return loss;
  }

  /// The second half of loss(): adds the gradients of the waiting evaluateLoss() calls, in slot
  /// order, and makes the probabilities of the last slot current.
  /// @throws UsageError when no evaluateLoss() is waiting
  void commitLoss() {
    Index last = -1;
    for (std::size_t slot = 0; slot < m_scored.size(); ++slot) {
      if (!m_scored[slot]) continue;
      const auto b = static_cast<Index>(slot);
      Eigen::Map<RowMatrix<Scalar>>(m_gradient.data(), m_outputs, m_hidden).noalias() +=
          m_scores.col(b) * m_scoredHidden.col(b).transpose();
      m_gradient.tail(m_outputs) += m_scores.col(b);
      m_scored[slot] = false;
      last = b;
    }
    if (last < 0) detail::fail<UsageError>("commitLoss", "an evaluateLoss() before", "none");
    m_probabilities = m_scores.col(last);
    m_probabilities[m_scoredTargets[static_cast<std::size_t>(last)]] += Scalar(1);
  }
  /// Forgets the waiting evaluateLoss() calls (a batch step refused before it was taken).
  void discardLosses() { std::fill(m_scored.begin(), m_scored.end(), false); }

  /// Nats to bits.
  static double bits(double nats) { return nats / std::numbers::ln2; }

  /// Writes `<prefix>weight` (outputs × H), `<prefix>bias` and `<prefix>gradient` (the
  /// gradient accumulated since the last update, in the order of parameters()).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    putArray(archive, prefix + "weight", weight());
    putArray(archive, prefix + "bias", bias());
    putArray(archive, prefix + "gradient", m_gradient);
  }
  /// Restores what saveState wrote, checked against this readout's sizes and finite
  /// (FormatError naming the array otherwise); on any error the readout is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    const auto w = readMatrix<RowMatrix<Scalar>>(archive, prefix + "weight", m_outputs, m_hidden);
    const auto b = readVector<Scalar>(archive, prefix + "bias", m_outputs);
    Vector<Scalar> gradient = readVector<Scalar>(archive, prefix + "gradient", m_gradient.size());
    setWeights(w, b);
    m_gradient = std::move(gradient);
  }

private:
  void checkState(const VectorView<Scalar>& state) const {
    if (state.size() < m_hidden)
      detail::fail<ShapeError>("state", "a state of at least H = " + detail::describe(m_hidden) + " entries",
                               state.size());
    detail::requireFinite("state", state.head(m_hidden));
  }
  /// out = softmax(W h + b), computed in place in `out`.
  template <class H>
  void softmax(const H& h, Vector<Scalar>& out) const {
    out.noalias() = weight() * h;
    out += bias();
    const Scalar largest = out.maxCoeff();
    out = (out.array() - largest).exp();
    out /= out.sum();
  }

  Index m_hidden, m_outputs;
  Vector<Scalar> m_parameters, m_gradient, m_probabilities;
  Vector<Scalar> m_logits;        ///< workspace of the softmax
  Matrix<Scalar> m_scores;        ///< p − onehot of each slot's evaluateLoss() (outputs × slots)
  Matrix<Scalar> m_scoredHidden;  ///< its h (H × slots)
  Vector<Scalar> m_delta;         ///< the δ over h of the last evaluateLoss()
  std::vector<Index> m_scoredTargets;
  std::vector<bool> m_scored;     ///< slot b's evaluateLoss() waits for commitLoss()
};

}  // namespace snap
