#pragma once
/// @file
/// The engine contract (docs/design.md): a gradient algorithm bound to one cell, consuming its
/// steps and yielding the gradient of Σ_t L_t with respect to θ (docs/math.md §3–§5).

#include <concepts>
#include <cstddef>

#include "snap/core/types.hpp"

namespace snap {

/// What every engine offers, so that code written against one works with any other:
///
///     Engine engine(cell, options);
///     for each step t:  s = engine.step(x_t);  engine.accumulate(δ_t = ∂L_t/∂s_t);
///     optimizer.update(θ, engine.gradient());  engine.resetGradient();
///     at a sequence boundary: engine.resetState();
template <class E>
concept Engine = requires(E& engine, const E& constEngine, const Vector<typename E::Scalar>& vector) {
  typename E::Scalar;
  typename E::CellType;
  typename E::Options;
  { engine.step(vector) } -> std::convertible_to<const Vector<typename E::Scalar>&>;
  engine.accumulate(vector);
  { engine.gradient() } -> std::convertible_to<const Vector<typename E::Scalar>&>;
  engine.resetGradient();
  engine.resetState();
  { constEngine.state() } -> std::convertible_to<const Vector<typename E::Scalar>&>;
  { constEngine.cell() } -> std::convertible_to<const typename E::CellType&>;
  { constEngine.steps() } -> std::convertible_to<Index>;
  { constEngine.bytes() } -> std::convertible_to<std::size_t>;
};

}  // namespace snap
