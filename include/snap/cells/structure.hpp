#pragma once
/// @file
/// What the engines need to know of a gated cell besides its weights: the per-unit structure
/// (docs/math.md §2), the per-step cache of Jacobian factors, and the PyTorch tensors.

#include <cstdint>
#include <string>
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

/// What one forward step leaves for the engines (docs/math.md §2): opaque to them, read only by
/// the cell that wrote it, and saved and restored as named arrays (docs/reliability.md).
///
/// The gated cells (CellBase) use the first four members. With a = W_ih x + b_ih (the input
/// preactivation) and c = W_hh h + b_hh (the recurrent preactivation), column r of
/// `immediateIh` holds ∂s'_{q·H+u}/∂a_r for the U blocks q of r's home unit u = r mod H, and
/// `immediateHh` the same for c_r. Column j of the immediate Jacobian I_t is then (that factor)
/// × (x_c, h_c or 1). `direct(q·U + q', b)` is ∂s'_{q·H+b}/∂s_{q'·H+b} through paths that do not
/// pass through the preactivations. Other cells keep what they need in `values` (the LRU) and
/// in `layers`, one cache per layer (a Stack).
template <class Scalar>
struct StepCache {
  Matrix<Scalar> immediateIh;     ///< U × G·H
  Matrix<Scalar> immediateHh;     ///< U × G·H
  Matrix<Scalar> direct;          ///< U·U × H
  Vector<Scalar> preactivations;  ///< 2·G·H: [a; c], left by the forward step
  Vector<Scalar> values;          ///< a cell's other per-step values
  std::vector<StepCache> layers;  ///< the caches of a stack's layers
  /// Scratch a cell may use inside its const products on this cache (a stack composes its
  /// layers' Jacobians there). Never saved; each stream's cache is used by one thread at a time.
  mutable Vector<Scalar> workspace;

  StepCache() = default;
  /// A zeroed cache for a gated cell of this structure and H hidden units.
  StepCache(const CellStructure& structure, Index hiddenSize)
      : immediateIh(Matrix<Scalar>::Zero(structure.unitStates, structure.gates * hiddenSize)),
        immediateHh(Matrix<Scalar>::Zero(structure.unitStates, structure.gates * hiddenSize)),
        direct(Matrix<Scalar>::Zero(structure.unitStates * structure.unitStates, hiddenSize)),
        preactivations(Vector<Scalar>::Zero(2 * structure.gates * hiddenSize)) {}
  /// A zeroed cache of `values` values only.
  explicit StepCache(Index values) : values(Vector<Scalar>::Zero(values)) {}

  /// The factor of preactivation column f of the parameter layout: f < G·H is a_f, else c_{f−G·H}.
  Scalar factor(Index block, Index f) const {
    const Index rows = immediateIh.cols();
    return f < rows ? immediateIh(block, f) : immediateHh(block, f - rows);
  }
  /// Values held, all layers included.
  Index size() const {
    Index total = immediateIh.size() + immediateHh.size() + direct.size() + preactivations.size() + values.size();
    for (const StepCache& layer : layers) total += layer.size();
    return total;
  }
};

/// One array of a StepCache, as checkpoints store it: a matrix (rows × cols, saved row by row)
/// or a vector (rows values, cols = 1).
template <class Pointer>
struct CacheArray {
  std::string name;      ///< its name in a checkpoint, under the caller's prefix
  Pointer data;          ///< its values, column-major for a matrix
  Index rows = 0;        ///< its rows (a vector's length)
  Index cols = 1;        ///< its columns (1 for a vector)
  bool isVector = false; ///< saved as a vector (one dimension per stream) rather than a matrix
};

/// The arrays of `cache` in a fixed order, named under `prefix`: immediate_ih, immediate_hh,
/// direct, preactivations, then values (when the cache uses it) and each layer's arrays under
/// `layer<l>/` (docs/reliability.md).
template <class Cache>
auto cacheArrays(Cache& cache, const std::string& prefix = {}) {
  using Pointer = decltype(cache.values.data());
  std::vector<CacheArray<Pointer>> arrays;
  auto collect = [&](auto& self, Cache& from, const std::string& name) -> void {
    arrays.push_back({name + "immediate_ih", from.immediateIh.data(), from.immediateIh.rows(), from.immediateIh.cols(), false});
    arrays.push_back({name + "immediate_hh", from.immediateHh.data(), from.immediateHh.rows(), from.immediateHh.cols(), false});
    arrays.push_back({name + "direct", from.direct.data(), from.direct.rows(), from.direct.cols(), false});
    arrays.push_back({name + "preactivations", from.preactivations.data(), from.preactivations.size(), 1, true});
    if (from.values.size() > 0) arrays.push_back({name + "values", from.values.data(), from.values.size(), 1, true});
    for (std::size_t l = 0; l < from.layers.size(); ++l) self(self, from.layers[l], name + "layer" + std::to_string(l) + "/");
  };
  collect(collect, cache, prefix);
  return arrays;
}

/// The four tensors of a cell in PyTorch's layout (gate blocks of H rows stacked).
template <class Scalar>
struct CellTensors {
  RowMatrix<Scalar> weight_ih;  ///< G·H × m
  RowMatrix<Scalar> weight_hh;  ///< G·H × H
  Vector<Scalar> bias_ih;       ///< G·H
  Vector<Scalar> bias_hh;       ///< G·H
};

}  // namespace snap
