#pragma once
/// @file
/// The cell contract as C++20 concepts (docs/design.md, docs/custom-cell.md). The engines
/// check it with one static_assert per requirement, so a type that lacks a member fails to
/// compile with a sentence that names it.

#include <concepts>
#include <cstdint>
#include <span>
#include <string_view>
#include <type_traits>

#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/snap_pattern.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {
/// The name a cell type is stored under in weights files and checkpoints (the `cell` array).
/// Each built-in cell specialises it next to its class; specialise it, with a
/// `static constexpr std::string_view value`, to save and load a cell of your own.
template <class CellType>
struct CellTypeName;

namespace requirement {

/// A cell type with a CellTypeName.
template <class C>
concept HasTypeName = requires { CellTypeName<C>::value; };

template <class C>
concept HasScalar = requires { typename C::Scalar; } &&
                    (std::is_same_v<typename C::Scalar, float> || std::is_same_v<typename C::Scalar, double>);

template <class C>
concept HasSizes = requires(const C& cell) {
  { cell.inputSize() } -> std::convertible_to<Index>;
  { cell.stateSize() } -> std::convertible_to<Index>;
  { cell.outputSize() } -> std::convertible_to<Index>;
  { cell.parameterCount() } -> std::convertible_to<Index>;
};

template <class C>
concept HasParameters = HasScalar<C> && requires(C& cell, const C& constCell, const Vector<typename C::Scalar>& theta,
                                                 Vector<typename C::Scalar>& out) {
  { constCell.parameters() } -> std::convertible_to<Vector<typename C::Scalar>>;
  constCell.parametersInto(out);
  cell.setParameters(theta);
};

template <class C>
concept HasLayout = requires(const C& cell) {
  { cell.layout() } -> std::convertible_to<const ParameterLayout&>;
  { cell.dynamicsGraph() } -> std::convertible_to<const SparsityPattern&>;
  { cell.factorPattern() } -> std::convertible_to<const SparsityPattern&>;
  { cell.maskVersion() } -> std::convertible_to<std::uint64_t>;
};

template <class C>
concept HasMakeCache = HasScalar<C> && requires(const C& cell) {
  { cell.makeCache() } -> std::convertible_to<StepCache<typename C::Scalar>>;
};

template <class C>
concept HasForward = HasScalar<C> && requires(const C& cell, const Vector<typename C::Scalar>& v,
                                              Vector<typename C::Scalar>& next, StepCache<typename C::Scalar>& cache) {
  cell.forward(v, v, next, cache);
};

template <class C>
concept HasSourcesAndOutput =
    HasScalar<C> && requires(const C& cell, const StepCache<typename C::Scalar>& cache, const Vector<typename C::Scalar>& v,
                             Vector<typename C::Scalar>& out) {
      cell.sources(cache, v, v, out);
      cell.output(cache, v, out);
      cell.outputBackward(cache, v, out, out);
    };

template <class C>
concept HasJacobianProducts =
    HasScalar<C> && requires(const C& cell, const StepCache<typename C::Scalar>& cache,
                             const Vector<typename C::Scalar>& v, Vector<typename C::Scalar>& out,
                             std::span<const StorageIndex> entries, std::span<typename C::Scalar> values) {
      cell.dynamicsJacobian(cache, entries, values);
      cell.dynamicsJacobian(cache, values);
      cell.immediateFactors(cache, values);
      cell.dynamicsProduct(cache, v, out);
      cell.factorGradient(cache, v, out);
      cell.vectorJacobianProduct(cache, v, out, out);
    };

/// Optional: the factors' values at a subset of the factor pattern's entries (a stack computes
/// its own layers' without composing the rest), like the subset of dynamicsJacobian.
template <class C>
concept HasFactorSubset =
    HasScalar<C> && requires(const C& cell, const StepCache<typename C::Scalar>& cache,
                             std::span<const StorageIndex> entries, std::span<typename C::Scalar> values) {
      cell.immediateFactors(cache, entries, values);
    };

/// Optional: the couplings inside a unit that bypass the recurrent weights (e-prop, RFLO).
template <class C>
concept HasInternalCouplings =
    HasScalar<C> && requires(const C& cell, const StepCache<typename C::Scalar>& cache, std::span<typename C::Scalar> values) {
      { cell.internalGraph() } -> std::convertible_to<const SparsityPattern&>;
      cell.internalJacobian(cache, values);
    };

/// Optional: y_t is the head of s_t with no parameter of its own (every gated cell), so that
/// a state gradient may stand for an output gradient.
template <class C>
concept OutputIsStateHead = requires {
  { C::outputIsStateHead() } -> std::convertible_to<bool>;
} && C::outputIsStateHead();

/// What a cell must offer to be a layer of a snap::Stack: the same-step Jacobians with respect
/// to its input (∂s'/∂x) and of its output (∂y/∂s', ∂y/∂x and the factors on y), as fixed
/// patterns with values per step, and the reverse product through its input.
template <class C>
concept Stackable =
    HasScalar<C> && requires(const C& cell, const StepCache<typename C::Scalar>& cache, const Vector<typename C::Scalar>& v,
                             Vector<typename C::Scalar>& out, std::span<typename C::Scalar> values) {
      { cell.inputGraph() } -> std::convertible_to<const SparsityPattern&>;
      { cell.outputStateGraph() } -> std::convertible_to<const SparsityPattern&>;
      { cell.outputInputGraph() } -> std::convertible_to<const SparsityPattern&>;
      { cell.outputFactorPattern() } -> std::convertible_to<const SparsityPattern&>;
      cell.inputJacobian(cache, values);
      cell.outputJacobian(cache, values, values, values);
      cell.inputBackward(cache, v, out);
    };

/// Optional: a cell of several layers (snap::Stack): its layers as blocks of state rows and of
/// factors, and the same-step reverse pass of a state gradient down through the layers
/// (docs/math.md §9), which the per-layer mode of the SnAp family uses.
template <class C>
concept HasSpatialBackward =
    HasScalar<C> && requires(const C& cell, const StepCache<typename C::Scalar>& cache, const Vector<typename C::Scalar>& v,
                             Vector<typename C::Scalar>& out) {
      { cell.layerCount() } -> std::convertible_to<Index>;
      { cell.layerBlocks() } -> std::convertible_to<PatternBlocks>;
      cell.spatialBackward(cache, v, out, out);
    };

}  // namespace requirement

/// What a cell must provide for every engine (docs/design.md, docs/custom-cell.md). Deriving
/// from CellBase (a PyTorch-style gated cell) and writing forward() satisfies all but forward().
template <class C>
concept Cell = requirement::HasScalar<C> && requirement::HasSizes<C> && requirement::HasParameters<C> &&
               requirement::HasLayout<C> && requirement::HasMakeCache<C> && requirement::HasForward<C> &&
               requirement::HasSourcesAndOutput<C> && requirement::HasJacobianProducts<C>;

namespace detail {

/// One static_assert per requirement of Cell, each naming what is missing.
template <class C>
constexpr bool checkCell() {
  static_assert(requirement::HasScalar<C>,
                "snap: a cell needs `using Scalar = float;` or `double` (see docs/custom-cell.md)");
  static_assert(requirement::HasSizes<C>,
                "snap: a cell needs inputSize(), stateSize(), outputSize() and parameterCount() "
                "(derive from snap::CellBase; see docs/custom-cell.md)");
  static_assert(requirement::HasParameters<C>,
                "snap: a cell needs parameters(), parametersInto(theta) and setParameters(theta) (see docs/custom-cell.md)");
  static_assert(requirement::HasLayout<C>,
                "snap: a cell needs layout(), dynamicsGraph(), factorPattern() and maskVersion() "
                "(see docs/custom-cell.md)");
  static_assert(requirement::HasMakeCache<C>,
                "snap: a cell needs makeCache() returning a snap::StepCache<Scalar> (see docs/custom-cell.md)");
  static_assert(requirement::HasForward<C>,
                "snap: a cell needs forward(input, state, next, cache) that fills the StepCache "
                "(see docs/custom-cell.md)");
  static_assert(requirement::HasSourcesAndOutput<C>,
                "snap: a cell needs sources(cache, input, state, z), output(cache, next, y) and "
                "outputBackward(cache, outputGradient, stateGradient, factorGradient) (see docs/custom-cell.md)");
  static_assert(requirement::HasJacobianProducts<C>,
                "snap: a cell needs dynamicsJacobian, immediateFactors, dynamicsProduct, factorGradient and "
                "vectorJacobianProduct (derive from snap::CellBase; see docs/custom-cell.md)");
  return true;
}

}  // namespace detail
}  // namespace snap
