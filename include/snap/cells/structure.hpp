#pragma once
/// @file
/// What the engines need to know of a gated cell besides its weights: the per-unit structure
/// (docs/math.md §2), the per-step cache of Jacobian factors, and the PyTorch tensors.

#include <cstdint>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// The shape of a PyTorch-style gated cell, shared by all cells of a type.
///
/// The state is `unitStates` blocks of H rows, s = [s⁽⁰⁾; s⁽¹⁾; …], and block 0 is h: the
/// vector the recurrent weights multiply and the readout reads. Unit u owns rows u + q·H.
/// Preactivation row r = g·H + u of gate g moves only unit u's blocks q with reaches(g, q)
/// (docs/math.md §2, "home unit"). Besides the preactivations, block q of unit b may depend directly on
/// block q' of the same unit (GRU: z ⊙ h; LSTM: f ⊙ c): couples(q, q').
struct CellStructure {
  int gates = 1;       ///< G: gate blocks of H rows in weight_ih and weight_hh
  int unitStates = 1;  ///< U: state blocks; the state size is k = U·H
  std::vector<std::uint8_t> reach;   ///< G × U, row-major: gate g's preactivation moves block q
  std::vector<std::uint8_t> direct;  ///< U × U, row-major: block q depends on block q' directly

  /// Whether gate `gate`'s preactivation moves state block `block` of its unit.
  bool reaches(Index gate, Index block) const {
    return reach[static_cast<std::size_t>(gate * unitStates + block)] != 0;
  }
  /// Whether block `block` of a unit depends directly on block `fromBlock` of the same unit.
  bool couples(Index block, Index fromBlock) const {
    return direct[static_cast<std::size_t>(block * unitStates + fromBlock)] != 0;
  }
  /// Throws unless the tables have the sizes their gate and block counts give.
  void validate() const {
    if (gates < 1) detail::fail<ValueError>("CellStructure::gates", "at least 1", gates);
    if (unitStates < 1) detail::fail<ValueError>("CellStructure::unitStates", "at least 1", unitStates);
    detail::requireLength("CellStructure::reach", static_cast<Index>(reach.size()), gates * unitStates);
    detail::requireLength("CellStructure::direct", static_cast<Index>(direct.size()),
                          unitStates * unitStates);
  }
};

/// What one forward step leaves for the engines (docs/math.md §2), in factored form.
///
/// With a = W_ih x + b_ih (the input preactivation) and c = W_hh h + b_hh (the recurrent
/// preactivation), column r of `immediateIh` holds ∂s'_{q·H+u}/∂a_r for the U blocks q of
/// r's home unit u = r mod H, and `immediateHh` the same for c_r. Column j of the immediate
/// Jacobian I_t is then (that factor) × (x_c, h_c or 1). `direct(q·U + q', b)` is
/// ∂s'_{q·H+b}/∂s_{q'·H+b} through paths that do not pass through the preactivations.
template <class Scalar>
struct StepCache {
  Matrix<Scalar> immediateIh;    ///< U × G·H
  Matrix<Scalar> immediateHh;    ///< U × G·H
  Matrix<Scalar> direct;         ///< U·U × H
  Vector<Scalar> preactivations; ///< 2·G·H: [a; c], left by the forward step

  StepCache() = default;
  /// A zeroed cache for a cell of this structure and H hidden units.
  StepCache(const CellStructure& structure, Index hiddenSize)
      : immediateIh(Matrix<Scalar>::Zero(structure.unitStates, structure.gates * hiddenSize)),
        immediateHh(Matrix<Scalar>::Zero(structure.unitStates, structure.gates * hiddenSize)),
        direct(Matrix<Scalar>::Zero(structure.unitStates * structure.unitStates, hiddenSize)),
        preactivations(Vector<Scalar>::Zero(2 * structure.gates * hiddenSize)) {}

  /// The factor of preactivation column f of the parameter layout: f < G·H is a_f, else c_{f−G·H}.
  Scalar factor(Index block, Index f) const {
    const Index rows = immediateIh.cols();
    return f < rows ? immediateIh(block, f) : immediateHh(block, f - rows);
  }
};

/// The four tensors of a cell in PyTorch's layout (gate blocks of H rows stacked).
template <class Scalar>
struct CellTensors {
  RowMatrix<Scalar> weight_ih;  ///< G·H × m
  RowMatrix<Scalar> weight_hh;  ///< G·H × H
  Vector<Scalar> bias_ih;       ///< G·H
  Vector<Scalar> bias_hh;       ///< G·H
};

}  // namespace snap
