#pragma once
// Independent references for the tests: the cell equations of docs/math.md §1 written out plainly with
// loops (no code shared with the library's forward step), central finite differences of them,
// and dense Jacobians assembled from a cell's products.

#include <snap/snap.hpp>

#include <cmath>
#include <functional>
#include <vector>

namespace snap::test {

template <class S>
S sigmoid(S a) {
  return S(1) / (S(1) + std::exp(-a));
}

/// Preactivation row r: W_ih[r]·x + b_ih[r] (input) and W_hh[r]·h + b_hh[r] (recurrent).
template <class S>
S inputPre(const CellTensors<S>& w, const Vector<S>& x, Index r) {
  S sum = w.bias_ih[r];
  for (Index c = 0; c < x.size(); ++c) sum += w.weight_ih(r, c) * x[c];
  return sum;
}
template <class S>
S recurrentPre(const CellTensors<S>& w, const Vector<S>& s, Index r) {
  S sum = w.bias_hh[r];
  for (Index c = 0; c < w.weight_hh.cols(); ++c) sum += w.weight_hh(r, c) * s[c];
  return sum;
}

/// docs/math.md §1, Elman RNN.
template <class S>
Vector<S> referenceStep(const RNN<S>&, const CellTensors<S>& w, const Vector<S>& x, const Vector<S>& s) {
  const Index H = w.weight_hh.cols();
  Vector<S> next(H);
  for (Index u = 0; u < H; ++u) next[u] = std::tanh(inputPre(w, x, u) + recurrentPre(w, s, u));
  return next;
}

/// docs/math.md §1, GRU, gates [r, z, n].
template <class S>
Vector<S> referenceStep(const GRU<S>&, const CellTensors<S>& w, const Vector<S>& x, const Vector<S>& s) {
  const Index H = w.weight_hh.cols();
  Vector<S> next(H);
  for (Index u = 0; u < H; ++u) {
    const S r = sigmoid(inputPre(w, x, u) + recurrentPre(w, s, u));
    const S z = sigmoid(inputPre(w, x, H + u) + recurrentPre(w, s, H + u));
    const S n = std::tanh(inputPre(w, x, 2 * H + u) + r * recurrentPre(w, s, 2 * H + u));
    next[u] = (S(1) - z) * n + z * s[u];
  }
  return next;
}

/// docs/math.md §1, LSTM, gates [i, f, g, o], state [h; c].
template <class S>
Vector<S> referenceStep(const LSTM<S>&, const CellTensors<S>& w, const Vector<S>& x, const Vector<S>& s) {
  const Index H = w.weight_hh.cols();
  Vector<S> next(2 * H);
  for (Index u = 0; u < H; ++u) {
    auto pre = [&](Index gate) { return inputPre(w, x, gate * H + u) + recurrentPre(w, s, gate * H + u); };
    const S i = sigmoid(pre(0)), f = sigmoid(pre(1)), g = std::tanh(pre(2)), o = sigmoid(pre(3));
    const S c = f * s[H + u] + i * g;
    next[u] = o * std::tanh(c);
    next[H + u] = c;
  }
  return next;
}

/// Relative error ‖a − b‖ / ‖b‖ (Frobenius), with ‖b‖ floored at 1e-300.
template <class A, class B>
double relativeError(const A& a, const B& b) {
  const double denominator = std::max(static_cast<double>(b.norm()), 1e-300);
  return static_cast<double>((a - b).norm()) / denominator;
}

/// Central finite differences of a vector function, column j = ∂f/∂v_j.
inline Matrix<double> finiteDifferences(const std::function<Vector<double>(const Vector<double>&)>& f,
                                        const Vector<double>& at, double step = 1e-6) {
  const Vector<double> f0 = f(at);
  Matrix<double> jacobian(f0.size(), at.size());
  for (Index j = 0; j < at.size(); ++j) {
    Vector<double> plus = at, minus = at;
    plus[j] += step;
    minus[j] -= step;
    jacobian.col(j) = (f(plus) - f(minus)) / (2 * step);
  }
  return jacobian;
}

/// D_t by finite differences of the reference step in s.
template <class C>
Matrix<double> finiteDifferenceDynamics(const C& cell, const Vector<double>& x, const Vector<double>& s) {
  const CellTensors<double> w = cell.tensors();
  return finiteDifferences([&](const Vector<double>& state) { return referenceStep(cell, w, x, state); }, s);
}

/// I_t by finite differences of the reference step in θ.
template <class C>
Matrix<double> finiteDifferenceImmediate(const C& cell, const Vector<double>& x, const Vector<double>& s) {
  return finiteDifferences(
      [&](const Vector<double>& theta) { return referenceStep(cell, cell.unflatten(theta), x, s); },
      cell.parameters());
}

/// D_t as a dense k × k matrix, scattered from the cell's values on its dynamics graph.
template <class C>
Matrix<typename C::Scalar> denseDynamics(const C& cell, const StepCache<typename C::Scalar>& cache) {
  using S = typename C::Scalar;
  const SparsityPattern& graph = cell.dynamicsGraph();
  std::vector<S> values(static_cast<std::size_t>(graph.nonZeros()));
  cell.dynamicsJacobian(cache, std::span<S>(values));
  Matrix<S> dense = Matrix<S>::Zero(cell.stateSize(), cell.stateSize());
  for (Index e = 0; e < graph.nonZeros(); ++e) dense(graph.entryRow(e), graph.column(e)) = values[static_cast<std::size_t>(e)];
  return dense;
}

/// I_t as a dense k × p matrix, column by column from the cell's immediateProduct.
template <class C>
Matrix<typename C::Scalar> denseImmediate(const C& cell, const StepCache<typename C::Scalar>& cache,
                                          const Vector<typename C::Scalar>& z) {
  using S = typename C::Scalar;
  const Index p = cell.parameterCount();
  Matrix<S> dense(cell.stateSize(), p);
  Vector<S> unit = Vector<S>::Zero(p), column(cell.stateSize());
  for (Index j = 0; j < p; ++j) {
    unit[j] = 1;
    cell.immediateProduct(cache, z, unit, column);
    dense.col(j) = column;
    unit[j] = 0;
  }
  return dense;
}

/// A step of the library's cell, returning its cache and sources z = [x; 1; h; 1].
template <class C>
struct LibraryStep {
  Vector<typename C::Scalar> next, z;
  StepCache<typename C::Scalar> cache;
  LibraryStep(const C& cell, const Vector<typename C::Scalar>& x, const Vector<typename C::Scalar>& s)
      : next(cell.stateSize()), z(cell.layout().sourceSize()), cache(cell.makeCache()) {
    cell.sources(x, s, z);
    cell.forward(x, s, next, cache);
  }
};

/// Uniform random vector in [−scale, scale).
inline Vector<double> randomVector(Random& random, Index size, double scale = 1.0) {
  Vector<double> v(size);
  for (Index i = 0; i < size; ++i) v[i] = random.uniform(-scale, scale);
  return v;
}

/// A fixed stream of inputs x_t (uniform in ±inputScale), loss gradients δ_t and an initial
/// state, drawn in that order from one seed. With zeroInputEvery = k > 0, the inputs at
/// t = 0, k, 2k, … are exactly zero (and draw nothing).
struct Stream {
  std::vector<Vector<double>> inputs, deltas;
  Vector<double> initial;
  Stream(Index inputSize, Index stateSize, std::uint64_t seed, Index steps, double inputScale = 1.0,
         Index zeroInputEvery = 0) {
    Random random(seed);
    for (Index t = 0; t < steps; ++t) {
      const bool zero = zeroInputEvery > 0 && t % zeroInputEvery == 0;
      inputs.push_back(zero ? Vector<double>::Zero(inputSize) : randomVector(random, inputSize, inputScale));
      deltas.push_back(randomVector(random, stateSize));
    }
    initial = randomVector(random, stateSize, 0.5);
  }
};

/// Runs an engine over the stream from the stream's initial state and returns its gradient.
template <class Engine>
Vector<double> gradientOver(Engine& engine, const Stream& stream) {
  engine.resetState(stream.initial);
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    engine.step(stream.inputs[t]);
    engine.accumulate(stream.deltas[t]);
  }
  return engine.gradient();
}

/// A cell of type C with its tensors scaled (scale > 1 saturates the gates).
template <class C>
C scaledCell(Index inputs, Index hidden, const CellOptions& options, double scale) {
  C cell(inputs, hidden, options);
  CellTensors<typename C::Scalar> w = cell.tensors();
  w.weight_ih *= scale;
  w.weight_hh *= scale;
  w.bias_ih *= scale;
  w.bias_hh *= scale;
  cell.setTensors(w);
  return cell;
}

}  // namespace snap::test
