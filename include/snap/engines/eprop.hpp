#pragma once
/// @file
/// e-prop (Bellec et al. 2020) and RFLO (Murray 2019): eligibility traces that follow each unit's
/// own state only (docs/math.md §8), as engines of the SnAp family.

#include <type_traits>

#include "snap/cells/rnn.hpp"
#include "snap/engines/snap.hpp"

namespace snap {

/// Options of the e-prop engine.
struct EPropOptions {
  /// As SnApOptions::denseBlockAbove: a kernel choice only (traces of more than two rows, an
  /// LRU pair or an LSTM's, are blocks).
  double denseBlockAbove = 0.5;
};

/// e-prop's eligibility traces: Ĵ_t = M ⊙ (I_t + E_t Ĵ_{t−1}), g = Σ_t Ĵ_tᵀ δ_t, where E_t is
/// D_t restricted to the couplings inside each unit that bypass the recurrent weights
/// (internalGraph(): GRU z ⊙ h, LSTM f ⊙ c, a leaky RNN's (1 − α) h, the LRU's whole rotation)
/// and M keeps, for each parameter, its home rows and every row they reach through E_t: the
/// parameter's unit's own state. Every path through W_hh is dropped, in the trace and in time;
/// the loss gradient of a stack reaches the lower layers through the upper layers' same-step
/// Jacobians only (per layer). Memory and time O(p) for the gated cells (p to 2p values).
template <class CellType_>
class EProp : public SnAp<CellType_> {
  using Base = SnAp<CellType_>;

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = EPropOptions;              ///< the engine's options

  static_assert(requirement::HasInternalCouplings<CellType>,
                "snap: EProp needs a cell with internalGraph() and internalJacobian() (CellBase provides them; "
                "see docs/custom-cell.md)");

  /// Binds to `cell` (which must outlive the engine and stay at the same address) and builds
  /// the traces' pattern.
  explicit EProp(const CellType& cell, const Options& options = {}, const Batch& batch = {})
      : Base(detail::TraceTag{}, cell, config(cell, options, "EProp"), batch), m_options(options) {}

  /// The options the engine was built with.
  const Options& options() const { return m_options; }

protected:
  /// The SnAp family's configuration of e-prop's traces, named `name` in checkpoints.
  static detail::TraceConfig config(const CellType& cell, const Options& options, const char* name) {
    // n = k + 1 follows any chain of internal couplings to its end: the closure of the home rows.
    return {{.n = static_cast<int>(std::min<Index>(cell.stateSize() + 1, 1 << 30)),
             .denseBlockAbove = options.denseBlockAbove,
             .perLayer = true},
            true,
            name};
  }
  /// An e-prop engine named `name` in checkpoints (RFLO's).
  EProp(const CellType& cell, const Options& options, const Batch& batch, const char* name)
      : Base(detail::TraceTag{}, cell, config(cell, options, name), batch), m_options(options) {}

private:
  Options m_options;
};

/// Options of the RFLO engine.
struct RFLOOptions {};

/// RFLO, random-feedback local online learning (Murray 2019), for the leaky RNN
/// h' = (1 − α) h + α tanh(W_ih x + b_ih + W_hh h + b_hh) (RNNOptions::leak = α): the trace of
/// parameter j of unit u is p_t = (1 − α) p_{t−1} + α (1 − h'_u²) z_j, the e-prop trace of this
/// cell, and g = Σ_t p_tᵀ δ_t. Murray's random feedback, δ_t = B (P − onehot) with a fixed random
/// B in place of W_outᵀ, is the readout's (ReadoutOptions::feedback = Feedback::Random), so
/// that symmetric and random feedback can be compared on the same traces. Memory p, time O(p).
template <class CellType_>
class RFLO : public EProp<CellType_> {
  using Base = EProp<CellType_>;

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = RFLOOptions;               ///< the engine's options

  static_assert(std::is_same_v<CellType, RNN<Scalar>>,
                "snap: RFLO is defined for the (leaky) vanilla RNN, snap::RNN; EProp is the same trace for any cell");

  /// Binds to `cell` (a leaky RNN, which must outlive the engine and stay at the same address).
  explicit RFLO(const CellType& cell, const Options& options = {}, const Batch& batch = {})
      : Base(cell, EPropOptions{}, batch, "RFLO"), m_options(options) {}

  /// The options the engine was built with.
  const Options& options() const { return m_options; }

private:
  Options m_options;
};

}  // namespace snap
