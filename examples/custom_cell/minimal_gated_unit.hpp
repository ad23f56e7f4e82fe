#pragma once
// A user-defined cell: the minimal gated unit of docs/custom-cell.md, written as a user would
// write it, against snap's public cell API only. Shared by examples/custom_cell.cpp and by
// tests/cells/test_custom_cell.cpp, which runs it through the built-in cells' exactness checks.
//
//   f  = σ(W_if x + b_if + W_hf h + b_hf)
//   n  = tanh(W_in x + b_in + f ⊙ (W_hn h + b_hn))
//   h' = (1 − f) ⊙ h + f ⊙ n
//
// PyTorch-style tensors with gate order [f, n]: weight_ih (2H × m), weight_hh (2H × H),
// bias_ih (2H), bias_hh (2H). State s = h, k = H.

#include <snap/cells/cell_base.hpp>

#include <cmath>

namespace custom {

// snippet-begin: cell
template <class Scalar_>
class MinimalGatedUnit : public snap::CellBase<Scalar_> {
  using Base = snap::CellBase<Scalar_>;

public:
  using Scalar = Scalar_;

  /// Two gates [f, n], one state block (h), and a direct coupling h → h' through (1 − f) ⊙ h.
  static snap::CellStructure cellStructure() {
    return {.gates = 2, .unitStates = 1, .reach = {1, 1}, .direct = {1}};
  }

  MinimalGatedUnit(snap::Index inputSize, snap::Index hiddenSize, const snap::CellOptions& options = {})
      : Base(inputSize, hiddenSize, cellStructure(), options) {}

  /// next = f(input, state); leaves the step's Jacobian factors in `cache`.
  void forward(const snap::VectorView<Scalar>& input, const snap::VectorView<Scalar>& state,
               snap::VectorSpan<Scalar> next, snap::StepCache<Scalar>& cache) const {
    this->checkStep(input, state, next, cache);
    this->computePreactivations(input, state, cache);  // a = W_ih x + b_ih, c = W_hh h + b_hh
    const snap::Index hidden = this->hiddenSize(), rows = this->gateRows();
    const Scalar* a = cache.preactivations.data();
    const Scalar* c = a + rows;
    for (snap::Index u = 0; u < hidden; ++u) {
      const snap::Index uf = u, un = hidden + u;  // rows of unit u in the f and n gate blocks
      const Scalar h = state[u];
      const Scalar f = Base::sigmoid(a[uf] + c[uf]);
      const Scalar n = std::tanh(a[un] + f * c[un]);
      next[u] = (Scalar(1) - f) * h + f * n;
      const Scalar slopeN = f * (Scalar(1) - n * n);                            // ∂h'/∂a_n
      const Scalar slopeF = f * (Scalar(1) - f) * (n - h + slopeN * c[un]);      // ∂h'/∂a_f = ∂h'/∂c_f
      cache.immediateIh(0, uf) = slopeF;
      cache.immediateHh(0, uf) = slopeF;
      cache.immediateIh(0, un) = slopeN;
      cache.immediateHh(0, un) = slopeN * f;  // c_n enters through f ⊙ c_n
      cache.direct(0, u) = Scalar(1) - f;     // ∂h'/∂h through (1 − f) ⊙ h
    }
  }
};
// snippet-end: cell

}  // namespace custom
