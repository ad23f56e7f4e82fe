#pragma once
/// @file
/// The part every PyTorch-style gated cell shares: sizes, masks, the four tensors, the
/// parameter layout, the structural patterns (dynamics graph, factor rows, input and output
/// graphs), and every product of the cell contract (docs/design.md) computed from the per-step
/// factors of docs/math.md §2. A concrete cell adds only its forward step.

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "snap/archive/arrays.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/cells/mask.hpp"
#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {

/// How a cell's masks and initial weights are drawn.
struct CellOptions {
  double inputDensity = 1.0;      ///< density of weight_ih's mask, in (0, 1]
  double recurrentDensity = 1.0;  ///< density of weight_hh's mask, in (0, 1]
  MaskSharing maskSharing = MaskSharing::PerGate;  ///< one mask per gate block, or one shared
  std::uint64_t seed = 0;         ///< seeds the masks, then the weights
};

namespace detail {
/// A process-wide unique number for each mask assignment, so engines notice a mask change.
inline std::uint64_t nextMaskVersion() {
  static std::atomic<std::uint64_t> counter{0};
  return ++counter;
}
}  // namespace detail

/// The shared base of the cells: owns the masks and the tensors, and offers the Jacobian
/// products of docs/math.md §2 on the factors a step left in its StepCache.
template <class Scalar_>
class CellBase {
public:
  using Scalar = Scalar_;  ///< float or double
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "snap: cells are defined for Scalar = float or double");

  /// m, the length of the input x.
  Index inputSize() const { return m_inputSize; }
  /// H, the hidden units.
  Index hiddenSize() const { return m_hiddenSize; }
  /// k = U·H, the length of the state s.
  Index stateSize() const { return m_structure.unitStates * m_hiddenSize; }
  /// o = H, the length of the output y = h, what a readout or the next layer of a stack reads.
  Index outputSize() const { return m_hiddenSize; }
  /// G·H, the rows of the weight tensors.
  Index gateRows() const { return m_structure.gates * m_hiddenSize; }
  /// p, the number of active parameters (unmasked weights and all biases).
  Index parameterCount() const { return m_layout.size(); }
  /// Gates, state blocks, reach and direct couplings of this cell type (docs/math.md §2).
  const CellStructure& structure() const { return m_structure; }

  // The PyTorch tensors and masks (docs/math.md §1).

  /// weight_ih, G·H × m, gate blocks stacked in PyTorch's order; 0 where mask_ih is 0.
  const RowMatrix<Scalar>& weight_ih() const { return m_tensors.weight_ih; }
  /// weight_hh, G·H × H; 0 where mask_hh is 0.
  const RowMatrix<Scalar>& weight_hh() const { return m_tensors.weight_hh; }
  /// bias_ih, G·H (never masked).
  const Vector<Scalar>& bias_ih() const { return m_tensors.bias_ih; }
  /// bias_hh, G·H (never masked).
  const Vector<Scalar>& bias_hh() const { return m_tensors.bias_hh; }
  /// The 0/1 mask of weight_ih.
  const RowMatrix<Scalar>& mask_ih() const { return m_maskIh; }
  /// The 0/1 mask of weight_hh.
  const RowMatrix<Scalar>& mask_hh() const { return m_maskHh; }
  /// All four tensors.
  const CellTensors<Scalar>& tensors() const { return m_tensors; }

  /// Sets the four tensors. Each must have PyTorch's shape, be finite, and be exactly 0 where
  /// its mask is 0; otherwise a snap::Error names the tensor and nothing changes.
  void setTensors(const CellTensors<Scalar>& tensors) {
    validateTensor("weight_ih", tensors.weight_ih, gateRows(), m_inputSize, &m_maskIh);
    validateTensor("weight_hh", tensors.weight_hh, gateRows(), m_hiddenSize, &m_maskHh);
    validateTensor("bias_ih", tensors.bias_ih, gateRows(), 1, nullptr);
    validateTensor("bias_hh", tensors.bias_hh, gateRows(), 1, nullptr);
    m_tensors = tensors;
  }

  /// Sets the four tensors from any Eigen expressions, as setTensors does.
  template <class WeightIh, class WeightHh, class BiasIh, class BiasHh>
  void setWeights(const Eigen::MatrixBase<WeightIh>& weight_ih, const Eigen::MatrixBase<WeightHh>& weight_hh,
                  const Eigen::MatrixBase<BiasIh>& bias_ih, const Eigen::MatrixBase<BiasHh>& bias_hh) {
    detail::requireShape("bias_ih", bias_ih.rows(), bias_ih.cols(), gateRows(), 1);
    detail::requireShape("bias_hh", bias_hh.rows(), bias_hh.cols(), gateRows(), 1);
    setTensors({weight_ih, weight_hh, bias_ih, bias_hh});
  }

  /// Sets both masks (0/1 matrices of the weights' shapes). Weights at newly masked positions
  /// become 0; weights at newly unmasked positions start at 0. Rebuilds the parameter layout
  /// and the dynamics graph, and gives the cell a new maskVersion(). Every entry must be
  /// exactly 0 or 1 in the masks' own scalar type (1 + 1e-9 given as a double is refused even
  /// on a float cell, where it would round to 1); on any error nothing changes.
  template <class MaskIh, class MaskHh>
  void setMasks(const Eigen::MatrixBase<MaskIh>& mask_ih, const Eigen::MatrixBase<MaskHh>& mask_hh) {
    validateMask("mask_ih", mask_ih, gateRows(), m_inputSize);
    validateMask("mask_hh", mask_hh, gateRows(), m_hiddenSize);
    RowMatrix<Scalar> maskIh = mask_ih.template cast<Scalar>();
    RowMatrix<Scalar> maskHh = mask_hh.template cast<Scalar>();
    MaskStructure built = buildStructure(maskIh, maskHh);  // may refuse: nothing has changed yet
    m_maskIh = std::move(maskIh);
    m_maskHh = std::move(maskHh);
    m_tensors.weight_ih.array() *= m_maskIh.array();
    m_tensors.weight_hh.array() *= m_maskHh.array();
    commitStructure(std::move(built));
  }

  /// θ, the active parameters in the order of layout().
  Vector<Scalar> parameters() const {
    Vector<Scalar> theta(parameterCount());
    parametersInto(theta);
    return theta;
  }
  /// Writes θ into `theta` (of length p), without allocating.
  void parametersInto(VectorSpan<Scalar> theta) const {
    detail::requireLength("parameter vector", theta.size(), parameterCount());
    Index j = 0;
    for (const auto* tensor : {&m_tensors.weight_ih, &m_tensors.weight_hh}) {
      const Index t = tensor == &m_tensors.weight_ih ? 0 : 1;
      for (Index r = 0; r < gateRows(); ++r)
        for (StorageIndex c : m_layout.columns(t, r)) theta[j++] = (*tensor)(r, c);
    }
    theta.segment(j, gateRows()) = m_tensors.bias_ih;
    theta.segment(j + gateRows(), gateRows()) = m_tensors.bias_hh;
  }
  /// Sets θ; masked weights stay exactly 0. Throws if θ has the wrong length or is not finite.
  void setParameters(const VectorView<Scalar>& theta) {
    detail::requireLength("parameters", theta.size(), parameterCount());
    if (!theta.allFinite()) detail::fail<ValueError>("parameters", "finite values", "a NaN or infinity");
    Index j = 0;
    for (auto* tensor : {&m_tensors.weight_ih, &m_tensors.weight_hh}) {
      const Index t = tensor == &m_tensors.weight_ih ? 0 : 1;
      for (Index r = 0; r < gateRows(); ++r)
        for (StorageIndex c : m_layout.columns(t, r)) (*tensor)(r, c) = theta[j++];
    }
    m_tensors.bias_ih = theta.segment(j, gateRows());
    m_tensors.bias_hh = theta.segment(j + gateRows(), gateRows());
  }
  /// A θ-ordered vector (a gradient, say) as the four tensors, with zeros at masked positions.
  CellTensors<Scalar> unflatten(const VectorView<Scalar>& theta) const {
    return toCellTensors(m_layout.unflatten(theta));
  }

  /// @name The parameter tensors in layout order (weights files, checkpoints, any cell alike)
  /// @{

  /// The tensors of layout order, [weight_ih, weight_hh, bias_ih, bias_hh], the biases as G·H × 1.
  ParameterTensors<Scalar> parameterTensors() const {
    return {m_tensors.weight_ih, m_tensors.weight_hh, m_tensors.bias_ih, m_tensors.bias_hh};
  }
  /// Sets the tensors of layout order, as setTensors() does.
  void setParameterTensors(const ParameterTensors<Scalar>& tensors) {
    detail::requireLength("parameter tensors", static_cast<Index>(tensors.size()), 4);
    detail::requireShape("bias_ih", tensors[2].rows(), tensors[2].cols(), gateRows(), 1);
    detail::requireShape("bias_hh", tensors[3].rows(), tensors[3].cols(), gateRows(), 1);
    setTensors(toCellTensors(tensors));
  }
  /// Sets the masks of the maskable tensors of layout order (weight_ih, weight_hh; the biases'
  /// entries are ignored), as setMasks() does.
  void setParameterMasks(const std::vector<RowMatrix<Scalar>>& masks) {
    detail::requireLength("parameter masks", static_cast<Index>(masks.size()), 4);
    setMasks(masks[0], masks[1]);
  }
  /// @}

  /// The order and meaning of θ's entries (docs/math.md §1–§2): the tensors weight_ih,
  /// weight_hh, bias_ih, bias_hh; the factors are the 2·G·H preactivations [a; c] and the
  /// sources z = [x; 1; h_{t−1}; 1].
  const ParameterLayout& layout() const { return m_layout; }
  /// The structural nonzeros of D_t = ∂s_t/∂s_{t−1} (docs/math.md §2), fixed by the masks.
  const SparsityPattern& dynamicsGraph() const { return m_dynamicsGraph; }
  /// The state rows each factor moves in one step (F × k): preactivation r of gate g and unit u
  /// moves the blocks q of unit u that gate g reaches (its home rows, docs/math.md §2).
  const SparsityPattern& factorPattern() const { return m_factorPattern; }
  /// The couplings of D_t inside a unit that do not pass through W_hh (GRU: z ⊙ h; LSTM: f ⊙ c;
  /// a leaky RNN: (1 − α) h), k × k: what e-prop and RFLO keep (docs/math.md §8).
  const SparsityPattern& internalGraph() const { return m_internalGraph; }
  /// The structural nonzeros of ∂s_t/∂x_t (k × m), from mask_ih (what a stack composes).
  const SparsityPattern& inputGraph() const { return m_inputGraph; }
  /// The output reads the state only, y = h: ∂y/∂s_t is the identity on the h rows (o × k),
  /// ∂y/∂x_t is empty (o × m), and no factor moves y directly (F × o).
  const SparsityPattern& outputStateGraph() const { return m_outputStateGraph; }
  /// ∂y/∂x_t's structure: empty (o × m).
  const SparsityPattern& outputInputGraph() const { return m_outputInputGraph; }
  /// The output rows each factor moves directly: none (F × o).
  const SparsityPattern& outputFactorPattern() const { return m_outputFactorPattern; }
  /// y_t is the first o rows of s_t, with no parameter of its own: a state gradient (k rows)
  /// may stand for an output gradient.
  static constexpr bool outputIsStateHead() { return true; }
  /// Changes whenever the masks change (unique across cells in the process).
  std::uint64_t maskVersion() const { return m_maskVersion; }

  /// A cache sized for this cell's steps.
  StepCache<Scalar> makeCache() const { return StepCache<Scalar>(m_structure, m_hiddenSize); }

  /// z = [x; 1; h; 1] for the input x and the previous state s, the sources of the immediate
  /// Jacobian's columns (ParameterLayout).
  void sources(const VectorView<Scalar>& input, const VectorView<Scalar>& state, VectorSpan<Scalar> z) const {
    z.head(m_inputSize) = input;
    z[m_inputSize] = Scalar(1);
    z.segment(m_inputSize + 1, m_hiddenSize) = state.head(m_hiddenSize);
    z[m_inputSize + m_hiddenSize + 1] = Scalar(1);
  }
  /// The same, in the contract's form (a gated cell's sources do not need its step's cache).
  void sources(const StepCache<Scalar>& /*cache*/, const VectorView<Scalar>& input, const VectorView<Scalar>& state,
               VectorSpan<Scalar> z) const {
    sources(input, state, z);
  }
  /// y_t = h_t, the first H entries of the state the step computed.
  void output(const StepCache<Scalar>& /*cache*/, const VectorView<Scalar>& next, VectorSpan<Scalar> y) const {
    y = next.head(m_hiddenSize);
  }
  /// For an output gradient δ_y (o values): the state gradient δ_s = (∂y/∂s_t)ᵀ δ_y = [δ_y; 0]
  /// and the factor gradient of the output's own parameters, e = 0 (there are none).
  void outputBackward(const StepCache<Scalar>& /*cache*/, const VectorView<Scalar>& outputGradient,
                      VectorSpan<Scalar> stateGradient, VectorSpan<Scalar> factorGradient) const {
    stateGradient.setZero();
    stateGradient.head(m_hiddenSize) = outputGradient;
    factorGradient.setZero();
  }
  /// The values of ∂y/∂s_t, ∂y/∂x_t and of the factors on y, on the output graphs (all ones, none, none).
  void outputJacobian(const StepCache<Scalar>& /*cache*/, std::span<Scalar> stateValues, std::span<Scalar> /*inputValues*/,
                      std::span<Scalar> /*factorValues*/) const {
    std::fill(stateValues.begin(), stateValues.end(), Scalar(1));
  }

  /// @name Jacobian products on a step's factors (docs/math.md §2)
  /// @{

  /// values[i] = D_t at dynamicsGraph() entry entries[i]: only the requested structural nonzeros.
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<const StorageIndex> entries,
                        std::span<Scalar> values) const {
    for (std::size_t i = 0; i < entries.size(); ++i)
      values[i] = dynamicsEntry(cache, m_dynamicsGraph.entryRow(entries[i]), m_dynamicsGraph.column(entries[i]));
  }
  /// values[e] = D_t at every entry e of dynamicsGraph().
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    for (Index row = 0; row < m_dynamicsGraph.rows(); ++row)
      for (Index e = m_dynamicsGraph.rowStart(row); e < m_dynamicsGraph.rowStart(row + 1); ++e)
        values[static_cast<std::size_t>(e)] = dynamicsEntry(cache, row, m_dynamicsGraph.column(e));
  }

  /// values[e] = F_t at every entry e of factorPattern(): ∂s'/∂(preactivation) on its home rows.
  void immediateFactors(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    const Index hidden = m_hiddenSize, rows = gateRows();
    std::size_t e = 0;
    for (Index f = 0; f < 2 * rows; ++f) {
      const Index gate = (f % rows) / hidden;
      for (Index q = 0; q < m_structure.unitStates; ++q)
        if (m_structure.reaches(gate, q)) values[e++] = cache.factor(q, f);
    }
  }
  /// values[e] = the internal coupling at every entry e of internalGraph().
  void internalJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    for (Index row = 0; row < m_internalGraph.rows(); ++row) {
      const Index block = row / m_hiddenSize, unit = row % m_hiddenSize;
      for (Index e = m_internalGraph.rowStart(row); e < m_internalGraph.rowStart(row + 1); ++e)
        values[static_cast<std::size_t>(e)] =
            cache.direct(block * m_structure.unitStates + m_internalGraph.column(e) / m_hiddenSize, unit);
    }
  }
  /// values[e] = ∂s'/∂x at every entry e of inputGraph(): Σ_g φ_q(g·H + u) W_ih[g·H + u, c].
  void inputJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    for (Index row = 0; row < m_inputGraph.rows(); ++row) {
      const Index block = row / m_hiddenSize, unit = row % m_hiddenSize;
      for (Index e = m_inputGraph.rowStart(row); e < m_inputGraph.rowStart(row + 1); ++e) {
        Scalar value = 0;
        for (Index g = 0; g < m_structure.gates; ++g) {
          const Index r = g * m_hiddenSize + unit;
          value += cache.immediateIh(block, r) * m_tensors.weight_ih(r, m_inputGraph.column(e));
        }
        values[static_cast<std::size_t>(e)] = value;
      }
    }
  }
  /// inputGradient = (∂s'/∂x)ᵀ v = W_ihᵀ eˣ, with eˣ the input half of the factor gradient of v.
  void inputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> inputGradient) const {
    const Index hidden = m_hiddenSize, rows = gateRows(), blocks = m_structure.unitStates;
    inputGradient.setZero();
    for (Index r = 0; r < rows; ++r) {
      const Index unit = r % hidden;
      Scalar e = 0;
      for (Index q = 0; q < blocks; ++q) e += cache.immediateIh(q, r) * v[q * hidden + unit];
      if (e != Scalar(0)) inputGradient += e * m_tensors.weight_ih.row(r).transpose();
    }
  }

  /// out = D_t v (forward mode). `out` must not alias `v`.
  void dynamicsProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> out) const {
    const Index hidden = m_hiddenSize, blocks = m_structure.unitStates;
    out.setZero();
    const auto recurrentInput = v.head(hidden);
    for (Index r = 0; r < gateRows(); ++r) {
      const Scalar moved = m_tensors.weight_hh.row(r).dot(recurrentInput);
      const Index unit = r % hidden;
      for (Index q = 0; q < blocks; ++q) out[q * hidden + unit] += cache.immediateHh(q, r) * moved;
    }
    addDirect(cache, v, out, false);
  }

  /// e = F_tᵀ v, the factor gradient of v: e_f = Σ_q factor(q, f) · v[q·H + unit(f)] for the
  /// 2·G·H preactivation columns. With the parameter layout, e gives I_tᵀ v (docs/math.md §2).
  void factorGradient(const StepCache<Scalar>& cache, const VectorView<Scalar>& v,
                             VectorSpan<Scalar> e) const {
    const Index hidden = m_hiddenSize, rows = gateRows(), blocks = m_structure.unitStates;
    for (Index r = 0; r < rows; ++r) {
      const Index unit = r % hidden;
      Scalar input = 0, recurrent = 0;
      for (Index q = 0; q < blocks; ++q) {
        input += cache.immediateIh(q, r) * v[q * hidden + unit];
        recurrent += cache.immediateHh(q, r) * v[q * hidden + unit];
      }
      e[r] = input;
      e[rows + r] = recurrent;
    }
  }

  /// One step of reverse mode (BPTT, docs/math.md §3): previous = D_tᵀ v, and e = F_tᵀ v, the
  /// factor gradient of v (so that I_tᵀ v = layout().addParameterGradient(e, z, ·)).
  void vectorJacobianProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v,
                             VectorSpan<Scalar> previous, VectorSpan<Scalar> e) const {
    factorGradient(cache, v, e);
    previous.setZero();
    previous.head(m_hiddenSize).noalias() = m_tensors.weight_hh.transpose() * e.tail(gateRows());
    addDirect(cache, v, previous, true);
  }

  /// out = I_t u for a θ-ordered u, from the factors and z = [x; 1; h_{t−1}; 1] (forward mode).
  void immediateProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& z, const VectorView<Scalar>& u,
                        VectorSpan<Scalar> out) const {
    out.setZero();
    const Index hidden = m_hiddenSize;
    for (Index j = 0; j < parameterCount(); ++j) {
      const Index f = m_layout.factor(j);
      const Scalar value = z[m_layout.source(j)] * u[j];
      for (Index q = 0; q < m_structure.unitStates; ++q) out[q * hidden + unitOf(j)] += cache.factor(q, f) * value;
    }
  }
  /// @}

  /// @name Configuration: what fixes the cell's equations besides θ (checkpoints)
  /// @{

  /// Writes `<prefix>gates` and `<prefix>unit_states`.
  void saveConfiguration(NpzArchive& archive, const std::string& prefix) const {
    putScalar<std::int64_t>(archive, prefix + "gates", m_structure.gates);
    putScalar<std::int64_t>(archive, prefix + "unit_states", m_structure.unitStates);
  }
  /// Throws FormatError naming the array unless what saveConfiguration() wrote is this cell's.
  void checkConfiguration(const NpzArchive& archive, const std::string& prefix) const {
    readScalar<std::int64_t>(archive, prefix + "gates", m_structure.gates, m_structure.gates);
    readScalar<std::int64_t>(archive, prefix + "unit_states", m_structure.unitStates, m_structure.unitStates);
  }
  /// @}

  /// @name Gated cells' parameters by gate and unit
  /// @{

  /// The gate block of parameter j.
  Index gateOf(Index j) const { return (m_layout.factor(j) % gateRows()) / m_hiddenSize; }
  /// The home unit of parameter j (docs/math.md §2).
  Index unitOf(Index j) const { return m_layout.factor(j) % m_hiddenSize; }
  /// @}

protected:
  /// Draws the masks (options' densities and sharing), then PyTorch's initialisation:
  /// every tensor uniform in ±1/√H, masked weights 0.
  CellBase(Index inputSize, Index hiddenSize, CellStructure structure, const CellOptions& options)
      : m_inputSize(inputSize), m_hiddenSize(hiddenSize), m_structure(std::move(structure)) {
    if (inputSize < 1) detail::fail<ShapeError>("inputSize", "at least 1", inputSize);
    if (hiddenSize < 1) detail::fail<ShapeError>("hiddenSize", "at least 1", hiddenSize);
    m_structure.validate();
    checkSizes();
    validateDensity("inputDensity", options.inputDensity);
    validateDensity("recurrentDensity", options.recurrentDensity);
    Random random(options.seed);
    const Index gates = m_structure.gates;
    m_maskIh = randomMask<Scalar>(gates, hiddenSize, inputSize, options.inputDensity, options.maskSharing, random);
    m_maskHh = randomMask<Scalar>(gates, hiddenSize, hiddenSize, options.recurrentDensity, options.maskSharing, random);
    const double bound = 1.0 / std::sqrt(static_cast<double>(hiddenSize));
    auto draw = [&](Index rows, Index cols) {
      RowMatrix<Scalar> values(rows, cols);
      for (Index r = 0; r < rows; ++r)
        for (Index c = 0; c < cols; ++c) values(r, c) = static_cast<Scalar>(random.uniform(-bound, bound));
      return values;
    };
    m_tensors.weight_ih = draw(gateRows(), inputSize).cwiseProduct(m_maskIh);
    m_tensors.weight_hh = draw(gateRows(), hiddenSize).cwiseProduct(m_maskHh);
    m_tensors.bias_ih = draw(gateRows(), 1);
    m_tensors.bias_hh = draw(gateRows(), 1);
    buildFixedPatterns();
    commitStructure(buildStructure(m_maskIh, m_maskHh));
  }

  /// Throws a ShapeError unless a forward step's arguments have this cell's sizes.
  void checkStep(const VectorView<Scalar>& input, const VectorView<Scalar>& state, const VectorSpan<Scalar>& next,
                 const StepCache<Scalar>& cache) const {
    detail::requireLength("input", input.size(), m_inputSize);
    detail::requireLength("state", state.size(), stateSize());
    detail::requireLength("next state", next.size(), stateSize());
    detail::requireShape("cache.immediateIh", cache.immediateIh.rows(), cache.immediateIh.cols(),
                         m_structure.unitStates, gateRows());
  }

  /// cache.preactivations = [W_ih x + b_ih; W_hh h + b_hh].
  void computePreactivations(const VectorView<Scalar>& input, const VectorView<Scalar>& state,
                             StepCache<Scalar>& cache) const {
    const Index rows = gateRows();
    cache.preactivations.head(rows).noalias() = m_tensors.weight_ih * input;
    cache.preactivations.head(rows) += m_tensors.bias_ih;
    cache.preactivations.tail(rows).noalias() = m_tensors.weight_hh * state.head(m_hiddenSize);
    cache.preactivations.tail(rows) += m_tensors.bias_hh;
  }

  /// The logistic function σ.
  static Scalar sigmoid(Scalar a) { return Scalar(1) / (Scalar(1) + std::exp(-a)); }

private:
  /// D_t[row, column] from the factors (docs/math.md §2): through the recurrent preactivations when
  /// column is an h row, plus the unit-local direct coupling.
  Scalar dynamicsEntry(const StepCache<Scalar>& cache, Index row, Index column) const {
    const Index hidden = m_hiddenSize;
    Index block = 0, unit = row, fromBlock = 0, from = column;
    while (unit >= hidden) unit -= hidden, ++block;
    while (from >= hidden) from -= hidden, ++fromBlock;
    Scalar value = 0;
    if (fromBlock == 0)
      for (Index g = 0; g < m_structure.gates; ++g) {
        const Index r = g * hidden + unit;
        value += cache.immediateHh(block, r) * m_tensors.weight_hh(r, from);
      }
    if (from == unit && m_structure.couples(block, fromBlock))
      value += cache.direct(block * m_structure.unitStates + fromBlock, unit);
    return value;
  }

  /// out += E v (or Eᵀ v) for the unit-local direct couplings E of the step.
  void addDirect(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar>& out,
                 bool transpose) const {
    const Index hidden = m_hiddenSize, blocks = m_structure.unitStates;
    for (Index q = 0; q < blocks; ++q)
      for (Index from = 0; from < blocks; ++from) {
        if (!m_structure.couples(q, from)) continue;
        const auto coupling = cache.direct.row(q * blocks + from).transpose();
        if (transpose)
          out.segment(from * hidden, hidden) += coupling.cwiseProduct(v.segment(q * hidden, hidden));
        else
          out.segment(q * hidden, hidden) += coupling.cwiseProduct(v.segment(from * hidden, hidden));
      }
  }

  template <class Tensor>
  static void validateTensor(const char* name, const Tensor& value, Index rows, Index cols,
                             const RowMatrix<Scalar>* mask) {
    detail::requireShape(name, value.rows(), value.cols(), rows, cols);
    if (!value.allFinite()) detail::fail<ValueError>(name, "finite values", "a NaN or infinity");
    if (mask == nullptr) return;
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < cols; ++c)
        if ((*mask)(r, c) == Scalar(0) && value(r, c) != Scalar(0))
          detail::fail<ValueError>(name, "0 at every masked position",
                                   detail::describe(value(r, c)) + " at masked position (" + detail::describe(r) +
                                       ", " + detail::describe(c) + ")");
  }

  /// Throws unless `mask` has the shape rows × cols and every entry is exactly 0 or 1 in its
  /// own scalar type (checked before any conversion to Scalar).
  template <class Mask>
  static void validateMask(const char* name, const Eigen::MatrixBase<Mask>& mask, Index rows, Index cols) {
    using Entry = typename Mask::Scalar;
    detail::requireShape(name, mask.rows(), mask.cols(), rows, cols);
    for (Index r = 0; r < rows; ++r)
      for (Index c = 0; c < cols; ++c) {
        const Entry entry = mask(r, c);
        if (entry == Entry(0) || entry == Entry(1)) continue;
        std::string given;
        if constexpr (std::is_integral_v<Entry>)
          given = detail::describe(static_cast<long long>(entry));
        else
          given = detail::describePrecisely(static_cast<double>(entry));
        detail::fail<ValueError>(name, "entries 0 or 1",
                                 given + " at (" + detail::describe(r) + ", " + detail::describe(c) + ")");
      }
  }

  /// Refuses sizes whose arrays would overflow or exceed snap::maxArrayBytes, before anything
  /// is allocated: what depends on H alone names hiddenSize, the rest inputSize.
  void checkSizes() const {
    const Index hidden = m_hiddenSize, gates = m_structure.gates, blocks = m_structure.unitStates;
    const Index rows = detail::checkedProduct("hiddenSize", gates, hidden);
    detail::requireArray<Scalar>("hiddenSize", blocks, hidden, "state (U·H)");
    detail::requireArray<Scalar>("hiddenSize", detail::checkedProduct("hiddenSize", blocks, blocks), hidden,
                                 "direct couplings (U·U x H)");
    detail::requireArray<Scalar>("hiddenSize", 2 * blocks, rows, "step factors (U x 2·G·H)");
    detail::requireArray<Scalar>("hiddenSize", rows, hidden, "weight_hh (G·H x H)");
    detail::requireArray<Index>("hiddenSize", hidden, hidden, "mask draw (H x H positions)");
    detail::requireArray<Scalar>("inputSize", rows, m_inputSize, "weight_ih (G·H x m)");
    detail::requireArray<Index>("inputSize", hidden, m_inputSize, "mask draw (H x m positions)");
    detail::requireArray<Scalar>("inputSize", detail::checkedSum("inputSize", m_inputSize, hidden + 2), 1,
                                 "sources z = [x; 1; h; 1]");
  }

  /// What the masks determine: the parameter layout and the structural patterns.
  struct MaskStructure {
    ParameterLayout layout;
    SparsityPattern dynamicsGraph, inputGraph;
  };

  /// The tensors of the four gated tensors in layout order (the biases as G·H × 1).
  static CellTensors<Scalar> toCellTensors(const ParameterTensors<Scalar>& tensors) {
    return {tensors[0], tensors[1], tensors[2], tensors[3]};
  }

  /// Layout and graphs of the masks (docs/math.md §2 structure), without changing the cell.
  MaskStructure buildStructure(const RowMatrix<Scalar>& maskIh, const RowMatrix<Scalar>& maskHh) const {
    const Index hidden = m_hiddenSize, blocks = m_structure.unitStates, rows = gateRows(), inputs = m_inputSize;
    // Factors: a (input preactivations) then c (recurrent); sources z = [x; 1; h; 1].
    std::vector<TensorSpec> specs{
        {"weight_ih", rows, inputs, 0, SourceKind::Columns, 0, "mask_ih"},
        {"weight_hh", rows, hidden, rows, SourceKind::Columns, inputs + 1, "mask_hh"},
        {"bias_ih", rows, 1, 0, SourceKind::Constant, inputs},
        {"bias_hh", rows, 1, rows, SourceKind::Constant, inputs + hidden + 1}};
    ParameterLayout layout(std::move(specs), std::vector<const RowMatrix<Scalar>*>{&maskIh, &maskHh, nullptr, nullptr},
                           2 * rows, inputs + hidden + 2);
    std::vector<std::vector<StorageIndex>> dynamics(static_cast<std::size_t>(stateSize()));
    std::vector<std::vector<StorageIndex>> input(static_cast<std::size_t>(stateSize()));
    for (Index q = 0; q < blocks; ++q)
      for (Index unit = 0; unit < hidden; ++unit) {
        const auto row = static_cast<std::size_t>(q * hidden + unit);
        for (Index g = 0; g < m_structure.gates; ++g)
          if (m_structure.reaches(g, q)) {
            for (StorageIndex from : layout.columns(1, g * hidden + unit)) dynamics[row].push_back(from);
            for (StorageIndex from : layout.columns(0, g * hidden + unit)) input[row].push_back(from);
          }
        for (Index from = 0; from < blocks; ++from)
          if (m_structure.couples(q, from)) dynamics[row].push_back(static_cast<StorageIndex>(from * hidden + unit));
      }
    return {std::move(layout), SparsityPattern(stateSize(), std::move(dynamics)), SparsityPattern(inputs, std::move(input))};
  }

  /// The patterns that depend on the structure and sizes only: the factors' home rows, the
  /// internal couplings and the output graphs.
  void buildFixedPatterns() {
    const Index hidden = m_hiddenSize, blocks = m_structure.unitStates, rows = gateRows();
    std::vector<std::vector<StorageIndex>> factorRows(static_cast<std::size_t>(2 * rows));
    for (Index f = 0; f < 2 * rows; ++f)
      for (Index q = 0; q < blocks; ++q)
        if (m_structure.reaches((f % rows) / hidden, q))
          factorRows[static_cast<std::size_t>(f)].push_back(static_cast<StorageIndex>(q * hidden + f % hidden));
    m_factorPattern = SparsityPattern(stateSize(), std::move(factorRows));
    std::vector<std::vector<StorageIndex>> internal(static_cast<std::size_t>(stateSize()));
    for (Index q = 0; q < blocks; ++q)
      for (Index from = 0; from < blocks; ++from)
        if (m_structure.couples(q, from))
          for (Index unit = 0; unit < hidden; ++unit)
            internal[static_cast<std::size_t>(q * hidden + unit)].push_back(static_cast<StorageIndex>(from * hidden + unit));
    m_internalGraph = SparsityPattern(stateSize(), std::move(internal));
    std::vector<std::vector<StorageIndex>> identity(static_cast<std::size_t>(hidden));
    for (Index u = 0; u < hidden; ++u) identity[static_cast<std::size_t>(u)].push_back(static_cast<StorageIndex>(u));
    m_outputStateGraph = SparsityPattern(stateSize(), std::move(identity));
    m_outputInputGraph = SparsityPattern(m_inputSize, std::vector<std::vector<StorageIndex>>(static_cast<std::size_t>(hidden)));
    m_outputFactorPattern = SparsityPattern(hidden, std::vector<std::vector<StorageIndex>>(static_cast<std::size_t>(2 * rows)));
  }

  /// Makes `built` the cell's structure, with a new mask version (engines notice the change).
  void commitStructure(MaskStructure&& built) noexcept {
    m_layout = std::move(built.layout);
    m_dynamicsGraph = std::move(built.dynamicsGraph);
    m_inputGraph = std::move(built.inputGraph);
    m_maskVersion = detail::nextMaskVersion();
  }

  Index m_inputSize;
  Index m_hiddenSize;
  CellStructure m_structure;
  RowMatrix<Scalar> m_maskIh, m_maskHh;
  CellTensors<Scalar> m_tensors;
  ParameterLayout m_layout;
  SparsityPattern m_dynamicsGraph, m_inputGraph;
  SparsityPattern m_factorPattern, m_internalGraph;
  SparsityPattern m_outputStateGraph, m_outputInputGraph, m_outputFactorPattern;
  std::uint64_t m_maskVersion = 0;
};

}  // namespace snap
