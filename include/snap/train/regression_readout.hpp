#pragma once
/// @file
/// A linear readout of real targets with the squared-error loss (docs/math.md §3): the loss of
/// each step, its gradient δ_t over the cell's output y, and the readout's own direct gradient.

#include <cmath>
#include <cstdint>
#include <string>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/arrays.hpp"
#include "snap/train/readout.hpp"

namespace snap {

/// Regression of `outputs` real targets from the linear map ŷ = W y + b (LinearReadout), with
/// the loss L = ½ ‖W y + b − target‖² = ½ Σ_i (ŷ_i − target_i)²: half the squared error
/// summed (not averaged) over the outputs, so that its gradient over ŷ is the error
/// e = ŷ − target itself. δ = ∂L/∂y = Wᵀ e (or B e with Feedback::Random); the readout's own
/// gradient is ∂L/∂W = e yᵀ, ∂L/∂b = e. Its API is Readout's, with a vector of real targets in
/// place of a class.
template <class Scalar_>
class RegressionReadout : public LinearReadout<Scalar_> {
  using Base = LinearReadout<Scalar_>;

public:
  using Scalar = Scalar_;  ///< float or double

  /// A readout of H = `hiddenSize` values onto `outputs` real outputs, its weights drawn from
  /// `seed` (then, with Feedback::Random, its feedback B) as Readout's are.
  /// @throws ShapeError if hiddenSize < 1 or outputs < 1
  /// @throws ValueError for an unknown ReadoutOptions::feedback
  RegressionReadout(Index hiddenSize, Index outputs, std::uint64_t seed = 0, const ReadoutOptions& options = {})
      : Base(hiddenSize, outputs, seed, options, 1, "at least 1 output") {
    m_prediction = Vector<Scalar>::Zero(outputs);
    m_work = Vector<Scalar>::Zero(outputs);
    m_error = Vector<Scalar>::Zero(outputs);
    m_predictions = Matrix<Scalar>::Zero(outputs, 1);
  }

  /// ŷ of the last predict() or commitLoss() (of the last slot committed).
  const Vector<Scalar>& prediction() const { return m_prediction; }

  /// ŷ = W y + b for the output's first H entries. A prediction that is not finite throws
  /// NonFiniteError and leaves prediction() as it was.
  const Vector<Scalar>& predict(const VectorView<Scalar>& output) {
    this->checkInput("output", output);
    this->linear(output, m_work);
    detail::requireFinite("prediction", m_work);
    m_prediction = m_work;
    return m_prediction;
  }

  /// The loss ½ ‖W y + b − target‖² of the output's first H entries. Writes δ = ∂L/∂output into
  /// `outputGradient` (zero beyond H), adds the readout's own gradient and sets prediction().
  /// All or nothing: a loss or δ that is not finite throws NonFiniteError and changes neither
  /// the readout nor `outputGradient`.
  Scalar loss(const VectorView<Scalar>& output, const VectorView<Scalar>& target, VectorSpan<Scalar> outputGradient) {
    const Scalar value = evaluateLoss(output, target, outputGradient);
    commitLoss();
    return value;
  }

  /// The first half of loss(): the loss and δ, with the same checks, but the readout's gradient
  /// and prediction() are left as they are until commitLoss(). The losses of B streams wait in
  /// B slots (`slot` = the stream) and commitLoss() adds them all; a slot evaluated twice keeps
  /// the last evaluation. The first use of a slot beyond those used so far sizes its storage
  /// once.
  /// @throws ShapeError for an output of fewer than H entries, a target of other than
  ///         outputs() values, an `outputGradient` of another length than `output`, a slot < 0
  /// @throws NonFiniteError for a NaN or infinity in the output's first H entries or the
  ///         target, or a loss or δ that is not finite
  Scalar evaluateLoss(const VectorView<Scalar>& output, const VectorView<Scalar>& target,
                      VectorSpan<Scalar> outputGradient, Index slot = 0) {
    this->checkInput("output", output);
    Base::checkSlot(slot);
    detail::requireLength("target", target.size(), this->outputs());
    detail::requireFinite("target", target);
    detail::requireLength("output gradient", outputGradient.size(), output.size());
    this->linear(output, m_work);
    m_error = m_work - target;
    const Scalar loss = m_error.squaredNorm() / Scalar(2);
    if (!std::isfinite(loss) || !detail::allFinite(m_work)) detail::fail<NonFiniteError>("loss", "a finite loss", loss);
    this->feedBack(m_error);
    if (this->reserveSlot(slot, this->outputs())) m_predictions.conservativeResize(Eigen::NoChange, slot + 1);
    m_predictions.col(slot) = m_work;
    this->storeSlot(slot, m_error, output, outputGradient);
    return loss;
  }

  /// The second half of loss(): adds the gradients of the waiting evaluateLoss() calls, in slot
  /// order, and makes the prediction of the last slot current.
  /// @throws UsageError when no evaluateLoss() is waiting
  void commitLoss() { m_prediction = m_predictions.col(this->commitSlots()); }

  /// Writes `<prefix>loss` (the text "squared_error", which tells this readout's state from a
  /// Readout's), `<prefix>weight` (outputs × H), `<prefix>bias`, `<prefix>gradient` (the
  /// gradient accumulated since the last update, in the order of parameters()) and, with
  /// Feedback::Random, `<prefix>feedback` (B, H × outputs).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    putText(archive, prefix + "loss", lossName());
    this->saveLinear(archive, prefix);
  }
  /// Restores what saveState wrote, checked against this readout's loss, sizes and feedback and
  /// finite (FormatError naming the array otherwise); on any error the readout is left as it
  /// was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    detail::requireText(archive, prefix + "loss", lossName(), "the state of a readout of loss");
    this->loadLinear(archive, prefix);
  }

private:
  static constexpr const char* lossName() { return "squared_error"; }

  Vector<Scalar> m_prediction;
  Vector<Scalar> m_work;          ///< ŷ of the step being evaluated
  Vector<Scalar> m_error;         ///< its error ŷ − target
  Matrix<Scalar> m_predictions;   ///< ŷ of each slot's evaluateLoss() (outputs × slots)
};

}  // namespace snap
