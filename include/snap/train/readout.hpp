#pragma once
/// @file
/// Linear readouts of the cell's output y (docs/math.md §3, §7): LinearReadout, the map
/// W y + b they share with its parameters, gradient and feedback, and Readout, softmax
/// cross-entropy over classes (RegressionReadout, squared error over real targets, is in
/// regression_readout.hpp). Each gives the loss of a step and its gradient δ_t over y; its own
/// parameters get the ordinary direct gradient and are not part of θ.

#include <cmath>
#include <algorithm>
#include <cstdint>
#include <limits>
#include <numbers>
#include <string>
#include <string_view>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/arrays.hpp"

namespace snap {

/// What a readout sends back to the cell's output as δ = ∂L/∂y, for an error e at its
/// outputs (p − onehot for softmax cross-entropy, W y + b − target for squared error).
enum class Feedback {
  /// δ = Wᵀ e: the gradient of the loss over y.
  Symmetric,
  /// δ = B e with B (H × outputs) fixed and random: RFLO's random feedback (Murray 2019, eq. 10),
  /// which needs no transport of W back to the cell. The readout's own gradient is unchanged.
  Random,
};

/// Options of a readout.
struct ReadoutOptions {
  /// Symmetric (Wᵀ) or random (B) feedback; with Feedback::Random, B is drawn from the
  /// readout's seed once and never trained (LinearReadout::feedback()).
  Feedback feedback = Feedback::Symmetric;
};

/// The linear map W y + b of a readout over `outputs` values, W (outputs × H) and b stored
/// together in one parameter vector [W row-major; b], initialised as torch.nn.Linear (uniform
/// in ±1/√H); its gradient, its feedback, and the losses of B streams that wait in slots until
/// they are committed. Readout and RegressionReadout add their loss.
template <class Scalar_>
class LinearReadout {
public:
  using Scalar = Scalar_;  ///< float or double

  /// H, the output values of the cell it reads.
  Index hiddenSize() const { return m_hidden; }
  /// The number of classes (Readout) or of real outputs (RegressionReadout).
  Index outputs() const { return m_outputs; }
  /// The options the readout was built with.
  const ReadoutOptions& options() const { return m_options; }

  /// W (outputs × H), a view of the parameter vector.
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

  /// B (H × outputs), the fixed random feedback of Feedback::Random: drawn once from the seed,
  /// after [W; b] and from the same generator, column by column, uniform in ±1/√H (W's
  /// range); saved and loaded with the readout's state, never changed by training. Empty
  /// (0 × 0) with Feedback::Symmetric.
  const Matrix<Scalar>& feedback() const { return m_feedback; }
  /// Replaces B (H × outputs, finite once converted to Scalar): another scale or distribution
  /// than the one drawn. On any error nothing changes.
  /// @throws UsageError with Feedback::Symmetric, which has no B
  template <class Derived>
  void setFeedback(const Eigen::MatrixBase<Derived>& feedback) {
    if (m_options.feedback != Feedback::Random)
      detail::fail<UsageError>("feedback", "a readout built with ReadoutOptions{.feedback = Feedback::Random}",
                               "a readout with symmetric feedback");
    detail::requireShape("feedback", feedback.rows(), feedback.cols(), m_hidden, m_outputs);
    const Matrix<Scalar> values = feedback.template cast<Scalar>();
    if (!values.allFinite())
      detail::fail<ValueError>("feedback", std::string("finite values in ") + detail::scalarName<Scalar>(),
                               "a NaN or infinity");
    m_feedback = values;
  }

  /// Forgets the waiting evaluateLoss() calls (a batch step refused before it was taken).
  void discardLosses() { std::fill(m_scored.begin(), m_scored.end(), false); }

protected:
  /// A map from H = `hiddenSize` values to `outputs`, its weights (then B) drawn from `seed`;
  /// `outputs` must be at least `leastOutputs` (`outputsExpected` says so in the message).
  LinearReadout(Index hiddenSize, Index outputs, std::uint64_t seed, const ReadoutOptions& options, Index leastOutputs,
                std::string_view outputsExpected)
      : m_hidden(hiddenSize), m_outputs(outputs), m_options(options) {
    if (hiddenSize < 1) detail::fail<ShapeError>("hiddenSize", "at least 1", hiddenSize);
    if (outputs < leastOutputs) detail::fail<ShapeError>("outputs", outputsExpected, outputs);
    if (options.feedback != Feedback::Symmetric && options.feedback != Feedback::Random)
      detail::fail<ValueError>("ReadoutOptions::feedback", "Feedback::Symmetric or Feedback::Random",
                               static_cast<int>(options.feedback));
    detail::requireArray<Scalar>("hiddenSize", hiddenSize, "state gradient (H)");
    const Index count = detail::checkedProduct("outputs", outputs, detail::checkedSum("hiddenSize", hiddenSize, 1));
    detail::requireArray<Scalar>("outputs", count, "parameters [W; b] (outputs x (H + 1))");
    Random random(seed);
    const double bound = 1.0 / std::sqrt(static_cast<double>(hiddenSize));
    m_parameters.resize(outputs * hiddenSize + outputs);
    for (Index i = 0; i < m_parameters.size(); ++i) m_parameters[i] = static_cast<Scalar>(random.uniform(-bound, bound));
    if (options.feedback == Feedback::Random) {
      m_feedback.resize(hiddenSize, outputs);
      for (Index i = 0; i < m_feedback.size(); ++i) m_feedback(i) = static_cast<Scalar>(random.uniform(-bound, bound));
    }
    m_gradient = Vector<Scalar>::Zero(m_parameters.size());
    m_errors = Matrix<Scalar>::Zero(outputs, 1);
    m_scoredInputs = Matrix<Scalar>::Zero(hiddenSize, 1);
    m_scored.assign(1, false);
    m_delta = Vector<Scalar>::Zero(hiddenSize);
  }

  /// Throws unless `input` (named `argument`) has at least H entries, the first H finite.
  void checkInput(std::string_view argument, const VectorView<Scalar>& input) const {
    if (input.size() < m_hidden)
      detail::fail<ShapeError>(argument, "a " + std::string(argument) + " of at least H = " +
                                             detail::describe(m_hidden) + " entries",
                               input.size());
    detail::requireFinite(argument, input.head(m_hidden));
  }
  /// Throws ShapeError unless `slot` ≥ 0.
  static void checkSlot(Index slot) {
    if (slot < 0) detail::fail<ShapeError>("slot", "an index >= 0", slot);
  }

  /// W y + b for the first H entries of `input`, into `out`.
  template <class Input>
  void linear(const Input& input, Vector<Scalar>& out) const {
    out.noalias() = weight() * input.head(m_hidden);
    out += bias();
  }

  /// δ = Wᵀ e or B e (Feedback), kept for storeSlot(): the gradient sent back for the error
  /// `error` at the outputs. Throws NonFiniteError ("loss gradient") when δ is not finite.
  void feedBack(const Vector<Scalar>& error) {
    if (m_options.feedback == Feedback::Random)
      m_delta.noalias() = m_feedback * error;
    else
      m_delta.noalias() = weight().transpose() * error;
    detail::requireFinite("loss gradient", m_delta);
  }

  /// Makes room for `slot` (the first use of a slot beyond those used so far sizes its storage
  /// once); `extraRows` values per slot that the loss keeps of its own count towards the check.
  /// Returns true when the storage grew (the loss then grows its own to slot + 1 columns).
  bool reserveSlot(Index slot, Index extraRows) {
    if (slot < static_cast<Index>(m_scored.size())) return false;
    detail::requireArray<Scalar>("slot", slot + 1, m_outputs + m_hidden + extraRows, "pending losses");
    m_errors.conservativeResize(Eigen::NoChange, slot + 1);
    m_scoredInputs.conservativeResize(Eigen::NoChange, slot + 1);
    m_scored.resize(static_cast<std::size_t>(slot + 1), false);
    return true;
  }
  /// Keeps the error e at the outputs and the input's first H entries in `slot` until
  /// commitSlots(), and writes δ into `inputGradient` (zero beyond H).
  template <class Input>
  void storeSlot(Index slot, const Vector<Scalar>& error, const Input& input, VectorSpan<Scalar> inputGradient) {
    m_errors.col(slot) = error;
    m_scoredInputs.col(slot) = input.head(m_hidden);
    m_scored[static_cast<std::size_t>(slot)] = true;
    inputGradient.setZero();
    inputGradient.head(m_hidden) = m_delta;
  }
  /// Adds e yᵀ and e of the waiting slots to the gradient, in slot order, and returns the last
  /// slot. @throws UsageError when no slot waits
  Index commitSlots() {
    Index last = -1;
    for (std::size_t slot = 0; slot < m_scored.size(); ++slot) {
      if (!m_scored[slot]) continue;
      const auto b = static_cast<Index>(slot);
      Eigen::Map<RowMatrix<Scalar>>(m_gradient.data(), m_outputs, m_hidden).noalias() +=
          m_errors.col(b) * m_scoredInputs.col(b).transpose();
      m_gradient.tail(m_outputs) += m_errors.col(b);
      m_scored[slot] = false;
      last = b;
    }
    if (last < 0) detail::fail<UsageError>("commitLoss", "an evaluateLoss() before", "none");
    return last;
  }
  /// The error e waiting in `slot`.
  auto error(Index slot) const { return m_errors.col(slot); }

  /// Writes `<prefix>weight` (outputs × H), `<prefix>bias`, `<prefix>gradient` and, with
  /// Feedback::Random, `<prefix>feedback` (B, H × outputs).
  void saveLinear(NpzArchive& archive, const std::string& prefix) const {
    putArray(archive, prefix + "weight", weight());
    putArray(archive, prefix + "bias", bias());
    putArray(archive, prefix + "gradient", m_gradient);
    if (m_options.feedback == Feedback::Random) putArray(archive, prefix + "feedback", m_feedback);
  }
  /// Restores what saveLinear wrote, checked against the sizes and finite; a `feedback` array
  /// is required with Feedback::Random and refused with Feedback::Symmetric (a run must go on
  /// with the feedback it was trained with). FormatError naming the array otherwise; on any
  /// error nothing changes.
  void loadLinear(const NpzArchive& archive, const std::string& prefix) {
    const auto w = readMatrix<RowMatrix<Scalar>>(archive, prefix + "weight", m_outputs, m_hidden);
    const auto b = readVector<Scalar>(archive, prefix + "bias", m_outputs);
    Vector<Scalar> gradient = readVector<Scalar>(archive, prefix + "gradient", m_gradient.size());
    Matrix<Scalar> feedback;
    if (m_options.feedback == Feedback::Random) {
      feedback = readMatrix<Matrix<Scalar>>(archive, prefix + "feedback", m_hidden, m_outputs);
    } else if (archive.find(prefix + "feedback") != archive.end()) {
      detail::fail<FormatError>(detail::arrayArgument(prefix + "feedback"),
                                "none (the state of a readout with symmetric feedback)",
                                "random feedback (build the readout with ReadoutOptions{.feedback = Feedback::Random})");
    }
    setWeights(w, b);
    m_gradient = std::move(gradient);
    if (m_options.feedback == Feedback::Random) m_feedback = std::move(feedback);
  }

private:
  Index m_hidden, m_outputs;
  ReadoutOptions m_options;
  Vector<Scalar> m_parameters, m_gradient;
  Matrix<Scalar> m_feedback;      ///< B (H × outputs) with Feedback::Random, else empty
  Matrix<Scalar> m_errors;        ///< the error e of each slot's evaluateLoss() (outputs × slots)
  Matrix<Scalar> m_scoredInputs;  ///< its y, first H entries (H × slots)
  Vector<Scalar> m_delta;         ///< the δ of the last feedBack()
  std::vector<bool> m_scored;     ///< slot b's evaluateLoss() waits for commitLoss()
};

/// Softmax cross-entropy over `outputs` classes of the linear map W y + b (LinearReadout).
template <class Scalar_>
class Readout : public LinearReadout<Scalar_> {
  using Base = LinearReadout<Scalar_>;

public:
  using Scalar = Scalar_;  ///< float or double

  /// A readout of H = `hiddenSize` units over `outputs` classes, its weights drawn from `seed`
  /// (then, with Feedback::Random, its feedback B).
  /// @throws ShapeError if hiddenSize < 1 or outputs < 2
  /// @throws ValueError for an unknown ReadoutOptions::feedback
  Readout(Index hiddenSize, Index outputs, std::uint64_t seed = 0, const ReadoutOptions& options = {})
      : Base(hiddenSize, outputs, seed, options, 2, "at least 2 classes") {
    m_logits = Vector<Scalar>::Zero(outputs);
    m_probabilities = Vector<Scalar>::Zero(outputs);
    m_scoredTargets.assign(1, 0);
  }

  /// Softmax probabilities of the last loss() or predict() call.
  const Vector<Scalar>& probabilities() const { return m_probabilities; }

  /// Softmax probabilities for the state's h (its first H entries). Probabilities that are not
  /// finite (logits that overflowed) throw NonFiniteError and leave probabilities() as it was.
  const Vector<Scalar>& predict(const VectorView<Scalar>& state) {
    this->checkInput("state", state);
    softmax(state, m_logits);
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
  /// sizes its storage once. δ = Wᵀ(p − onehot), or B (p − onehot) with Feedback::Random.
  Scalar evaluateLoss(const VectorView<Scalar>& state, Index target, VectorSpan<Scalar> stateGradient, Index slot = 0) {
    this->checkInput("state", state);
    Base::checkSlot(slot);
    if (target < 0 || target >= this->outputs())
      detail::fail<ValueError>("target", "a class in [0, " + detail::describe(this->outputs()) + ")", target);
    detail::requireLength("state gradient", stateGradient.size(), state.size());
    softmax(state, m_logits);
    const Scalar loss = -std::log(std::max(m_logits[target], std::numeric_limits<Scalar>::min()));
    if (!std::isfinite(loss) || !detail::allFinite(m_logits)) detail::fail<NonFiniteError>("loss", "a finite loss", loss);
    m_logits[target] -= Scalar(1);  // ∂loss/∂logits = p − onehot
    this->feedBack(m_logits);
    if (this->reserveSlot(slot, 0)) m_scoredTargets.resize(static_cast<std::size_t>(slot + 1), 0);
    m_scoredTargets[static_cast<std::size_t>(slot)] = target;
    this->storeSlot(slot, m_logits, state, stateGradient);
    return loss;
  }

  /// The second half of loss(): adds the gradients of the waiting evaluateLoss() calls, in slot
  /// order, and makes the probabilities of the last slot current.
  /// @throws UsageError when no evaluateLoss() is waiting
  void commitLoss() {
    const Index last = this->commitSlots();
    m_probabilities = this->error(last);
    m_probabilities[m_scoredTargets[static_cast<std::size_t>(last)]] += Scalar(1);
  }

  /// Nats to bits.
  static double bits(double nats) { return nats / std::numbers::ln2; }

  /// Writes `<prefix>weight` (outputs × H), `<prefix>bias`, `<prefix>gradient` (the
  /// gradient accumulated since the last update, in the order of parameters()) and, with
  /// Feedback::Random, `<prefix>feedback` (B, H × outputs).
  void saveState(NpzArchive& archive, const std::string& prefix) const { this->saveLinear(archive, prefix); }
  /// Restores what saveState wrote, checked against this readout's sizes and feedback and
  /// finite; the state of a readout of another loss (one with a `<prefix>loss` array, as
  /// RegressionReadout writes) is refused. FormatError naming the array otherwise; on any error
  /// the readout is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    if (archive.find(prefix + "loss") != archive.end())
      detail::fail<FormatError>(detail::arrayArgument(prefix + "loss"),
                                "none (the state of a softmax cross-entropy readout)",
                                "the state of a readout of another loss, " + readText(archive, prefix + "loss", 256));
    this->loadLinear(archive, prefix);
  }

private:
  /// out = softmax(W h + b), computed in place in `out`.
  template <class Input>
  void softmax(const Input& input, Vector<Scalar>& out) const {
    this->linear(input, out);
    const Scalar largest = out.maxCoeff();
    out = (out.array() - largest).exp();
    out /= out.sum();
  }

  Vector<Scalar> m_probabilities;
  Vector<Scalar> m_logits;             ///< workspace of the softmax, then p − onehot
  std::vector<Index> m_scoredTargets;  ///< each slot's target class
};

}  // namespace snap
