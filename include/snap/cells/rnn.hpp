#pragma once
/// @file
/// The Elman tanh RNN cell (docs/math.md §1), PyTorch's torch.nn.RNNCell.

#include "snap/cells/cell_base.hpp"

namespace snap {

/// h' = tanh(W_ih x + b_ih + W_hh h + b_hh); state s = h, k = H; one gate block.
template <class Scalar_>
class RNN : public CellBase<Scalar_> {
  using Base = CellBase<Scalar_>;

public:
  using Scalar = Scalar_;  ///< float or double

  /// The shape shared by every RNN: one gate, one state block, no direct coupling.
  static CellStructure cellStructure() { return {.gates = 1, .unitStates = 1, .reach = {1}, .direct = {0}}; }

  /// A cell for inputs of size m and H hidden units, masks and weights drawn as `options` say
  /// (PyTorch's initialisation: uniform in ±1/√H).
  RNN(Index inputSize, Index hiddenSize, const CellOptions& options = {})
      : Base(inputSize, hiddenSize, cellStructure(), options) {}

  /// next = f(input, state); fills `cache` with the step's Jacobian factors (docs/math.md §2).
  void forward(const VectorView<Scalar>& input, const VectorView<Scalar>& state, VectorSpan<Scalar> next,
               StepCache<Scalar>& cache) const {
    this->checkStep(input, state, next, cache);
    this->computePreactivations(input, state, cache);
    activate(state, next, cache);
  }

  /// The elementwise rest of forward(), from the preactivations [a; c] already in `cache`
  /// (what the engines call after computing a batch's preactivations as matrix products).
  void activate(const VectorView<Scalar>& /*state*/, VectorSpan<Scalar> next, StepCache<Scalar>& cache) const {
    const Index hidden = this->hiddenSize();
    for (Index u = 0; u < hidden; ++u) {
      const Scalar h = std::tanh(cache.preactivations[u] + cache.preactivations[hidden + u]);
      next[u] = h;
      const Scalar slope = Scalar(1) - h * h;  // ∂h'/∂a
      cache.immediateIh(0, u) = slope;
      cache.immediateHh(0, u) = slope;
    }
  }
};

}  // namespace snap
