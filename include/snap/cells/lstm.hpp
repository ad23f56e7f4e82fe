#pragma once
/// @file
/// The LSTM cell (docs/math.md §1), PyTorch's torch.nn.LSTMCell, gate order [i, f, g, o].

#include "snap/cells/cell_base.hpp"

namespace snap {

/// i, f, o = σ(·), g = tanh(·) of a + c (a = W_ih x + b_ih, c = W_hh h + b_hh),
/// c' = f ⊙ c + i ⊙ g, h' = o ⊙ tanh(c'); state s = [h; c], k = 2H.
template <class Scalar_>
class LSTM : public CellBase<Scalar_> {
  using Base = CellBase<Scalar_>;

public:
  using Scalar = Scalar_;  ///< float or double

  /// Four gates, two state blocks [h; c]. The output gate reaches h only (c' does not depend
  /// on o); c feeds h' and c' directly (docs/math.md §2).
  static CellStructure cellStructure() {
    return {.gates = 4, .unitStates = 2, .reach = {1, 1, 1, 1, 1, 1, 1, 0}, .direct = {0, 1, 0, 1}};
  }

  /// A cell for inputs of size m and H hidden units, masks and weights drawn as `options` say
  /// (PyTorch's initialisation: uniform in ±1/√H).
  LSTM(Index inputSize, Index hiddenSize, const CellOptions& options = {})
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
  void activate(const VectorView<Scalar>& state, VectorSpan<Scalar> next, StepCache<Scalar>& cache) const {
    const Index hidden = this->hiddenSize(), rows = this->gateRows();
    const Scalar* a = cache.preactivations.data();
    const Scalar* c = a + rows;
    for (Index u = 0; u < hidden; ++u) {
      const Index ui = u, uf = hidden + u, ug = 2 * hidden + u, uo = 3 * hidden + u;
      const Scalar i = Base::sigmoid(a[ui] + c[ui]);
      const Scalar f = Base::sigmoid(a[uf] + c[uf]);
      const Scalar g = std::tanh(a[ug] + c[ug]);
      const Scalar o = Base::sigmoid(a[uo] + c[uo]);
      const Scalar cell = state[hidden + u];
      const Scalar cellNext = f * cell + i * g;
      const Scalar squashed = std::tanh(cellNext);
      next[u] = o * squashed;
      next[hidden + u] = cellNext;
      const Scalar throughCell = o * (Scalar(1) - squashed * squashed);  // ∂h'/∂c'
      const Scalar cellI = g * i * (Scalar(1) - i), cellF = cell * f * (Scalar(1) - f);
      const Scalar cellG = i * (Scalar(1) - g * g);
      const Scalar hiddenO = squashed * o * (Scalar(1) - o);
      for (auto* factors : {&cache.immediateIh, &cache.immediateHh}) {
        (*factors)(0, ui) = throughCell * cellI;
        (*factors)(1, ui) = cellI;
        (*factors)(0, uf) = throughCell * cellF;
        (*factors)(1, uf) = cellF;
        (*factors)(0, ug) = throughCell * cellG;
        (*factors)(1, ug) = cellG;
        (*factors)(0, uo) = hiddenO;
        (*factors)(1, uo) = Scalar(0);
      }
      cache.direct(0 * 2 + 1, u) = throughCell * f;  // ∂h'/∂c
      cache.direct(1 * 2 + 1, u) = f;                 // ∂c'/∂c
    }
  }
};

/// torch.nn.LSTMCell.
template <class Scalar>
struct CellTypeName<LSTM<Scalar>> {
  static constexpr std::string_view value = "lstm";  ///< the stored name
};

}  // namespace snap
