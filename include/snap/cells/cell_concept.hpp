#pragma once
/// @file
/// The cell contract as C++20 concepts (docs/design.md, docs/custom-cell.md). The engines
/// check it with one static_assert per requirement, so a type that lacks a member fails to
/// compile with a sentence that names it.

#include <concepts>
#include <cstdint>
#include <span>
#include <type_traits>

#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {
namespace requirement {

template <class C>
concept HasScalar = requires { typename C::Scalar; } &&
                    (std::is_same_v<typename C::Scalar, float> || std::is_same_v<typename C::Scalar, double>);

template <class C>
concept HasSizes = requires(const C& cell) {
  { cell.inputSize() } -> std::convertible_to<Index>;
  { cell.hiddenSize() } -> std::convertible_to<Index>;
  { cell.stateSize() } -> std::convertible_to<Index>;
  { cell.parameterCount() } -> std::convertible_to<Index>;
};

template <class C>
concept HasStructure = requires(const C& cell) {
  { cell.structure() } -> std::convertible_to<const CellStructure&>;
};

template <class C>
concept HasTensors = requires(const C& cell) {
  cell.weight_ih();
  cell.weight_hh();
  cell.bias_ih();
  cell.bias_hh();
  cell.mask_ih();
  cell.mask_hh();
};

template <class C>
concept HasLayout = requires(const C& cell) {
  { cell.layout() } -> std::convertible_to<const ParameterLayout&>;
  { cell.dynamicsGraph() } -> std::convertible_to<const SparsityPattern&>;
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
concept HasJacobianProducts =
    HasScalar<C> && requires(const C& cell, const StepCache<typename C::Scalar>& cache,
                             const Vector<typename C::Scalar>& v, Vector<typename C::Scalar>& out,
                             std::span<const StorageIndex> entries, std::span<typename C::Scalar> values) {
      cell.dynamicsJacobian(cache, entries, values);
      cell.dynamicsProduct(cache, v, out);
      cell.preactivationGradient(cache, v, out);
      cell.vectorJacobianProduct(cache, v, out, out);
      cell.sources(v, v, out);
    };

}  // namespace requirement

/// What a cell must provide for every engine (docs/math.md §1–§2; docs/custom-cell.md). Deriving
/// from CellBase and writing forward() satisfies all but forward().
template <class C>
concept Cell = requirement::HasScalar<C> && requirement::HasSizes<C> && requirement::HasStructure<C> &&
               requirement::HasTensors<C> && requirement::HasLayout<C> && requirement::HasMakeCache<C> &&
               requirement::HasForward<C> && requirement::HasJacobianProducts<C>;

namespace detail {

/// One static_assert per requirement of Cell, each naming what is missing.
template <class C>
constexpr bool checkCell() {
  static_assert(requirement::HasScalar<C>,
                "snap: a cell needs `using Scalar = float;` or `double` (see docs/custom-cell.md)");
  static_assert(requirement::HasSizes<C>,
                "snap: a cell needs inputSize(), hiddenSize(), stateSize() and parameterCount() "
                "(derive from snap::CellBase; see docs/custom-cell.md)");
  static_assert(requirement::HasStructure<C>,
                "snap: a cell needs structure() returning its snap::CellStructure (see docs/custom-cell.md)");
  static_assert(requirement::HasTensors<C>,
                "snap: a cell needs weight_ih(), weight_hh(), bias_ih(), bias_hh(), mask_ih() and mask_hh() "
                "(see docs/custom-cell.md)");
  static_assert(requirement::HasLayout<C>,
                "snap: a cell needs layout(), dynamicsGraph() and maskVersion() (see docs/custom-cell.md)");
  static_assert(requirement::HasMakeCache<C>,
                "snap: a cell needs makeCache() returning a snap::StepCache<Scalar> (see docs/custom-cell.md)");
  static_assert(requirement::HasForward<C>,
                "snap: a cell needs forward(input, state, next, cache) that fills the StepCache "
                "(see docs/custom-cell.md)");
  static_assert(requirement::HasJacobianProducts<C>,
                "snap: a cell needs dynamicsJacobian, dynamicsProduct, preactivationGradient, "
                "vectorJacobianProduct and sources (derive from snap::CellBase; see docs/custom-cell.md)");
  return true;
}

}  // namespace detail
}  // namespace snap
