#pragma once
/// @file
/// snap::Stack: L ≥ 1 layers of any stackable cells, layer l reading layer l − 1's output at the
/// same step, as one cell of the engines' contract (docs/math.md §9). Its state is the layers'
/// states stacked, its parameters theirs in order, its output the top layer's. Every engine
/// trains it: RTRL and BPTT exactly, SnAp-n over the stack's joint dynamics graph (a parameter
/// of layer 1 reaches layer 2's units within the same step), or per layer (SnApOptions::perLayer).

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "snap/archive/arrays.hpp"
#include "snap/cells/cell_base.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/cells/layer.hpp"
#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/snap_pattern.hpp"
#include "snap/pattern/sparse_products.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {

/// A stack of layers trained as one recurrent cell.
///
/// With S = [s¹; …; s^L], the step runs the layers in order: s^l_t = f^l(x^l_t, s^l_{t−1}),
/// y^l_t = out^l(s^l_t, x^l_t), x¹ = x, x^{l+1} = y^l. Its Jacobians compose the layers' own
/// (docs/math.md §9): D_t is block lower-triangular, D[l, l] = D^l and the blocks below the
/// diagonal pass through the layers' same-step input Jacobians; a factor of layer l moves its
/// own rows and, through y^l, every layer above. These composed values are computed only when
/// an engine asks for them (RTRL, SnAp), from the layers' values, on patterns fixed once; the
/// products BPTT and UORO use run through the layers one by one.
template <class Scalar_>
class Stack {
public:
  using Scalar = Scalar_;  ///< float or double

  /// A stack of the given cells, bottom first (copies). Each layer's input size must be the
  /// output size of the layer below.
  /// @throws ShapeError if a layer's input size is not the output size of the layer below
  template <class... Cells>
    requires(sizeof...(Cells) >= 1 && (requirement::Layerable<std::remove_cvref_t<Cells>> && ...))
  explicit Stack(Cells&&... cells) : Stack(std::vector<Layer<Scalar>>{Layer<Scalar>(std::forward<Cells>(cells))...}) {}

  /// A stack of `layers`, bottom first.
  /// @throws ShapeError for no layer, or a layer whose input size is not the output size below
  explicit Stack(std::vector<Layer<Scalar>> layers) : m_layers(std::move(layers)) {
    if (m_layers.empty()) detail::fail<ShapeError>("layers", "at least 1 layer", 0);
    for (std::size_t l = 1; l < m_layers.size(); ++l)
      if (m_layers[l]->inputSize() != m_layers[l - 1]->outputSize())
        detail::fail<ShapeError>("layers[" + detail::describe(l) + "] input size",
                                 "the output size of layer " + detail::describe(l - 1) + ", " +
                                     detail::describe(m_layers[l - 1]->outputSize()),
                                 m_layers[l]->inputSize());
    build();
  }

  /// @name Sizes and layers
  /// @{

  /// L, the number of layers.
  Index layerCount() const { return static_cast<Index>(m_layers.size()); }
  /// Layer l (its cell: layer(l).cell<GRU<double>>()).
  const Layer<Scalar>& layer(Index l) const { return m_layers[checkedLayer(l)]; }
  /// m, the input size of layer 0.
  Index inputSize() const { return m_layers.front()->inputSize(); }
  /// K = Σ_l k_l.
  Index stateSize() const { return m_stateOffset.back(); }
  /// o of the top layer.
  Index outputSize() const { return m_layers.back()->outputSize(); }
  /// p = Σ_l p_l.
  Index parameterCount() const { return m_parameterOffset.back(); }
  /// The first row of layer l's state in S.
  Index stateOffset(Index l) const { return m_stateOffset[checkedLayer(l)]; }
  /// The first entry of layer l's parameters in θ.
  Index parameterOffset(Index l) const { return m_parameterOffset[checkedLayer(l)]; }
  /// The first factor of layer l.
  Index factorOffset(Index l) const { return m_factorOffset[checkedLayer(l)]; }
  /// The layers as blocks of state rows and of factors, for the per-layer mode.
  PatternBlocks layerBlocks() const { return m_blocks; }

  /// Replaces layer l by `cell`, which must keep the layer's input and output sizes; the
  /// stack's patterns are rebuilt and maskVersion() changes. On any error nothing changes.
  template <class C>
    requires requirement::Layerable<std::remove_cvref_t<C>>
  void setLayer(Index l, C&& cell) {
    const std::size_t at = checkedLayer(l);
    Layer<Scalar> replacement(std::forward<C>(cell));
    if (replacement->inputSize() != m_layers[at]->inputSize() || replacement->outputSize() != m_layers[at]->outputSize())
      detail::fail<ShapeError>("cell", "input size " + detail::describe(m_layers[at]->inputSize()) + " and output size " +
                                           detail::describe(m_layers[at]->outputSize()) + " (those of layer " +
                                           detail::describe(l) + ")",
                               "input size " + detail::describe(replacement->inputSize()) + " and output size " +
                                   detail::describe(replacement->outputSize()));
    Stack candidate = *this;
    candidate.m_layers[at] = std::move(replacement);
    candidate.build();
    *this = std::move(candidate);
  }
  /// @}

  /// @name Parameters
  /// @{

  /// θ = [θ¹; …; θ^L].
  Vector<Scalar> parameters() const {
    Vector<Scalar> theta(parameterCount());
    parametersInto(theta);
    return theta;
  }
  /// Writes θ into `theta` (of length p), without allocating.
  void parametersInto(VectorSpan<Scalar> theta) const {
    detail::requireLength("parameter vector", theta.size(), parameterCount());
    for (std::size_t l = 0; l < m_layers.size(); ++l)
      m_layers[l]->parametersInto(theta.segment(m_parameterOffset[l], m_layers[l]->parameterCount()));
  }
  /// Sets θ; throws if it has the wrong length or is not finite (nothing changes then).
  void setParameters(const VectorView<Scalar>& theta) {
    detail::requireLength("parameters", theta.size(), parameterCount());
    if (!theta.allFinite()) detail::fail<ValueError>("parameters", "finite values", "a NaN or infinity");
    for (std::size_t l = 0; l < m_layers.size(); ++l)
      m_layers[l]->setParameters(theta.segment(m_parameterOffset[l], m_layers[l]->parameterCount()));
  }
  /// The layers' tensors in order (named `layer<l>/<name>` in layout()).
  ParameterTensors<Scalar> parameterTensors() const {
    ParameterTensors<Scalar> tensors;
    for (const Layer<Scalar>& layer : m_layers)
      for (RowMatrix<Scalar>& tensor : layer->parameterTensors()) tensors.push_back(std::move(tensor));
    return tensors;
  }
  /// Sets the tensors of layout order, all or nothing.
  void setParameterTensors(const ParameterTensors<Scalar>& tensors) {
    detail::requireLength("parameter tensors", static_cast<Index>(tensors.size()), m_layout.tensorCount());
    std::vector<Layer<Scalar>> layers = m_layers;
    std::size_t t = 0;
    for (Layer<Scalar>& layer : layers) {
      const auto count = static_cast<std::size_t>(layer->layout().tensorCount());
      layer->setParameterTensors(ParameterTensors<Scalar>(tensors.begin() + static_cast<std::ptrdiff_t>(t),
                                                          tensors.begin() + static_cast<std::ptrdiff_t>(t + count)));
      t += count;
    }
    m_layers = std::move(layers);
  }
  /// Sets the masks of the layers' maskable tensors (layout order), all or nothing; the stack's
  /// patterns are rebuilt and maskVersion() changes.
  void setParameterMasks(const std::vector<RowMatrix<Scalar>>& masks) {
    detail::requireLength("parameter masks", static_cast<Index>(masks.size()), m_layout.tensorCount());
    Stack candidate = *this;
    std::size_t t = 0;
    for (Layer<Scalar>& layer : candidate.m_layers) {
      const auto count = static_cast<std::size_t>(layer->layout().tensorCount());
      layer->setParameterMasks(std::vector<RowMatrix<Scalar>>(masks.begin() + static_cast<std::ptrdiff_t>(t),
                                                             masks.begin() + static_cast<std::ptrdiff_t>(t + count)));
      t += count;
    }
    candidate.build();
    *this = std::move(candidate);
  }
  /// @}

  /// @name Configuration (checkpoints)
  /// @{

  /// Writes `<prefix>layers` (L), and for each layer l `<prefix>layer``l``/cell` (its type name)
  /// and its own configuration under that prefix.
  void saveConfiguration(NpzArchive& archive, const std::string& prefix) const {
    putScalar<std::int64_t>(archive, prefix + "layers", layerCount());
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const std::string layer = prefix + "layer" + std::to_string(l) + "/";
      putText(archive, layer + "cell", m_layers[l]->typeName());
      m_layers[l]->saveConfiguration(archive, layer);
    }
  }
  /// Throws FormatError naming the array unless what saveConfiguration() wrote is this stack's.
  void checkConfiguration(const NpzArchive& archive, const std::string& prefix) const {
    readScalar<std::int64_t>(archive, prefix + "layers", layerCount(), layerCount());
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const std::string layer = prefix + "layer" + std::to_string(l) + "/";
      detail::requireText(archive, layer + "cell", m_layers[l]->typeName(), "a layer of type");
      m_layers[l]->checkConfiguration(archive, layer);
    }
  }
  /// @}

  /// @name Structure (fixed by the layers' masks)
  /// @{

  /// θ's tensors, the layers' in order, named `layer<l>/<name>`, at the layers' factors and sources.
  const ParameterLayout& layout() const { return m_layout; }
  /// The stack's D_t pattern: the layers' own graphs on the diagonal, and below it every
  /// (row of layer l', row of layer l < l') a same-step path connects.
  const SparsityPattern& dynamicsGraph() const { return m_dynamicsGraph; }
  /// The rows each factor moves in one step: its layer's own, and those of every layer above
  /// that its layer's output reaches in the same step.
  const SparsityPattern& factorPattern() const { return m_factorPattern; }
  /// The layers' internal couplings, block-diagonal (empty for a layer without them).
  const SparsityPattern& internalGraph() const { return m_internalGraph; }
  /// The top layer's output is the head of the stack's state when it is the head of the top
  /// layer's state... which it never is at L > 1 (the top layer's rows come last): false.
  static constexpr bool outputIsStateHead() { return false; }
  /// Changes whenever a layer or its masks change through the stack.
  std::uint64_t maskVersion() const { return m_maskVersion; }
  /// @}

  /// A cache holding each layer's, the layers' outputs and the workspace of the composition.
  StepCache<Scalar> makeCache() const {
    StepCache<Scalar> cache(m_outputOffset.back());
    for (const Layer<Scalar>& layer : m_layers) cache.layers.push_back(layer->makeCache());
    cache.workspace = Vector<Scalar>::Zero(m_workspaceSize);
    return cache;
  }

  /// The layers' steps in order, each reading the output of the one below.
  void forward(const VectorView<Scalar>& input, const VectorView<Scalar>& state, VectorSpan<Scalar> next,
               StepCache<Scalar>& cache) const {
    detail::requireLength("input", input.size(), inputSize());
    detail::requireLength("state", state.size(), stateSize());
    detail::requireLength("next state", next.size(), stateSize());
    detail::requireLength("cache.layers", static_cast<Index>(cache.layers.size()), layerCount());
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& layer = m_layers[l];
      StepCache<Scalar>& layerCache = cache.layers[l];
      auto layerNext = next.segment(m_stateOffset[l], layer->stateSize());
      if (l == 0)
        layer->forward(input, state.segment(0, layer->stateSize()), layerNext, layerCache);
      else
        layer->forward(outputOf(cache, l - 1), state.segment(m_stateOffset[l], layer->stateSize()), layerNext, layerCache);
      layer->output(layerCache, layerNext, cache.values.segment(m_outputOffset[l], layer->outputSize()));
    }
  }
  /// z = [z¹; …; z^L], each layer's sources from its own input.
  void sources(const StepCache<Scalar>& cache, const VectorView<Scalar>& input, const VectorView<Scalar>& state,
               VectorSpan<Scalar> z) const {
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& layer = m_layers[l];
      auto part = z.segment(m_sourceOffset[l], m_layers[l]->layout().sourceSize());
      const auto previous = state.segment(m_stateOffset[l], layer->stateSize());
      if (l == 0)
        layer->sources(cache.layers[l], input, previous, part);
      else
        layer->sources(cache.layers[l], outputOf(cache, l - 1), previous, part);
    }
  }
  /// y_t = y^L_t.
  void output(const StepCache<Scalar>& cache, const VectorView<Scalar>& /*next*/, VectorSpan<Scalar> y) const {
    y = outputOf(cache, m_layers.size() - 1);
  }

  /// δ_S = (∂y^L/∂S_t)ᵀ δ_y and the factor gradient of the output maps, down the chain of outputs
  /// (the top layer's, and below it through the skips y^l = out^l(s^l, y^{l−1}) that read an input).
  void outputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& outputGradient,
                      VectorSpan<Scalar> stateGradient, VectorSpan<Scalar> factorGradient) const {
    stateGradient.setZero();
    factorGradient.setZero();
    Scalar* gradient = cache.workspace.data() + m_ws.chainOutput;
    Scalar* below = cache.workspace.data() + m_ws.chainOutputBelow;
    const Index top = layerCount() - 1;
    std::copy(outputGradient.data(), outputGradient.data() + outputGradient.size(), gradient);
    for (Index l = top; l >= 0; --l) {
      const auto& layer = m_layers[static_cast<std::size_t>(l)];
      const auto at = static_cast<std::size_t>(l);
      const Eigen::Map<const Vector<Scalar>> gy(gradient, layer->outputSize());
      layer->outputBackward(cache.layers[at], gy, stateGradient.segment(m_stateOffset[at], layer->stateSize()),
                            factorGradient.segment(m_factorOffset[at], layer->layout().factorCount()));
      if (l == 0 || layer->outputInputGraph().nonZeros() == 0) break;  // no skip: nothing further down
      computeOutputValues(cache, at);
      std::fill(below, below + layer->inputSize(), Scalar(0));
      detail::multiplyTransposedVectorAdd(layer->outputInputGraph(), cache.workspace.data() + m_ws.outputInput[at], gradient, below);
      std::copy(below, below + layer->inputSize(), gradient);
    }
  }

  /// The same-step reverse pass of a state gradient v down the layers (docs/math.md §9):
  /// ṽ^L = v^L; below, ṽ^l = v^l + (∂y^l/∂s^l)ᵀ g^l with g^l = (∂s^{l+1}/∂x^{l+1})ᵀ ṽ^{l+1} +
  /// (∂y^{l+1}/∂x^{l+1})ᵀ g^{l+1}, the gradient reaching y^l; e = the output maps' factor
  /// gradients of the g^l. With ṽ, the per-layer mode's gradient is Σ_l Ĵ^lᵀ ṽ^l + e expanded.
  void spatialBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> spatial,
                       VectorSpan<Scalar> factorGradient) const {
    factorGradient.setZero();
    Scalar* gradient = cache.workspace.data() + m_ws.chainOutput;
    Scalar* below = cache.workspace.data() + m_ws.chainOutputBelow;
    Scalar* stateScratch = cache.workspace.data() + m_ws.chainState;
    Scalar* factorScratch = cache.workspace.data() + m_ws.chainFactor;
    const Index top = layerCount() - 1;
    for (Index l = top; l >= 0; --l) {
      const auto at = static_cast<std::size_t>(l);
      const auto& layer = m_layers[at];
      const Index k = layer->stateSize(), f = layer->layout().factorCount(), o = layer->outputSize();
      auto tilde = spatial.segment(m_stateOffset[at], k);
      tilde = v.segment(m_stateOffset[at], k);
      if (l < top) {  // the gradient g^l reaching y^l from the layer above
        const Eigen::Map<const Vector<Scalar>> gy(gradient, o);
        Eigen::Map<Vector<Scalar>> ds(stateScratch, k), de(factorScratch, f);
        layer->outputBackward(cache.layers[at], gy, ds, de);
        tilde += ds;
        factorGradient.segment(m_factorOffset[at], f) += de;
      }
      if (l == 0) break;
      // g^{l−1} = (∂s^l/∂x^l)ᵀ ṽ^l + (∂y^l/∂x^l)ᵀ g^l.
      Eigen::Map<Vector<Scalar>> next(below, layer->inputSize());
      layer->inputBackward(cache.layers[at], tilde, next);
      if (l < top && layer->outputInputGraph().nonZeros() > 0) {
        computeOutputValues(cache, at);
        detail::multiplyTransposedVectorAdd(layer->outputInputGraph(), cache.workspace.data() + m_ws.outputInput[at],
                                            gradient, below);
      }
      std::copy(below, below + layer->inputSize(), gradient);
    }
  }

  /// @name Jacobian products (docs/math.md §2, §9)
  /// @{

  /// values[i] = D_t at stack graph entry entries[i]: entries inside a layer's own block are
  /// that layer's D^l; any other composes the layers' same-step Jacobians.
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<const StorageIndex> entries,
                        std::span<Scalar> values) const {
    const bool own = std::all_of(entries.begin(), entries.end(),
                                 [&](StorageIndex e) { return m_ownEntry[static_cast<std::size_t>(e)] >= 0; });
    if (own) {  // each entry from its layer: only those asked for are computed
      // A run of consecutive entries of one layer is one call: their layer entries are
      // consecutive in m_ownEntry too.
      for (std::size_t i = 0; i < entries.size();) {
        const auto e = static_cast<std::size_t>(entries[i]);
        const auto l = m_entryLayer[e];
        std::size_t run = 1;
        while (i + run < entries.size() && static_cast<std::size_t>(entries[i + run]) == e + run &&
               m_entryLayer[e + run] == l)
          ++run;
        m_layers[static_cast<std::size_t>(l)]->dynamicsJacobian(
            cache.layers[static_cast<std::size_t>(l)], std::span<const StorageIndex>(&m_ownEntry[e], run),
            values.subspan(i, run));
        i += run;
      }
      return;
    }
    Scalar* all = cache.workspace.data() + m_ws.composed;
    composeDynamics(cache, all);
    for (std::size_t i = 0; i < entries.size(); ++i) values[i] = all[entries[i]];
  }
  /// values[e] = D_t at every entry of dynamicsGraph().
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    composeDynamics(cache, values.data());
  }
  /// The layers' internal couplings, block after block.
  void internalJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    std::size_t offset = 0;
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const SparsityPattern* graph = m_layers[l]->internalGraph();
      if (graph == nullptr) continue;
      m_layers[l]->internalJacobian(cache.layers[l], values.subspan(offset, static_cast<std::size_t>(graph->nonZeros())));
      offset += static_cast<std::size_t>(graph->nonZeros());
    }
  }
  /// values[e] = F_t at every entry of factorPattern(), composed from the layers' factors and
  /// same-step Jacobians.
  void immediateFactors(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    Scalar* phi = cache.workspace.data() + m_ws.phi;
    composeFactors(cache, phi);
    for (std::size_t e = 0; e < m_factorFromPhi.size(); ++e) values[e] = phi[m_factorFromPhi[e]];
  }
  /// values[i] = F_t at factor pattern entry entries[i]: an entry on its factor's own layer is
  /// that layer's factor value; any other composes the layers' same-step Jacobians.
  void immediateFactors(const StepCache<Scalar>& cache, std::span<const StorageIndex> entries,
                        std::span<Scalar> values) const {
    const bool own = std::all_of(entries.begin(), entries.end(),
                                 [&](StorageIndex e) { return m_ownFactor[static_cast<std::size_t>(e)] >= 0; });
    if (!own) {
      Scalar* phi = cache.workspace.data() + m_ws.phi;
      composeFactors(cache, phi);
      for (std::size_t i = 0; i < entries.size(); ++i) values[i] = phi[m_factorFromPhi[static_cast<std::size_t>(entries[i])]];
      return;
    }
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      Scalar* factors = cache.workspace.data() + m_ws.factors[l];
      m_layers[l]->immediateFactors(cache.layers[l], std::span<Scalar>(factors, static_cast<std::size_t>(m_layers[l]->factorPattern().nonZeros())));
    }
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const auto e = static_cast<std::size_t>(entries[i]);
      values[i] = cache.workspace[m_ws.factors[static_cast<std::size_t>(m_factorLayer[e])] + m_ownFactor[e]];
    }
  }
  /// out = D_t v, forward through the layers: u^l = D^l v^l + (∂s^l/∂x^l) w^{l−1},
  /// w^l = (∂y^l/∂s^l) u^l + (∂y^l/∂x^l) w^{l−1}.
  void dynamicsProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> out) const {
    Scalar* previous = cache.workspace.data() + m_ws.chainOutput;
    Scalar* current = cache.workspace.data() + m_ws.chainOutputBelow;
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& layer = m_layers[l];
      const Index k = layer->stateSize(), o = layer->outputSize();
      auto u = out.segment(m_stateOffset[l], k);
      layer->dynamicsProduct(cache.layers[l], v.segment(m_stateOffset[l], k), u);
      if (l > 0) {
        computeInputValues(cache, l);
        detail::multiplyVectorAdd(layer->inputGraph(), cache.workspace.data() + m_ws.input[l], previous, u.data());
      }
      if (l + 1 == m_layers.size()) break;
      computeOutputValues(cache, l);
      std::fill(current, current + o, Scalar(0));
      detail::multiplyVectorAdd(layer->outputStateGraph(), cache.workspace.data() + m_ws.outputState[l], u.data(), current);
      if (l > 0) detail::multiplyVectorAdd(layer->outputInputGraph(), cache.workspace.data() + m_ws.outputInput[l], previous, current);
      std::swap(previous, current);
    }
  }
  /// e = F_tᵀ v: the spatial pass, then each layer's own factor gradient of its ṽ^l.
  void factorGradient(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> e) const {
    Eigen::Map<Vector<Scalar>> spatial(cache.workspace.data() + m_ws.spatial, stateSize());
    spatialBackward(cache, v, spatial, e);
    addLayerFactorGradients(cache, spatial, e);
  }
  /// previous = D_tᵀ v and e = F_tᵀ v.
  void vectorJacobianProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> previous,
                             VectorSpan<Scalar> e) const {
    Eigen::Map<Vector<Scalar>> spatial(cache.workspace.data() + m_ws.spatial, stateSize());
    spatialBackward(cache, v, spatial, e);
    Scalar* factorScratch = cache.workspace.data() + m_ws.chainFactor;
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& layer = m_layers[l];
      const Index k = layer->stateSize(), f = layer->layout().factorCount();
      Eigen::Map<Vector<Scalar>> own(factorScratch, f);
      layer->vectorJacobianProduct(cache.layers[l], spatial.segment(m_stateOffset[l], k),
                                   previous.segment(m_stateOffset[l], k), own);
      e.segment(m_factorOffset[l], f) += own;
    }
  }
  /// @}

private:
  /// Where each quantity lives in a cache's workspace.
  struct Workspace {
    std::vector<Index> dynamics, input, outputState, outputInput, outputFactor, factors;  ///< layer values
    std::vector<Index> stateRows, outputRows;  ///< composition: A^l (∂s^l/∂S_{t−1}) values, Y^l (∂y^l/∂S_{t−1})
    std::vector<Index> phiRows, psiRows;       ///< Φ^l (∂s^l/∂factors), Ψ^l (∂y^l/∂factors)
    Index composed = 0, phi = 0, accumulator = 0;
    Index chainOutput = 0, chainOutputBelow = 0, chainState = 0, chainFactor = 0, spatial = 0;
  };
  /// The patterns of one layer's composition (global columns: K for A, Y; F for Φ, Ψ).
  struct Level {
    SparsityPattern ownDynamics;       ///< D^l with its columns at layer l's rows of S
    SparsityPattern ownFactors;        ///< F^lᵀ (k_l × F) at layer l's factors
    SparsityPattern ownOutputFactors;  ///< O_f^lᵀ (o_l × F) at layer l's factors
    std::vector<StorageIndex> factorsTranspose, outputFactorsTranspose;  ///< values of F^lᵀ, O_f^lᵀ from F^l, O_f^l
    SparsityPattern stateRows, outputRows, phiRows, psiRows;            ///< A^l, Y^l, Φ^l, Ψ^l
    std::vector<StorageIndex> dynamicsInState, factorsInPhi, outputFactorsInPsi;  ///< entry maps
  };

  std::size_t checkedLayer(Index l) const {
    if (l < 0 || l >= layerCount())
      detail::fail<ShapeError>("layer", "an index in [0, " + detail::describe(layerCount()) + ")", l);
    return static_cast<std::size_t>(l);
  }

  /// y^l of the cache's step.
  Eigen::Map<const Vector<Scalar>> outputOf(const StepCache<Scalar>& cache, std::size_t l) const {
    return {cache.values.data() + m_outputOffset[l], m_layers[l]->outputSize()};
  }

  void computeLayerDynamics(const StepCache<Scalar>& cache, std::size_t l) const {
    Scalar* values = cache.workspace.data() + m_ws.dynamics[l];
    m_layers[l]->dynamicsJacobian(cache.layers[l], std::span<Scalar>(values, static_cast<std::size_t>(m_layers[l]->dynamicsGraph().nonZeros())));
  }
  void computeInputValues(const StepCache<Scalar>& cache, std::size_t l) const {
    Scalar* values = cache.workspace.data() + m_ws.input[l];
    m_layers[l]->inputJacobian(cache.layers[l], std::span<Scalar>(values, static_cast<std::size_t>(m_layers[l]->inputGraph().nonZeros())));
  }
  void computeOutputValues(const StepCache<Scalar>& cache, std::size_t l) const {
    const auto& layer = m_layers[l];
    Scalar* w = cache.workspace.data();
    layer->outputJacobian(cache.layers[l],
                          std::span<Scalar>(w + m_ws.outputState[l], static_cast<std::size_t>(layer->outputStateGraph().nonZeros())),
                          std::span<Scalar>(w + m_ws.outputInput[l], static_cast<std::size_t>(layer->outputInputGraph().nonZeros())),
                          std::span<Scalar>(w + m_ws.outputFactor[l], static_cast<std::size_t>(layer->outputFactorPattern().nonZeros())));
  }

  /// D_t's values in graph order into `out`: A^1 = D^1; A^l = P^l Y^{l−1} + D^l;
  /// Y^l = O_s^l A^l + O_x^l Y^{l−1} (the rows of A^l follow one another in the stack's graph).
  void composeDynamics(const StepCache<Scalar>& cache, Scalar* out) const {
    Scalar* w = cache.workspace.data();
    Scalar* accumulator = w + m_ws.accumulator;
    std::fill(out, out + m_dynamicsGraph.nonZeros(), Scalar(0));
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& layer = m_layers[l];
      const Level& level = m_levels[l];
      Scalar* state = out + m_ws.stateRows[l];
      computeLayerDynamics(cache, l);
      detail::scatterAdd(level.dynamicsInState, w + m_ws.dynamics[l], state);
      if (l > 0) {
        computeInputValues(cache, l);
        detail::multiplyAdd(layer->inputGraph(), w + m_ws.input[l], m_levels[l - 1].outputRows, w + m_ws.outputRows[l - 1],
                            level.stateRows, state, accumulator);
      }
      if (l + 1 == m_layers.size()) break;
      Scalar* output = w + m_ws.outputRows[l];
      std::fill(output, output + level.outputRows.nonZeros(), Scalar(0));
      computeOutputValues(cache, l);
      detail::multiplyAdd(layer->outputStateGraph(), w + m_ws.outputState[l], level.stateRows, state, level.outputRows, output,
                          accumulator);
      if (l > 0)
        detail::multiplyAdd(layer->outputInputGraph(), w + m_ws.outputInput[l], m_levels[l - 1].outputRows,
                            w + m_ws.outputRows[l - 1], level.outputRows, output, accumulator);
    }
  }

  /// Φ^l (rows of S, in order) into `phi`: Φ^1 = F^1ᵀ; Φ^l = P^l Ψ^{l−1} + F^lᵀ;
  /// Ψ^l = O_s^l Φ^l + O_x^l Ψ^{l−1} + O_f^lᵀ.
  void composeFactors(const StepCache<Scalar>& cache, Scalar* phi) const {
    Scalar* w = cache.workspace.data();
    Scalar* accumulator = w + m_ws.accumulator;
    std::fill(phi, phi + m_phiSize, Scalar(0));
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& layer = m_layers[l];
      const Level& level = m_levels[l];
      Scalar* rows = phi + m_ws.phiRows[l];
      Scalar* factors = w + m_ws.factors[l];
      layer->immediateFactors(cache.layers[l], std::span<Scalar>(factors, static_cast<std::size_t>(layer->factorPattern().nonZeros())));
      for (std::size_t e = 0; e < level.factorsTranspose.size(); ++e)
        rows[level.factorsInPhi[e]] += factors[level.factorsTranspose[e]];
      if (l > 0) {
        computeInputValues(cache, l);
        detail::multiplyAdd(layer->inputGraph(), w + m_ws.input[l], m_levels[l - 1].psiRows, w + m_ws.psiRows[l - 1],
                            level.phiRows, rows, accumulator);
      }
      if (l + 1 == m_layers.size()) break;
      Scalar* psi = w + m_ws.psiRows[l];
      std::fill(psi, psi + level.psiRows.nonZeros(), Scalar(0));
      computeOutputValues(cache, l);
      const Scalar* outputFactors = w + m_ws.outputFactor[l];
      for (std::size_t e = 0; e < level.outputFactorsTranspose.size(); ++e)
        psi[level.outputFactorsInPsi[e]] += outputFactors[level.outputFactorsTranspose[e]];
      detail::multiplyAdd(layer->outputStateGraph(), w + m_ws.outputState[l], level.phiRows, rows, level.psiRows, psi,
                          accumulator);
      if (l > 0)
        detail::multiplyAdd(layer->outputInputGraph(), w + m_ws.outputInput[l], m_levels[l - 1].psiRows,
                            w + m_ws.psiRows[l - 1], level.psiRows, psi, accumulator);
    }
  }

  /// e^l += F^lᵀ ṽ^l for each layer.
  void addLayerFactorGradients(const StepCache<Scalar>& cache, const Eigen::Map<Vector<Scalar>>& spatial,
                               VectorSpan<Scalar> e) const {
    Scalar* factorScratch = cache.workspace.data() + m_ws.chainFactor;
    for (std::size_t l = 0; l < m_layers.size(); ++l) {
      const auto& layer = m_layers[l];
      const Index f = layer->layout().factorCount();
      Eigen::Map<Vector<Scalar>> own(factorScratch, f);
      layer->factorGradient(cache.layers[l], spatial.segment(m_stateOffset[l], layer->stateSize()), own);
      e.segment(m_factorOffset[l], f) += own;
    }
  }

  /// Offsets, layout, the composed patterns and the workspace plan, from the layers.
  void build() {
    const std::size_t count = m_layers.size();
    m_stateOffset.assign(1, 0);
    m_parameterOffset.assign(1, 0);
    m_factorOffset.assign(1, 0);
    m_sourceOffset.assign(1, 0);
    m_outputOffset.assign(1, 0);
    for (const Layer<Scalar>& layer : m_layers) {
      m_stateOffset.push_back(detail::checkedSum("layers", m_stateOffset.back(), layer->stateSize()));
      m_parameterOffset.push_back(detail::checkedSum("layers", m_parameterOffset.back(), layer->parameterCount()));
      m_factorOffset.push_back(detail::checkedSum("layers", m_factorOffset.back(), layer->layout().factorCount()));
      m_sourceOffset.push_back(detail::checkedSum("layers", m_sourceOffset.back(), layer->layout().sourceSize()));
      m_outputOffset.push_back(detail::checkedSum("layers", m_outputOffset.back(), layer->outputSize()));
    }
    const Index states = m_stateOffset.back(), factors = m_factorOffset.back();
    if (m_parameterOffset.back() > std::numeric_limits<StorageIndex>::max() || states > std::numeric_limits<StorageIndex>::max() ||
        factors > std::numeric_limits<StorageIndex>::max())
      detail::fail<ShapeError>("layers", "fewer than 2^31 parameters, state rows and factors", m_parameterOffset.back());

    // The layout: every layer's tensors, named layer<l>/<name>, at the layer's factors and sources.
    std::vector<TensorSpec> specs;
    std::vector<RowMatrix<Scalar>> maskStore;
    std::vector<std::size_t> maskOf;
    for (std::size_t l = 0; l < count; ++l) {
      const ParameterLayout& own = m_layers[l]->layout();
      for (Index t = 0; t < own.tensorCount(); ++t) {
        TensorSpec spec = own.tensor(t);
        spec.name = "layer" + std::to_string(l) + "/" + spec.name;
        if (spec.isMaskable()) spec.maskName = "layer" + std::to_string(l) + "/" + spec.maskName;
        spec.factorOffset += m_factorOffset[l];
        spec.sourceOffset += m_sourceOffset[l];
        specs.push_back(std::move(spec));
        maskStore.push_back(own.mask(t).template cast<Scalar>());
      }
    }
    std::vector<const RowMatrix<Scalar>*> masks;
    for (const RowMatrix<Scalar>& mask : maskStore) masks.push_back(&mask);
    m_layout = ParameterLayout(std::move(specs), masks, factors, m_sourceOffset.back());

    // Blocks of the per-layer mode.
    m_blocks.ofRow.assign(static_cast<std::size_t>(states), 0);
    m_blocks.ofFactor.assign(static_cast<std::size_t>(factors), 0);
    for (std::size_t l = 0; l < count; ++l) {
      std::fill(m_blocks.ofRow.begin() + m_stateOffset[l], m_blocks.ofRow.begin() + m_stateOffset[l + 1], static_cast<StorageIndex>(l));
      std::fill(m_blocks.ofFactor.begin() + m_factorOffset[l], m_blocks.ofFactor.begin() + m_factorOffset[l + 1],
                static_cast<StorageIndex>(l));
    }

    // The composition's patterns, layer by layer (docs/math.md §9).
    m_levels.assign(count, Level{});
    for (std::size_t l = 0; l < count; ++l) {
      const auto& layer = m_layers[l];
      Level& level = m_levels[l];
      level.ownDynamics = detail::shiftColumns(layer->dynamicsGraph(), m_stateOffset[l], states);
      level.ownFactors = detail::shiftColumns(layer->factorPattern().transposed(), m_factorOffset[l], factors);
      level.factorsTranspose = detail::transposeMap(layer->factorPattern());
      level.ownOutputFactors = detail::shiftColumns(layer->outputFactorPattern().transposed(), m_factorOffset[l], factors);
      level.outputFactorsTranspose = detail::transposeMap(layer->outputFactorPattern());
      if (l == 0) {
        level.stateRows = level.ownDynamics;
        level.phiRows = level.ownFactors;
      } else {
        const SparsityPattern fromBelow = detail::productPattern(layer->inputGraph(), m_levels[l - 1].outputRows);
        level.stateRows = detail::unionPattern({&fromBelow, &level.ownDynamics});
        const SparsityPattern factorsFromBelow = detail::productPattern(layer->inputGraph(), m_levels[l - 1].psiRows);
        level.phiRows = detail::unionPattern({&factorsFromBelow, &level.ownFactors});
      }
      level.dynamicsInState = detail::entryMap(level.ownDynamics, level.stateRows);
      level.factorsInPhi = detail::entryMap(level.ownFactors, level.phiRows);
      if (l + 1 < count) {
        const SparsityPattern throughState = detail::productPattern(layer->outputStateGraph(), level.stateRows);
        const SparsityPattern factorsThroughState = detail::productPattern(layer->outputStateGraph(), level.phiRows);
        if (l == 0) {
          level.outputRows = throughState;
          level.psiRows = detail::unionPattern({&factorsThroughState, &level.ownOutputFactors});
        } else {
          const SparsityPattern skip = detail::productPattern(layer->outputInputGraph(), m_levels[l - 1].outputRows);
          level.outputRows = detail::unionPattern({&throughState, &skip});
          const SparsityPattern factorSkip = detail::productPattern(layer->outputInputGraph(), m_levels[l - 1].psiRows);
          level.psiRows = detail::unionPattern({&factorsThroughState, &factorSkip, &level.ownOutputFactors});
        }
        level.outputFactorsInPsi = detail::entryMap(level.ownOutputFactors, level.psiRows);
      }
    }
    // The stack's graph: the rows of A^1, …, A^L in order; its factor pattern: Φ transposed.
    std::vector<std::vector<StorageIndex>> dynamicsRows, phiRows;
    for (const Level& level : m_levels)
      for (Index r = 0; r < level.stateRows.rows(); ++r) {
        dynamicsRows.emplace_back(level.stateRows.row(r).begin(), level.stateRows.row(r).end());
        phiRows.emplace_back(level.phiRows.row(r).begin(), level.phiRows.row(r).end());
      }
    m_dynamicsGraph = SparsityPattern(states, std::move(dynamicsRows));
    const SparsityPattern phi(factors, std::move(phiRows));  // S rows × factors
    m_phiSize = phi.nonZeros();
    m_factorPattern = phi.transposed();
    m_factorFromPhi = detail::transposeMap(phi);
    // Which stack graph entries lie in a layer's own block, and where in D^l.
    m_ownEntry.assign(static_cast<std::size_t>(m_dynamicsGraph.nonZeros()), -1);
    m_entryLayer.assign(static_cast<std::size_t>(m_dynamicsGraph.nonZeros()), 0);
    Index stateRowsOffset = 0;
    std::vector<Index> stateRowsStart;
    for (std::size_t l = 0; l < count; ++l) {
      stateRowsStart.push_back(stateRowsOffset);
      const Level& level = m_levels[l];
      for (std::size_t e = 0; e < level.dynamicsInState.size(); ++e) {
        const auto entry = static_cast<std::size_t>(stateRowsOffset + level.dynamicsInState[e]);
        m_ownEntry[entry] = static_cast<StorageIndex>(e);
        m_entryLayer[entry] = static_cast<StorageIndex>(l);
      }
      stateRowsOffset += level.stateRows.nonZeros();
    }
    // Which factor pattern entries lie on their factor's own layer, and where in F^l.
    m_ownFactor.assign(static_cast<std::size_t>(m_factorPattern.nonZeros()), -1);
    m_factorLayer.assign(static_cast<std::size_t>(m_factorPattern.nonZeros()), 0);
    for (std::size_t l = 0; l < count; ++l)
      for (Index f = m_factorOffset[l]; f < m_factorOffset[l + 1]; ++f)
        for (Index e = m_factorPattern.rowStart(f); e < m_factorPattern.rowStart(f + 1); ++e) {
          const Index row = m_factorPattern.column(e);
          if (row < m_stateOffset[l] || row >= m_stateOffset[l + 1]) continue;
          m_ownFactor[static_cast<std::size_t>(e)] = static_cast<StorageIndex>(
              m_layers[l]->factorPattern().find(f - m_factorOffset[l], row - m_stateOffset[l]));
          m_factorLayer[static_cast<std::size_t>(e)] = static_cast<StorageIndex>(l);
        }
    // Internal couplings, block-diagonal.
    std::vector<std::vector<StorageIndex>> internal(static_cast<std::size_t>(states));
    for (std::size_t l = 0; l < count; ++l) {
      const SparsityPattern* graph = m_layers[l]->internalGraph();
      if (graph == nullptr) continue;
      for (Index r = 0; r < graph->rows(); ++r)
        for (StorageIndex c : graph->row(r))
          internal[static_cast<std::size_t>(m_stateOffset[l] + r)].push_back(static_cast<StorageIndex>(m_stateOffset[l] + c));
    }
    m_internalGraph = SparsityPattern(states, std::move(internal));

    // The workspace plan.
    Index size = 0;
    auto take = [&](Index n) {
      const Index at = size;
      size = detail::checkedSum("layers", size, n);
      return at;
    };
    m_ws = Workspace{};
    for (std::size_t l = 0; l < count; ++l) {
      const auto& layer = m_layers[l];
      m_ws.dynamics.push_back(take(layer->dynamicsGraph().nonZeros()));
      m_ws.input.push_back(take(layer->inputGraph().nonZeros()));
      m_ws.outputState.push_back(take(layer->outputStateGraph().nonZeros()));
      m_ws.outputInput.push_back(take(layer->outputInputGraph().nonZeros()));
      m_ws.outputFactor.push_back(take(layer->outputFactorPattern().nonZeros()));
      m_ws.factors.push_back(take(layer->factorPattern().nonZeros()));
      m_ws.stateRows.push_back(stateRowsStart[l]);  // offsets inside the composed D values
      m_ws.outputRows.push_back(take(m_levels[l].outputRows.nonZeros()));
      m_ws.psiRows.push_back(take(m_levels[l].psiRows.nonZeros()));
    }
    Index phiOffset = 0;
    for (const Level& level : m_levels) {
      m_ws.phiRows.push_back(phiOffset);
      phiOffset += level.phiRows.nonZeros();
    }
    Index widestOutput = 1, widestState = 1, widestFactors = 1;
    for (const Layer<Scalar>& layer : m_layers) {
      widestOutput = std::max({widestOutput, layer->outputSize(), layer->inputSize()});
      widestState = std::max(widestState, layer->stateSize());
      widestFactors = std::max(widestFactors, layer->layout().factorCount());
    }
    m_ws.composed = take(m_dynamicsGraph.nonZeros());
    m_ws.phi = take(m_phiSize);
    m_ws.accumulator = take(std::max(states, factors));
    m_ws.chainOutput = take(widestOutput);
    m_ws.chainOutputBelow = take(widestOutput);
    m_ws.chainState = take(widestState);
    m_ws.chainFactor = take(widestFactors);
    m_ws.spatial = take(states);
    detail::requireArray<Scalar>("layers", size, "stack workspace per stream (the composed Jacobians)");
    m_workspaceSize = size;
    m_maskVersion = detail::nextMaskVersion();
  }

  std::vector<Layer<Scalar>> m_layers;
  std::vector<Index> m_stateOffset, m_parameterOffset, m_factorOffset, m_sourceOffset, m_outputOffset;
  ParameterLayout m_layout;
  PatternBlocks m_blocks;
  std::vector<Level> m_levels;
  SparsityPattern m_dynamicsGraph, m_factorPattern, m_internalGraph;
  std::vector<StorageIndex> m_factorFromPhi;  ///< factor pattern entry → its value among the Φ^l rows
  std::vector<StorageIndex> m_ownEntry;       ///< graph entry → its entry in its layer's D^l, or −1
  std::vector<StorageIndex> m_entryLayer;     ///< graph entry → the layer of its row
  std::vector<StorageIndex> m_ownFactor;      ///< factor pattern entry → its entry in its layer's F^l, or −1
  std::vector<StorageIndex> m_factorLayer;    ///< factor pattern entry → the layer of its factor
  Index m_phiSize = 0;
  Workspace m_ws;
  Index m_workspaceSize = 0;
  std::uint64_t m_maskVersion = 0;
};

/// A stack of layers (each layer's type is stored as layer<l>/cell).
template <class Scalar>
struct CellTypeName<Stack<Scalar>> {
  static constexpr std::string_view value = "stack";  ///< the stored name
};

}  // namespace snap
