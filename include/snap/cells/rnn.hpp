#pragma once
/// @file
/// The Elman tanh RNN cell (docs/math.md §1), PyTorch's torch.nn.RNNCell, optionally leaky.

#include "snap/cells/cell_base.hpp"

namespace snap {

/// Options of the RNN cell beyond the masks.
struct RNNOptions {
  /// α in h' = (1 − α) h + α tanh(W_ih x + b_ih + W_hh h + b_hh), in (0, 1]: the leak of the
  /// RNN that RFLO (Murray 2019) trains (α = dt/τ); 1, the default, is PyTorch's RNNCell.
  double leak = 1.0;
};

/// h' = (1 − α) h + α tanh(W_ih x + b_ih + W_hh h + b_hh); state s = h, k = H; one gate block.
/// With α = 1 (the default) it is torch.nn.RNNCell.
template <class Scalar_>
class RNN : public CellBase<Scalar_> {
  using Base = CellBase<Scalar_>;

public:
  using Scalar = Scalar_;  ///< float or double

  /// The shape of an RNN: one gate, one state block, and the direct coupling (1 − α) h of a
  /// leaky one (none when α = 1).
  static CellStructure cellStructure(double leak = 1.0) {
    return {.gates = 1, .unitStates = 1, .reach = {1}, .direct = {static_cast<std::uint8_t>(leak < 1.0 ? 1 : 0)}};
  }

  /// A cell for inputs of size m and H hidden units, masks and weights drawn as `options` say
  /// (PyTorch's initialisation: uniform in ±1/√H), with the leak α of `rnn`.
  /// @throws ValueError unless 0 < α ≤ 1
  RNN(Index inputSize, Index hiddenSize, const CellOptions& options = {}, const RNNOptions& rnn = {})
      : Base(inputSize, hiddenSize, cellStructure(checkedLeak(rnn.leak)), options), m_leak(static_cast<Scalar>(rnn.leak)) {}

  /// α, the leak (1 for torch.nn.RNNCell).
  Scalar leak() const { return m_leak; }

  /// Writes the gated cells' configuration and `<prefix>leak`.
  void saveConfiguration(NpzArchive& archive, const std::string& prefix) const {
    Base::saveConfiguration(archive, prefix);
    putScalar<double>(archive, prefix + "leak", static_cast<double>(m_leak));
  }
  /// Throws FormatError naming the array unless what saveConfiguration() wrote is this cell's.
  void checkConfiguration(const NpzArchive& archive, const std::string& prefix) const {
    Base::checkConfiguration(archive, prefix);
    readScalar<double>(archive, prefix + "leak", static_cast<double>(m_leak), static_cast<double>(m_leak));
  }

  /// next = f(input, state); fills `cache` with the step's Jacobian factors (docs/math.md §2).
  void forward(const VectorView<Scalar>& input, const VectorView<Scalar>& state, VectorSpan<Scalar> next,
               StepCache<Scalar>& cache) const {
    this->checkStep(input, state, next, cache);
    this->computePreactivations(input, state, cache);
    activate(state, next, cache);
  }

  /// The elementwise rest of forward(), from the preactivations [a; c] already in `cache`
  /// (what the engines call after computing a batch's preactivations as matrix products).
  void activate(const VectorView<Scalar>& state, VectorSpan<Scalar> next, StepCache<Scalar>& cache) const {
    const Index hidden = this->hiddenSize();
    const Scalar alpha = m_leak, keep = Scalar(1) - m_leak;
    for (Index u = 0; u < hidden; ++u) {
      const Scalar h = std::tanh(cache.preactivations[u] + cache.preactivations[hidden + u]);
      const Scalar slope = alpha * (Scalar(1) - h * h);  // ∂h'/∂a
      if (m_leak == Scalar(1)) {
        next[u] = h;
      } else {
        next[u] = keep * state[u] + alpha * h;
        cache.direct(0, u) = keep;  // ∂h'/∂h through (1 − α) h
      }
      cache.immediateIh(0, u) = slope;
      cache.immediateHh(0, u) = slope;
    }
  }

private:
  static double checkedLeak(double leak) {
    if (!(leak > 0.0 && leak <= 1.0)) detail::fail<ValueError>("RNNOptions::leak", "a leak α in (0, 1]", leak);
    return leak;
  }

  Scalar m_leak;
};

/// torch.nn.RNNCell(nonlinearity='tanh') (with a leak, an RNN of Murray 2019).
template <class Scalar>
struct CellTypeName<RNN<Scalar>> {
  static constexpr std::string_view value = "rnn";  ///< the stored name
};

}  // namespace snap
