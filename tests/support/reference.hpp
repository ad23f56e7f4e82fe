#pragma once
// Independent references for the tests: the cell equations of docs/math.md §1 written out plainly with
// loops (no code shared with the library's forward step), central finite differences of them,
// and dense Jacobians assembled from a cell's products.

#include <snap/snap.hpp>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <utility>
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


// --- The leaky RNN, the LRU and stacks of layers (issue 13) ---
// Written from the equations alone: the cells' own code is used only to read their parameters
// (parameterTensors(), and ParameterLayout::unflatten to turn a θ into tensors).

/// docs/math.md §1, the leaky RNN: h' = (1 − α) h + α tanh(W_ih x + b_ih + W_hh h + b_hh).
template <class S>
Vector<S> referenceLeakyStep(S alpha, const CellTensors<S>& w, const Vector<S>& x, const Vector<S>& s) {
  const Index H = w.weight_hh.cols();
  Vector<S> next(H);
  for (Index u = 0; u < H; ++u)
    next[u] = (S(1) - alpha) * s[u] + alpha * std::tanh(inputPre(w, x, u) + recurrentPre(w, s, u));
  return next;
}

/// The gated tensors [weight_ih, weight_hh, bias_ih, bias_hh] of layout order as CellTensors.
inline CellTensors<double> gatedTensors(const ParameterTensors<double>& t) {
  return {t[0], t[1], Vector<double>(t[2].col(0)), Vector<double>(t[3].col(0))};
}

/// The LRU's parameters, read from its tensors in layout order: B_re, B_im, nu_log, theta_log,
/// C_re, C_im, and D with the skip.
struct LRUWeights {
  RowMatrix<double> bRe, bIm, cRe, cIm;
  Vector<double> nu, theta, d;  ///< d is empty without the skip
};
inline LRUWeights lruWeights(const ParameterTensors<double>& t) {
  return {t[0], t[1], t[4], t[5], Vector<double>(t[2].col(0)), Vector<double>(t[3].col(0)),
          t.size() > 6 ? Vector<double>(t[6].col(0)) : Vector<double>()};
}

/// λ = exp(−exp(ν) + i·exp(θ)) (Orvieto et al. 2023).
inline std::complex<double> lruLambda(double nu, double theta) {
  return std::exp(std::complex<double>(-std::exp(nu), std::exp(theta)));
}

/// The LRU step with complex numbers: h' = λ ⊙ h + γ ⊙ ((B_re + i B_im) x), γ = √(1 − |λ|²); the
/// state is [Re h; Im h].
inline Vector<double> referenceLRUStep(const LRUWeights& w, const Vector<double>& x, const Vector<double>& s) {
  const Index N = w.nu.size();
  Vector<double> next(2 * N);
  for (Index j = 0; j < N; ++j) {
    const std::complex<double> lambda = lruLambda(w.nu[j], w.theta[j]);
    const double gamma = std::sqrt(1.0 - std::norm(lambda));
    std::complex<double> input = 0;
    for (Index c = 0; c < x.size(); ++c) input += std::complex<double>(w.bRe(j, c), w.bIm(j, c)) * x[c];
    const std::complex<double> h = lambda * std::complex<double>(s[j], s[N + j]) + gamma * input;
    next[j] = h.real();
    next[N + j] = h.imag();
  }
  return next;
}

/// φ of the LRU's output: the identity, tanh, or the exact GELU u·Φ(u) with Φ(u) = (1 + erf(u/√2))/2.
inline double lruActivation(LRUActivation activation, double u) {
  switch (activation) {
    case LRUActivation::None: return u;
    case LRUActivation::Tanh: return std::tanh(u);
    case LRUActivation::GELU: return u * 0.5 * (1.0 + std::erf(u / std::sqrt(2.0)));
  }
  return u;
}

/// y = φ(Re((C_re + i C_im) h') + D ⊙ x).
inline Vector<double> referenceLRUOutput(const LRUWeights& w, LRUActivation activation, const Vector<double>& x,
                                         const Vector<double>& next) {
  const Index N = w.nu.size(), o = w.cRe.rows();
  Vector<double> y(o);
  for (Index b = 0; b < o; ++b) {
    std::complex<double> sum = 0;
    for (Index j = 0; j < N; ++j)
      sum += std::complex<double>(w.cRe(b, j), w.cIm(b, j)) * std::complex<double>(next[j], next[N + j]);
    double pre = sum.real();
    if (w.d.size() > 0) pre += w.d[b] * x[b];
    y[b] = lruActivation(activation, pre);
  }
  return y;
}

enum class LayerKind { RNN, GRU, LSTM, LRU };

/// One layer of a reference model: which equations, its sizes, and its layout (only to read θ).
/// unitOf[j] is the unit whose state parameter j moves in one step (−1: none, the LRU's output
/// map), from the masks in the flattening order of docs/math.md §1.
struct ReferenceLayer {
  LayerKind kind = LayerKind::RNN;
  Index inputs = 0, units = 0, states = 0, outputs = 0, parameters = 0;
  double leak = 1.0;
  LRUActivation activation = LRUActivation::None;
  ParameterLayout layout;
  std::vector<Index> unitOf;

  ParameterTensors<double> tensors(const Vector<double>& theta) const { return layout.unflatten(theta); }

  /// s' = f(x, s) by the cell's equations.
  Vector<double> step(const ParameterTensors<double>& w, const Vector<double>& x, const Vector<double>& s) const {
    // The gated references dispatch on a cell type; these cells are tags only.
    static const GRU<double> gruTag(1, 1);
    static const LSTM<double> lstmTag(1, 1);
    switch (kind) {
      case LayerKind::RNN: return referenceLeakyStep(leak, gatedTensors(w), x, s);
      case LayerKind::GRU: return referenceStep(gruTag, gatedTensors(w), x, s);
      case LayerKind::LSTM: return referenceStep(lstmTag, gatedTensors(w), x, s);
      case LayerKind::LRU: return referenceLRUStep(lruWeights(w), x, s);
    }
    return s;
  }
  /// y = out(s', x): h for the gated cells, the LRU's output map.
  Vector<double> output(const ParameterTensors<double>& w, const Vector<double>& x, const Vector<double>& next) const {
    if (kind == LayerKind::LRU) return referenceLRUOutput(lruWeights(w), activation, x, next);
    return next.head(units);
  }
  /// The state rows of unit u: h_u (and c_u for the LSTM); Re h_u and Im h_u for the LRU.
  std::vector<Index> rowsOfUnit(Index u) const {
    if (u < 0) return {};
    if (kind == LayerKind::LSTM || kind == LayerKind::LRU) return {u, units + u};
    return {u};
  }
  /// E_t, the couplings of s' to s inside each unit that bypass the recurrent weights
  /// (e-prop): leaky RNN (1 − α); GRU z; LSTM ∂c'/∂c = f, ∂h'/∂c = o (1 − tanh² c') f; LRU the
  /// 2 × 2 block of λ. Gates recomputed here from the tensors.
  Matrix<double> internalJacobian(const ParameterTensors<double>& w, const Vector<double>& x, const Vector<double>& s) const {
    Matrix<double> e = Matrix<double>::Zero(states, states);
    const Index H = units;
    if (kind == LayerKind::LRU) {
      const LRUWeights lru = lruWeights(w);
      for (Index j = 0; j < H; ++j) {
        const std::complex<double> lambda = lruLambda(lru.nu[j], lru.theta[j]);
        e(j, j) = lambda.real();
        e(j, H + j) = -lambda.imag();
        e(H + j, j) = lambda.imag();
        e(H + j, H + j) = lambda.real();
      }
      return e;
    }
    const CellTensors<double> t = gatedTensors(w);
    auto pre = [&](Index row) { return inputPre(t, x, row) + recurrentPre(t, s, row); };
    for (Index u = 0; u < H; ++u) {
      if (kind == LayerKind::RNN) e(u, u) = 1.0 - leak;
      if (kind == LayerKind::GRU) e(u, u) = sigmoid(pre(H + u));
      if (kind == LayerKind::LSTM) {
        const double i = sigmoid(pre(u)), f = sigmoid(pre(H + u)), g = std::tanh(pre(2 * H + u)), o = sigmoid(pre(3 * H + u));
        const double c = f * s[H + u] + i * g, slope = 1.0 - std::tanh(c) * std::tanh(c);
        e(H + u, H + u) = f;
        e(u, H + u) = o * slope * f;
      }
    }
    return e;
  }
};

/// The unit of each θ entry of a gated cell: weight_ih and weight_hh row by row over their
/// active entries, then bias_ih and bias_hh; row r = g·H + u belongs to unit u (docs/math.md §1).
template <class C>
std::vector<Index> gatedUnits(const C& cell) {
  std::vector<Index> units;
  const Index H = cell.hiddenSize();
  for (const auto* mask : {&cell.mask_ih(), &cell.mask_hh()})
    for (Index r = 0; r < mask->rows(); ++r)
      for (Index c = 0; c < mask->cols(); ++c)
        if ((*mask)(r, c) != 0) units.push_back(r % H);
  for (int bias = 0; bias < 2; ++bias)
    for (Index r = 0; r < cell.gateRows(); ++r) units.push_back(r % H);
  return units;
}

template <class C>
ReferenceLayer gatedLayer(const C& cell, LayerKind kind, double leak) {
  ReferenceLayer layer;
  layer.kind = kind;
  layer.inputs = cell.inputSize();
  layer.units = cell.hiddenSize();
  layer.states = (kind == LayerKind::LSTM ? 2 : 1) * cell.hiddenSize();
  layer.outputs = cell.hiddenSize();
  layer.parameters = cell.parameterCount();
  layer.leak = leak;
  layer.layout = cell.layout();
  layer.unitOf = gatedUnits(cell);
  return layer;
}
inline ReferenceLayer referenceLayer(const RNN<double>& cell) { return gatedLayer(cell, LayerKind::RNN, cell.leak()); }
inline ReferenceLayer referenceLayer(const GRU<double>& cell) { return gatedLayer(cell, LayerKind::GRU, 1.0); }
inline ReferenceLayer referenceLayer(const LSTM<double>& cell) { return gatedLayer(cell, LayerKind::LSTM, 1.0); }
inline ReferenceLayer referenceLayer(const LRU<double>& cell) {
  ReferenceLayer layer;
  layer.kind = LayerKind::LRU;
  layer.inputs = cell.inputSize();
  layer.units = cell.units();
  layer.states = 2 * cell.units();
  layer.outputs = cell.outputSize();
  layer.parameters = cell.parameterCount();
  layer.activation = cell.activation();
  layer.layout = cell.layout();
  // θ = [B_re active, B_im active (row j: unit j), ν, θ (unit j), C_re, C_im, D (no unit)].
  for (const auto* mask : {&cell.mask_re(), &cell.mask_im()})
    for (Index j = 0; j < mask->rows(); ++j)
      for (Index c = 0; c < mask->cols(); ++c)
        if ((*mask)(j, c) != 0) layer.unitOf.push_back(j);
  for (int vector = 0; vector < 2; ++vector)
    for (Index j = 0; j < cell.units(); ++j) layer.unitOf.push_back(j);
  const Index outputEntries = 2 * cell.outputSize() * cell.units() + (cell.skip() ? cell.outputSize() : 0);
  layer.unitOf.insert(layer.unitOf.end(), static_cast<std::size_t>(outputEntries), Index(-1));
  return layer;
}

/// A stack of reference layers, bottom first (one layer: a single cell). Its state is the
/// layers' states stacked, θ the layers' θ in order, its output the top layer's; layer l reads
/// the output of layer l − 1 at the same step.
struct ReferenceModel {
  std::vector<ReferenceLayer> layers;
  std::vector<Index> stateOffset{0}, parameterOffset{0};
  using Weights = std::vector<ParameterTensors<double>>;

  explicit ReferenceModel(std::vector<ReferenceLayer> all) : layers(std::move(all)) {
    for (const ReferenceLayer& layer : layers) {
      stateOffset.push_back(stateOffset.back() + layer.states);
      parameterOffset.push_back(parameterOffset.back() + layer.parameters);
    }
  }
  Index inputSize() const { return layers.front().inputs; }
  Index stateSize() const { return stateOffset.back(); }
  Index outputSize() const { return layers.back().outputs; }
  Index parameterCount() const { return parameterOffset.back(); }
  Index layerCount() const { return static_cast<Index>(layers.size()); }
  Vector<double> layerState(const Vector<double>& all, Index l) const {
    return all.segment(stateOffset[static_cast<std::size_t>(l)], layers[static_cast<std::size_t>(l)].states);
  }

  Weights weights(const Vector<double>& theta) const {
    Weights w;
    for (std::size_t l = 0; l < layers.size(); ++l)
      w.push_back(layers[l].tensors(theta.segment(parameterOffset[l], layers[l].parameters)));
    return w;
  }

  /// One step: the next state, the output, and each layer's input and output.
  struct Step {
    Vector<double> next, output;
    std::vector<Vector<double>> inputs, outputs;
  };
  Step step(const Weights& w, const Vector<double>& x, const Vector<double>& state) const {
    Step result{Vector<double>(stateSize()), Vector<double>(), {}, {}};
    Vector<double> input = x;
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const Vector<double> next = layers[l].step(w[l], input, state.segment(stateOffset[l], layers[l].states));
      result.next.segment(stateOffset[l], layers[l].states) = next;
      result.inputs.push_back(input);
      input = layers[l].output(w[l], input, next);
      result.outputs.push_back(input);
    }
    result.output = input;
    return result;
  }
  /// y from the new state S' held fixed: y¹ = out¹(s'¹, x), y^l = out^l(s'^l, y^{l−1}).
  Vector<double> outputOf(const Weights& w, const Vector<double>& x, const Vector<double>& next) const {
    Vector<double> input = x;
    for (std::size_t l = 0; l < layers.size(); ++l)
      input = layers[l].output(w[l], input, next.segment(stateOffset[l], layers[l].states));
    return input;
  }
  /// The output of the step when layer l's output is `output` (the layers above recomputed from
  /// their `previous` states): the same-step paths from y^l_t to y_t.
  Vector<double> outputAbove(const Weights& w, std::size_t l, const Vector<double>& previous, const Vector<double>& output) const {
    Vector<double> input = output;
    for (std::size_t above = l + 1; above < layers.size(); ++above) {
      const Vector<double> next = layers[above].step(w[above], input, previous.segment(stateOffset[above], layers[above].states));
      input = layers[above].output(w[above], input, next);
    }
    return input;
  }
  /// The output of the step when layer l's new state is `own` (its input as in `at`): the
  /// same-step paths from s^l_t to y_t.
  Vector<double> outputFromLayer(const Weights& w, std::size_t l, const Step& at, const Vector<double>& previous,
                                 const Vector<double>& own) const {
    return outputAbove(w, l, previous, layers[l].output(w[l], at.inputs[l], own));
  }
};

/// A stack and the reference model of the same layers.
struct StackCase {
  std::string name;
  Stack<double> stack;
  ReferenceModel model;
};

template <class... Cells>
StackCase makeStackCase(std::string name, const Cells&... cells) {
  return {std::move(name), Stack<double>(cells...), ReferenceModel({referenceLayer(cells)...})};
}

/// A gated cell with its tensors scaled (scale > 1 saturates its gates).
template <class C>
C scaledTensors(C cell, double scale) {
  CellTensors<double> w = cell.tensors();
  w.weight_ih *= scale;
  w.weight_hh *= scale;
  w.bias_ih *= scale;
  w.bias_hh *= scale;
  cell.setTensors(w);
  return cell;
}

/// Stacks of mixed layers on inputs of size 3, with sparse masks inside and between the layers
/// (the gated layers' tensors scaled by `scale`): GRU → LSTM, GRU → LSTM → LRU(tanh),
/// LRU → LRU(GELU) → GRU, leaky RNN (α = 0.3) → GRU, an LRU without the skip → RNN, and
/// LSTM → LRU(GELU).
inline std::vector<StackCase> mixedStacks(double scale = 1.0) {
  auto options = [](std::uint64_t seed) { return CellOptions{.inputDensity = 0.5, .recurrentDensity = 0.4, .seed = seed}; };
  std::vector<StackCase> cases;
  cases.push_back(makeStackCase("GRU -> LSTM", scaledTensors(GRU<double>(3, 5, options(1)), scale),
                                scaledTensors(LSTM<double>(5, 4, options(2)), scale)));
  cases.push_back(makeStackCase("GRU -> LSTM -> LRU(tanh)", scaledTensors(GRU<double>(3, 5, options(3)), scale),
                                scaledTensors(LSTM<double>(5, 4, options(4)), scale),
                                LRU<double>(4, 3, {.inputDensity = 0.5, .activation = LRUActivation::Tanh, .seed = 5})));
  cases.push_back(makeStackCase("LRU -> LRU(GELU) -> GRU", LRU<double>(3, 4, {.inputDensity = 0.7, .seed = 6}),
                                LRU<double>(3, 4, {.inputDensity = 0.5, .activation = LRUActivation::GELU, .seed = 7}),
                                scaledTensors(GRU<double>(3, 5, options(8)), scale)));
  cases.push_back(makeStackCase("RNN(leak 0.3) -> GRU", scaledTensors(RNN<double>(3, 6, options(9), {.leak = 0.3}), scale),
                                scaledTensors(GRU<double>(6, 4, options(10)), scale)));
  cases.push_back(makeStackCase("LRU(no skip, o 5) -> RNN", LRU<double>(3, 4, {.outputSize = 5, .skip = false, .seed = 11}),
                                scaledTensors(RNN<double>(5, 4, options(12)), scale)));
  cases.push_back(makeStackCase("LSTM -> LRU(GELU)", scaledTensors(LSTM<double>(3, 4, options(13)), scale),
                                LRU<double>(4, 3, {.inputDensity = 0.5, .activation = LRUActivation::GELU, .seed = 14})));
  return cases;
}

/// Inputs x_t, loss gradients δ_t over the outputs (o values) and an initial state (k values),
/// drawn in that order from one seed.
struct OutputStream {
  std::vector<Vector<double>> inputs, deltas;
  Vector<double> initial;
  OutputStream(Index inputSize, Index outputSize, Index stateSize, std::uint64_t seed, Index steps, double inputScale = 1.0) {
    Random random(seed);
    for (Index t = 0; t < steps; ++t) {
      inputs.push_back(randomVector(random, inputSize, inputScale));
      deltas.push_back(randomVector(random, outputSize));
    }
    initial = randomVector(random, stateSize, 0.5);
  }
};

/// L(θ) = Σ_t δ_tᵀ y_t(θ) over the stream, by the reference equations.
inline double referenceOutputLoss(const ReferenceModel& model, const Vector<double>& theta, const OutputStream& stream) {
  const ReferenceModel::Weights w = model.weights(theta);
  Vector<double> s = stream.initial;
  double loss = 0;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    const ReferenceModel::Step step = model.step(w, stream.inputs[t], s);
    loss += stream.deltas[t].dot(step.output);
    s = step.next;
  }
  return loss;
}

/// ∂L/∂θ by central finite differences of referenceOutputLoss.
inline Vector<double> finiteDifferenceOutputGradient(const ReferenceModel& model, const Vector<double>& theta,
                                                     const OutputStream& stream) {
  const auto loss = [&](const Vector<double>& at) {
    return Vector<double>::Constant(1, referenceOutputLoss(model, at, stream));
  };
  return finiteDifferences(loss, theta).row(0).transpose();
}

/// The gradient of the per-layer rule (docs/math.md §9) from dense matrices of the reference
/// equations. For each layer l, its own influence J^l_t = A^l_t J^l_{t−1} + I^l_t: θ^l on s^l
/// through layer l's own step alone, its input sequence given (A^l = ∂f^l/∂s^l and I^l = ∂f^l/∂θ^l
/// by finite differences; with `internal`, A^l is e-prop's E^l, the couplings inside each unit,
/// and J^l keeps each parameter's own unit rows). It is contracted with ṽ^l_t = ∂(δ_tᵀ y_t)/∂s^l_t
/// through the same step only, and the same-step term ∂(δ_tᵀ y_t)/∂θ^l with s^l_t fixed (the
/// output maps' parameters) is added, as (∂y_t/∂y^l_t · ∂y^l_t/∂θ^l)ᵀ δ_t. With `keep`, J^l keeps
/// only the entries (row r of layer l, its parameter j) where keep(l, r, j) is true (SnAp-n's
/// pattern inside each layer).
inline Vector<double> perLayerGradient(const ReferenceModel& model, const Vector<double>& theta, const OutputStream& stream,
                                       bool internal = false,
                                       const std::function<bool(std::size_t, Index, Index)>& keep = nullptr) {
  const ReferenceModel::Weights w = model.weights(theta);
  std::vector<Matrix<double>> influence;
  for (const ReferenceLayer& layer : model.layers) influence.push_back(Matrix<double>::Zero(layer.states, layer.parameters));
  Vector<double> gradient = Vector<double>::Zero(model.parameterCount());
  Vector<double> s = stream.initial;
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    const ReferenceModel::Step at = model.step(w, stream.inputs[t], s);
    const Vector<double>& delta = stream.deltas[t];
    for (std::size_t l = 0; l < model.layers.size(); ++l) {
      const ReferenceLayer& layer = model.layers[l];
      const Index offset = model.parameterOffset[l];
      const Vector<double> own = theta.segment(offset, layer.parameters);
      const Vector<double> previous = model.layerState(s, static_cast<Index>(l));
      const Vector<double> next = model.layerState(at.next, static_cast<Index>(l));
      const Vector<double>& input = at.inputs[l];
      const Matrix<double> dynamics =
          internal ? layer.internalJacobian(w[l], input, previous)
                   : finiteDifferences([&](const Vector<double>& state) { return layer.step(w[l], input, state); }, previous);
      const Matrix<double> immediate = finiteDifferences(
          [&](const Vector<double>& parameters) { return layer.step(layer.tensors(parameters), input, previous); }, own);
      Matrix<double> updated = dynamics * influence[l] + immediate;
      if (internal)
        for (Index j = 0; j < layer.parameters; ++j) {
          const std::vector<Index> rows = layer.rowsOfUnit(layer.unitOf[static_cast<std::size_t>(j)]);
          for (Index r = 0; r < layer.states; ++r)
            if (std::find(rows.begin(), rows.end(), r) == rows.end()) updated(r, j) = 0;
        }
      if (keep)
        for (Index j = 0; j < layer.parameters; ++j)
          for (Index r = 0; r < layer.states; ++r)
            if (!keep(l, r, j)) updated(r, j) = 0;
      influence[l] = updated;
      const Matrix<double> byState = finiteDifferences(
          [&](const Vector<double>& state) { return model.outputFromLayer(w, l, at, s, state); }, next);
      const Matrix<double> byOutput = finiteDifferences(
          [&](const Vector<double>& output) { return model.outputAbove(w, l, s, output); }, at.outputs[l]);
      const Matrix<double> outputByParameters = finiteDifferences(
          [&](const Vector<double>& parameters) { return layer.output(layer.tensors(parameters), input, next); }, own);
      gradient.segment(offset, layer.parameters) +=
          influence[l].transpose() * (byState.transpose() * delta) + outputByParameters.transpose() * (byOutput.transpose() * delta);
    }
    s = at.next;
  }
  return gradient;
}

/// Runs an engine over the stream (from its initial state), δ over the outputs; returns its gradient.
template <class Engine>
Vector<double> gradientOverOutputs(Engine& engine, const OutputStream& stream) {
  engine.resetState(stream.initial);
  for (std::size_t t = 0; t < stream.inputs.size(); ++t) {
    engine.step(stream.inputs[t]);
    engine.accumulate(stream.deltas[t]);
  }
  return engine.gradient();
}

/// A step of any library cell: its cache, the next state, its sources z and its output y.
template <class C>
struct CellStep {
  Vector<typename C::Scalar> next, z, y;
  StepCache<typename C::Scalar> cache;
  CellStep(const C& cell, const Vector<typename C::Scalar>& x, const Vector<typename C::Scalar>& s)
      : next(cell.stateSize()), z(cell.layout().sourceSize()), y(cell.outputSize()), cache(cell.makeCache()) {
    cell.forward(x, s, next, cache);
    cell.sources(cache, x, s, z);
    cell.output(cache, next, y);
  }
};

/// A pattern's values as a dense matrix.
inline Matrix<double> denseOf(const SparsityPattern& pattern, const std::vector<double>& values) {
  Matrix<double> dense = Matrix<double>::Zero(pattern.rows(), pattern.cols());
  for (Index e = 0; e < pattern.nonZeros(); ++e) dense(pattern.entryRow(e), pattern.column(e)) = values[static_cast<std::size_t>(e)];
  return dense;
}

/// I_t (k × p) from the cell's factored form: column j = F_t[:, factor(j)] · z[source(j)], with F_t
/// the values of immediateFactors() on factorPattern() (factor f's row lists the state rows it moves).
template <class C>
Matrix<double> denseImmediateFromFactors(const C& cell, const StepCache<double>& cache, const Vector<double>& z) {
  const SparsityPattern& factors = cell.factorPattern();
  std::vector<double> values(static_cast<std::size_t>(factors.nonZeros()));
  cell.immediateFactors(cache, std::span<double>(values));
  const ParameterLayout& layout = cell.layout();
  Matrix<double> dense = Matrix<double>::Zero(cell.stateSize(), cell.parameterCount());
  for (Index j = 0; j < cell.parameterCount(); ++j) {
    const Index f = layout.factor(j);
    for (Index e = factors.rowStart(f); e < factors.rowStart(f + 1); ++e)
      dense(factors.column(e), j) += values[static_cast<std::size_t>(e)] * z[layout.source(j)];
  }
  return dense;
}

/// I_tᵀ v from a factor gradient e = F_tᵀ v (ParameterLayout's expansion).
template <class C>
Vector<double> parameterGradientOf(const C& cell, const Vector<double>& e, const Vector<double>& z) {
  Vector<double> out = Vector<double>::Zero(cell.parameterCount());
  cell.layout().template addParameterGradient<double>(e, z, out);
  return out;
}

/// The rows of each column of `dense` that are not exactly zero.
inline std::vector<std::vector<Index>> nonZeroRows(const Matrix<double>& dense) {
  std::vector<std::vector<Index>> rows(static_cast<std::size_t>(dense.cols()));
  for (Index c = 0; c < dense.cols(); ++c)
    for (Index r = 0; r < dense.rows(); ++r)
      if (dense(r, c) != 0.0) rows[static_cast<std::size_t>(c)].push_back(r);
  return rows;
}

}  // namespace snap::test
