#pragma once
/// @file
/// The engine contract (docs/design.md): a gradient algorithm bound to one cell, advancing B
/// streams together and yielding the gradient of Σ_b Σ_t L_t^b with respect to θ (docs/math.md
/// §3–§5).

#include <concepts>
#include <cstddef>

#include "snap/core/threads.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// What every engine offers, so that code written against one works with any other. Stream b
/// is column b: inputs are m × B, states and state gradients k × B (a Vector is one column, so
/// single-stream code passes vectors):
///
///     Engine engine(cell, options, snap::Batch{.streams = B, .threads = T});
///     for each step t:  S = engine.step(X_t);  engine.accumulate(Δ_t = ∂L_t/∂S_t);
///     optimizer.update(θ, engine.gradient());  engine.resetGradient();
///     at a sequence boundary: engine.resetState(), or engine.resetStream(b) for one stream.
template <class E>
concept Engine = requires(E& engine, const E& constEngine, const Matrix<typename E::Scalar>& values, Index stream) {
  typename E::Scalar;
  typename E::CellType;
  typename E::Options;
  requires std::constructible_from<E, const typename E::CellType&, const typename E::Options&, const Batch&>;
  { engine.step(values) } -> std::convertible_to<const Matrix<typename E::Scalar>&>;
  engine.accumulate(values);
  { engine.gradient() } -> std::convertible_to<const Vector<typename E::Scalar>&>;
  engine.resetGradient();
  engine.resetState();
  engine.resetStream(stream);
  { constEngine.state() } -> std::convertible_to<const Matrix<typename E::Scalar>&>;
  { constEngine.cell() } -> std::convertible_to<const typename E::CellType&>;
  { constEngine.streams() } -> std::convertible_to<Index>;
  { constEngine.steps() } -> std::convertible_to<Index>;
  { constEngine.bytes() } -> std::convertible_to<std::size_t>;
};

}  // namespace snap
