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
#include "snap/core/limits.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/arrays.hpp"

namespace snap {

namespace detail {
/// The learning rate as a Scalar: finite, > 0 and a normal number there (1e-50 is 0 in float).
template <class Scalar>
Scalar validateLearningRate(double learningRate) {
  return positiveOptionIn<Scalar>("learningRate", learningRate, "a finite learning rate > 0");
}

}  // namespace detail

/// Plain stochastic gradient descent: θ ← θ − η g.
struct SGD {
  double learningRate = 0.1;  ///< η, finite and > 0

  /// Validates the configuration for parameters of type Scalar.
  /// @throws ValueError unless the learning rate is finite, > 0 and a normal Scalar
  template <class Scalar = double>
  void validate() const { detail::validateLearningRate<Scalar>(learningRate); }

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

  /// θ ← θ − η g, in place on `parameters`; checks the configuration and the lengths first.
  template <class Scalar>
  void update(State<Scalar>& state, VectorSpan<Scalar> parameters, const VectorView<Scalar>& gradient) const {
    update<Scalar>(state, state, parameters, gradient);
  }
  /// The same, the state read from `from` and written to `to` (the same object, or another).
  template <class Scalar>
  void update(const State<Scalar>&, State<Scalar>&, VectorSpan<Scalar> parameters,
              const VectorView<Scalar>& gradient) const {
    const Scalar eta = detail::validateLearningRate<Scalar>(learningRate);
    detail::requireLength("gradient", gradient.size(), parameters.size());
    parameters -= eta * gradient;
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

  /// Validates the configuration for parameters of type Scalar, each field checked as the
  /// Scalar it is used as (ε = 1e-50 is 0 in float, β2 = 1 − 1e-10 is 1).
  /// @throws ValueError naming the first field out of the ranges above
  template <class Scalar = double>
  void validate() const {
    using detail::Bound;
    detail::validateLearningRate<Scalar>(learningRate);
    detail::optionIn<Scalar>("beta1", beta1, "a value in [0, 1)", 0.0, Bound::Closed, 1.0, Bound::Open);
    detail::optionIn<Scalar>("beta2", beta2, "a value in [0, 1)", 0.0, Bound::Closed, 1.0, Bound::Open);
    detail::positiveOptionIn<Scalar>("epsilon", epsilon, "a finite value > 0");
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
    /// Throws UsageError unless t can advance (before anything else in the update changes).
    void requireRoom() const { detail::requireCounterRoom("Adam steps", steps); }
  };

  /// One Adam step: advances `state` (t, m, v) with `gradient` and updates `parameters` in
  /// place; checks the configuration, the lengths and the step count first.
  template <class Scalar>
  void update(State<Scalar>& state, VectorSpan<Scalar> parameters, const VectorView<Scalar>& gradient) const {
    update<Scalar>(state, state, parameters, gradient);
  }
  /// The same, the state read from `from` and written to `to` (the same object, or another:
  /// a trainer keeps `from` when the new parameters are refused).
  template <class Scalar>
  void update(const State<Scalar>& from, State<Scalar>& to, VectorSpan<Scalar> parameters,
              const VectorView<Scalar>& gradient) const {
    validate<Scalar>();
    detail::requireLength("gradient", gradient.size(), parameters.size());
    detail::requireLength("optimizer state", from.first.size(), parameters.size());
    detail::requireLength("optimizer state", from.second.size(), parameters.size());
    from.requireRoom();
    State<Scalar>& state = to;
    state.steps = from.steps + 1;
    const auto b1 = static_cast<Scalar>(beta1), b2 = static_cast<Scalar>(beta2);
    state.first = b1 * from.first + (Scalar(1) - b1) * gradient;
    state.second = b2 * from.second + (Scalar(1) - b2) * gradient.cwiseAbs2();
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
  if (maxNorm > 0 && std::isfinite(maxNorm))
    detail::positiveOptionIn<Scalar>("maxNorm", maxNorm, "a norm (<= 0 or infinite: no clipping)");
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
