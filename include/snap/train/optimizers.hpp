#pragma once
/// @file
/// Optimizers (SGD, Adam with bias correction) and clipping by global gradient norm (docs/math.md §6).
/// Each optimizer is a small configuration plus a state sized on its first update.

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <variant>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/io/state.hpp"

namespace snap {

namespace detail {
inline void validateLearningRate(double learningRate) {
  if (!(learningRate > 0.0 && std::isfinite(learningRate)))
    fail<ValueError>("learningRate", "a finite learning rate > 0", learningRate);
}
}  // namespace detail

/// Plain stochastic gradient descent: θ ← θ − η g.
struct SGD {
  double learningRate = 0.1;  ///< η, finite and > 0

  /// Validates the configuration.
  /// @throws ValueError unless the learning rate is finite and > 0
  void validate() const { detail::validateLearningRate(learningRate); }

  /// The per-parameter-vector state (none).
  template <class Scalar>
  struct State {
    /// Nothing to size.
    explicit State(Index) {}
    /// Writes nothing: SGD has no state.
    void saveState(NpzArchive&, const std::string&) const {}
    /// Reads nothing.
    void loadState(const NpzArchive&, const std::string&) {}
    /// Nothing to check: SGD counts nothing.
    void requireRoom() const {}
  };

  /// θ ← θ − η g, in place on `parameters`.
  template <class Scalar>
  void update(State<Scalar>&, VectorSpan<Scalar> parameters, const VectorView<Scalar>& gradient) const {
    parameters -= static_cast<Scalar>(learningRate) * gradient;
  }
};

/// Adam (Kingma & Ba) with bias correction:
/// m ← β1 m + (1 − β1) g, v ← β2 v + (1 − β2) g², θ ← θ − η m̂ / (√v̂ + ε),
/// m̂ = m / (1 − β1^t), v̂ = v / (1 − β2^t).
struct Adam {
  double learningRate = 1e-3;  ///< η, finite and > 0
  double beta1 = 0.9;          ///< β1, the decay of m, in [0, 1)
  double beta2 = 0.999;        ///< β2, the decay of v, in [0, 1)
  double epsilon = 1e-8;       ///< ε, added to √v̂; finite and > 0

  /// Validates the configuration.
  /// @throws ValueError naming the first field out of the ranges above
  void validate() const {
    detail::validateLearningRate(learningRate);
    if (!(beta1 >= 0.0 && beta1 < 1.0)) detail::fail<ValueError>("beta1", "a value in [0, 1)", beta1);
    if (!(beta2 >= 0.0 && beta2 < 1.0)) detail::fail<ValueError>("beta2", "a value in [0, 1)", beta2);
    if (!(epsilon > 0.0 && std::isfinite(epsilon))) detail::fail<ValueError>("epsilon", "a finite value > 0", epsilon);
  }

  /// First and second moments and the step count of one parameter vector.
  template <class Scalar>
  struct State {
    /// first: m, the moving average of g.
    Vector<Scalar> first, second;  ///< second: v, the moving average of g².
    long long steps = 0;           ///< t, the updates taken (for the bias correction)
    /// Zero moments for `size` parameters, t = 0.
    explicit State(Index size) : first(Vector<Scalar>::Zero(size)), second(Vector<Scalar>::Zero(size)) {}

    /// `<prefix>first` (m), `<prefix>second` (v) and `<prefix>steps` (t).
    void saveState(NpzArchive& archive, const std::string& prefix) const {
      putArray(archive, prefix + "first", first);
      putArray(archive, prefix + "second", second);
      putScalar<std::int64_t>(archive, prefix + "steps", steps);
    }
    /// Restores what saveState wrote, checked against this state's size (m finite, v finite
    /// and ≥ 0, t a counter); unchanged on error.
    void loadState(const NpzArchive& archive, const std::string& prefix) {
      Vector<Scalar> m = readVector<Scalar>(archive, prefix + "first", first.size());
      Vector<Scalar> v = readVector<Scalar>(archive, prefix + "second", second.size(), {.low = Scalar(0)});
      const std::int64_t t = readCounter(archive, prefix + "steps");
      first = std::move(m);
      second = std::move(v);
      steps = t;
    }
    /// Throws ValueError unless t can advance (before anything else in the update changes).
    void requireRoom() const { detail::requireCounterRoom("Adam steps", steps); }
  };

  /// One Adam step: advances `state` (t, m, v) with `gradient` and updates `parameters` in place.
  template <class Scalar>
  void update(State<Scalar>& state, VectorSpan<Scalar> parameters, const VectorView<Scalar>& gradient) const {
    state.requireRoom();
    ++state.steps;
    const auto b1 = static_cast<Scalar>(beta1), b2 = static_cast<Scalar>(beta2);
    state.first = b1 * state.first + (Scalar(1) - b1) * gradient;
    state.second = b2 * state.second + (Scalar(1) - b2) * gradient.cwiseAbs2();
    const double t = static_cast<double>(state.steps);
    const auto correction1 = static_cast<Scalar>(1.0 - std::pow(beta1, t));
    const auto correction2 = static_cast<Scalar>(1.0 - std::pow(beta2, t));
    const auto eta = static_cast<Scalar>(learningRate), eps = static_cast<Scalar>(epsilon);
    parameters.array() -=
        eta * (state.first.array() / correction1) / ((state.second.array() / correction2).sqrt() + eps);
  }
};

/// Either optimizer, chosen at run time (the copy-task example's --optimizer).
using AnyOptimizer = std::variant<SGD, Adam>;

/// Scales the gradients together so that their joint Euclidean norm is at most `maxNorm`;
/// returns the norm before clipping. maxNorm ≤ 0 or infinite disables clipping.
template <class Scalar>
double clipGlobalNorm(double maxNorm, std::initializer_list<Vector<Scalar>*> gradients) {
  if (std::isnan(maxNorm)) detail::fail<ValueError>("maxNorm", "a norm (<= 0 or infinite: no clipping)", maxNorm);
  double squared = 0;
  for (const Vector<Scalar>* g : gradients) squared += static_cast<double>(g->squaredNorm());
  const double norm = std::sqrt(squared);
  if (maxNorm > 0 && std::isfinite(maxNorm) && norm > maxNorm) {
    const auto scale = static_cast<Scalar>(maxNorm / norm);
    for (Vector<Scalar>* g : gradients) *g *= scale;
  }
  return norm;
}

}  // namespace snap
