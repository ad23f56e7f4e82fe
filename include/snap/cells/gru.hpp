#pragma once
/// @file
/// The GRU cell (docs/math.md §1), PyTorch's torch.nn.GRUCell, gate order [r, z, n].

#include "snap/cells/cell_base.hpp"

namespace snap {

/// r = σ(a_r + c_r), z = σ(a_z + c_z), n = tanh(a_n + r ⊙ c_n), h' = (1 − z) ⊙ n + z ⊙ h,
/// with a = W_ih x + b_ih and c = W_hh h + b_hh; state s = h, k = H.
template <class Scalar_>
class GRU : public CellBase<Scalar_> {
  using Base = CellBase<Scalar_>;

public:
  using Scalar = Scalar_;  ///< float or double

  /// Three gates, one state block, and the direct coupling z ⊙ h on the diagonal.
  static CellStructure cellStructure() { return {.gates = 3, .unitStates = 1, .reach = {1, 1, 1}, .direct = {1}}; }

  /// A cell for inputs of size m and H hidden units, masks and weights drawn as `options` say
  /// (PyTorch's initialisation: uniform in ±1/√H).
  GRU(Index inputSize, Index hiddenSize, const CellOptions& options = {})
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
      const Index ur = u, uz = hidden + u, un = 2 * hidden + u;
      const Scalar h = state[u];
      const Scalar r = Base::sigmoid(a[ur] + c[ur]);
      const Scalar z = Base::sigmoid(a[uz] + c[uz]);
      const Scalar n = std::tanh(a[un] + r * c[un]);
      next[u] = (Scalar(1) - z) * n + z * h;
      const Scalar slopeN = (Scalar(1) - z) * (Scalar(1) - n * n);  // ∂h'/∂a_n
      const Scalar slopeZ = (h - n) * z * (Scalar(1) - z);          // ∂h'/∂a_z
      const Scalar slopeR = slopeN * c[un] * r * (Scalar(1) - r);   // ∂h'/∂a_r
      cache.immediateIh(0, ur) = slopeR;
      cache.immediateIh(0, uz) = slopeZ;
      cache.immediateIh(0, un) = slopeN;
      cache.immediateHh(0, ur) = slopeR;
      cache.immediateHh(0, uz) = slopeZ;
      cache.immediateHh(0, un) = slopeN * r;  // c_n enters through r ⊙ c_n
      cache.direct(0, u) = z;                 // ∂h'/∂h through z ⊙ h
    }
  }
};

/// torch.nn.GRUCell.
template <class Scalar>
struct CellTypeName<GRU<Scalar>> {
  static constexpr std::string_view value = "gru";  ///< the stored name
};

}  // namespace snap
