#pragma once
/// @file
/// The linear recurrent unit (LRU) of Orvieto et al. 2023, "Resurrecting recurrent neural
/// networks for long sequences" (docs/math.md §1, "LRU"): a complex diagonal recurrence stored as
/// real pairs, whose exact RTRL keeps two influence entries per parameter (Zucchet et al. 2023).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numbers>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "snap/archive/arrays.hpp"
#include "snap/cells/cell_base.hpp"
#include "snap/cells/mask.hpp"
#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {

/// The elementwise function an LRU's output passes through (docs/math.md §1, "LRU").
enum class LRUActivation {
  None,  ///< y = Re(C h) + D ⊙ x, the linear output of the paper
  Tanh,  ///< y = tanh(·)
  GELU,  ///< y = GELU(·) = u Φ(u), the exact (erf) form, as a stack of LRUs uses between layers
};

/// How an LRU is shaped and initialised.
struct LRUOptions {
  /// o, the length of the output y; 0 means the input size m (which the skip D ⊙ x needs).
  Index outputSize = 0;
  /// The ring of the initial eigenvalues: |λ| uniform in area on [rMin, rMax], 0 ≤ rMin < rMax ≤ 1.
  double rMin = 0.0;
  /// The ring's outer radius (see rMin).
  double rMax = 1.0;
  /// Initial phases arg λ uniform in [0, maxPhase), maxPhase > 0.
  double maxPhase = 2 * std::numbers::pi;
  /// Density of the input projection B's mask (the same positions in B_re and B_im), in (0, 1].
  double inputDensity = 1.0;
  /// Adds D ⊙ x to the output (needs o = m).
  bool skip = true;
  /// The output's elementwise function.
  LRUActivation activation = LRUActivation::None;
  /// Seeds the mask, then the parameters.
  std::uint64_t seed = 0;
};

/// h_t = λ ⊙ h_{t−1} + γ ⊙ (B x_t) over N complex units, λ = exp(−exp(ν) + i·exp(θ)),
/// γ = √(1 − |λ|²); y_t = φ(Re(C h_t) + D ⊙ x_t). The state is s = [Re h; Im h] (k = 2N), the
/// parameters the tensors B_re, B_im (N × m, masked), nu_log, theta_log (N), C_re, C_im (o × N)
/// and D (o, with the skip). Each unit's pair (Re h_j, Im h_j) is closed under the recurrence:
/// an entry of B_re reaches Re h_j in one step and Im h_j in the next, so SnAp-2 is exact RTRL
/// at two entries per parameter, while SnAp-1 drops the second.
template <class Scalar_>
class LRU {
public:
  using Scalar = Scalar_;  ///< float or double
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "snap: cells are defined for Scalar = float or double");

  /// An LRU of N = `units` complex units reading inputs of size m = `inputSize`.
  /// @throws ShapeError for sizes below 1, or a skip with an output size other than m
  /// @throws ValueError for a ring, phase or density outside its range
  LRU(Index inputSize, Index units, const LRUOptions& options = {})
      : m_inputSize(inputSize), m_units(units), m_outputSize(options.outputSize == 0 ? inputSize : options.outputSize),
        m_skip(options.skip), m_activation(options.activation) {
    if (inputSize < 1) detail::fail<ShapeError>("inputSize", "at least 1", inputSize);
    if (units < 1) detail::fail<ShapeError>("units", "at least 1", units);
    if (options.outputSize < 0) detail::fail<ShapeError>("LRUOptions::outputSize", "at least 0 (0: the input size)", options.outputSize);
    if (m_skip && m_outputSize != inputSize)
      detail::fail<ShapeError>("LRUOptions::outputSize", "the input size " + detail::describe(inputSize) +
                                                             " with the skip D ⊙ x (or LRUOptions::skip = false)",
                               m_outputSize);
    if (!(options.rMin >= 0.0 && options.rMin < options.rMax && options.rMax <= 1.0))
      detail::fail<ValueError>("LRUOptions::rMin, rMax", "0 <= rMin < rMax <= 1",
                               detail::describe(options.rMin) + ", " + detail::describe(options.rMax));
    if (!(options.maxPhase > 0.0 && std::isfinite(options.maxPhase)))
      detail::fail<ValueError>("LRUOptions::maxPhase", "a phase > 0", options.maxPhase);
    validateDensity("LRUOptions::inputDensity", options.inputDensity);
    if (options.activation != LRUActivation::None && options.activation != LRUActivation::Tanh &&
        options.activation != LRUActivation::GELU)
      detail::fail<ValueError>("LRUOptions::activation", "LRUActivation::None, Tanh or GELU", static_cast<int>(options.activation));
    checkSizes();
    Random random(options.seed);
    m_maskRe = randomMask<Scalar>(1, units, inputSize, options.inputDensity, MaskSharing::Shared, random);
    m_maskIm = m_maskRe;  // a complex entry of B is active or not
    // The ring initialisation of Orvieto et al.: |λ|² uniform in [rMin², rMax²], phase uniform.
    m_nu.resize(units);
    m_theta.resize(units);
    for (Index j = 0; j < units; ++j) {
      double modulusSquared = 0;
      do {
        modulusSquared = random.open() * (options.rMax * options.rMax - options.rMin * options.rMin) + options.rMin * options.rMin;
      } while (!(modulusSquared > 0.0 && modulusSquared < 1.0));
      m_nu[j] = static_cast<Scalar>(std::log(-0.5 * std::log(modulusSquared)));
      m_theta[j] = static_cast<Scalar>(std::log(options.maxPhase * random.open()));
    }
    auto normal = [&](Index rows, Index cols, double deviation) {
      RowMatrix<Scalar> values(rows, cols);
      for (Index r = 0; r < rows; ++r)
        for (Index c = 0; c < cols; ++c) values(r, c) = static_cast<Scalar>(deviation * random.normal());
      return values;
    };
    const double inputDeviation = 1.0 / std::sqrt(2.0 * static_cast<double>(inputSize));
    m_bRe = normal(units, inputSize, inputDeviation).cwiseProduct(m_maskRe);
    m_bIm = normal(units, inputSize, inputDeviation).cwiseProduct(m_maskIm);
    const double outputDeviation = 1.0 / std::sqrt(static_cast<double>(units));
    m_cRe = normal(m_outputSize, units, outputDeviation);
    m_cIm = normal(m_outputSize, units, outputDeviation);
    m_d = m_skip ? Vector<Scalar>(normal(m_outputSize, 1, 1.0)) : Vector<Scalar>();
    buildFixedPatterns();
    commitStructure(buildStructure(m_maskRe, m_maskIm));
  }

  /// m.
  Index inputSize() const { return m_inputSize; }
  /// N, the complex units.
  Index units() const { return m_units; }
  /// k = 2N: [Re h; Im h].
  Index stateSize() const { return 2 * m_units; }
  /// o.
  Index outputSize() const { return m_outputSize; }
  /// p, the number of active parameters.
  Index parameterCount() const { return m_layout.size(); }
  /// Whether the output adds D ⊙ x.
  bool skip() const { return m_skip; }
  /// The output's elementwise function.
  LRUActivation activation() const { return m_activation; }

  /// @name The parameter tensors
  /// @{

  /// B_re, N × m (0 where mask_re is 0).
  const RowMatrix<Scalar>& B_re() const { return m_bRe; }
  /// B_im, N × m (0 where mask_im is 0).
  const RowMatrix<Scalar>& B_im() const { return m_bIm; }
  /// ν, N values: |λ_j| = exp(−exp(ν_j)).
  const Vector<Scalar>& nu_log() const { return m_nu; }
  /// θ, N values: arg λ_j = exp(θ_j).
  const Vector<Scalar>& theta_log() const { return m_theta; }
  /// C_re, o × N.
  const RowMatrix<Scalar>& C_re() const { return m_cRe; }
  /// C_im, o × N.
  const RowMatrix<Scalar>& C_im() const { return m_cIm; }
  /// D (o values; empty without the skip).
  const Vector<Scalar>& D() const { return m_d; }
  /// The 0/1 mask of B_re.
  const RowMatrix<Scalar>& mask_re() const { return m_maskRe; }
  /// The 0/1 mask of B_im.
  const RowMatrix<Scalar>& mask_im() const { return m_maskIm; }
  /// @}

  /// @name Configuration: what fixes the cell's equations besides θ (checkpoints)
  /// @{

  /// Writes `<prefix>units`, `output_size`, `skip` (0/1) and `activation` (0 None, 1 Tanh, 2 GELU).
  void saveConfiguration(NpzArchive& archive, const std::string& prefix) const {
    for (const auto& [name, value] : configuration()) putScalar<std::int64_t>(archive, prefix + name, value);
  }
  /// Throws FormatError naming the array unless what saveConfiguration() wrote is this cell's.
  void checkConfiguration(const NpzArchive& archive, const std::string& prefix) const {
    for (const auto& [name, value] : configuration()) readScalar<std::int64_t>(archive, prefix + name, value, value);
  }
  /// @}

  /// @name Eigenvalues
  /// @{

  /// Re λ_j of the current parameters, λ_j = exp(−exp(ν_j) + i·exp(θ_j)).
  Scalar lambdaRe(Index j) const { return std::exp(-std::exp(m_nu[j])) * std::cos(std::exp(m_theta[j])); }
  /// Im λ_j of the current parameters.
  Scalar lambdaIm(Index j) const { return std::exp(-std::exp(m_nu[j])) * std::sin(std::exp(m_theta[j])); }
  /// @}

  /// θ in the order of layout(): B_re, B_im (active entries, row-major), nu_log, theta_log,
  /// C_re, C_im (row-major), D.
  Vector<Scalar> parameters() const {
    Vector<Scalar> theta(parameterCount());
    parametersInto(theta);
    return theta;
  }
  /// Writes θ into `theta` (of length p), without allocating.
  void parametersInto(VectorSpan<Scalar> theta) const {
    detail::requireLength("parameter vector", theta.size(), parameterCount());
    visitParameters(*this, [&](const Scalar& value, Index j) { theta[j] = value; });
  }
  /// Sets θ; masked entries of B stay 0. Throws if θ has the wrong length or is not finite.
  void setParameters(const VectorView<Scalar>& theta) {
    detail::requireLength("parameters", theta.size(), parameterCount());
    if (!theta.allFinite()) detail::fail<ValueError>("parameters", "finite values", "a NaN or infinity");
    visitParameters(*this, [&](Scalar& value, Index j) { value = theta[j]; });
  }
  /// The tensors of layout() (vectors as n × 1).
  ParameterTensors<Scalar> parameterTensors() const {
    ParameterTensors<Scalar> tensors{m_bRe, m_bIm, m_nu, m_theta, m_cRe, m_cIm};
    if (m_skip) tensors.push_back(m_d);
    return tensors;
  }
  /// Sets the tensors of layout order; each must have its shape, be finite, and be 0 where its
  /// mask is 0 (a snap::Error names it otherwise, and nothing changes).
  void setParameterTensors(const ParameterTensors<Scalar>& tensors) {
    detail::requireLength("parameter tensors", static_cast<Index>(tensors.size()), m_layout.tensorCount());
    for (Index t = 0; t < m_layout.tensorCount(); ++t) {
      const TensorSpec& spec = m_layout.tensor(t);
      const RowMatrix<Scalar>& tensor = tensors[static_cast<std::size_t>(t)];
      detail::requireShape(spec.name, tensor.rows(), tensor.cols(), spec.rows, spec.cols);
      if (!tensor.allFinite()) detail::fail<ValueError>(spec.name, "finite values", "a NaN or infinity");
      const RowMatrix<Scalar>* mask = t == 0 ? &m_maskRe : t == 1 ? &m_maskIm : nullptr;
      if (mask != nullptr)
        for (Index r = 0; r < spec.rows; ++r)
          for (Index c = 0; c < spec.cols; ++c)
            if ((*mask)(r, c) == Scalar(0) && tensor(r, c) != Scalar(0))
              detail::fail<ValueError>(spec.name, "0 at every masked position",
                                       detail::describe(tensor(r, c)) + " at masked position (" + detail::describe(r) +
                                           ", " + detail::describe(c) + ")");
    }
    assign(tensors);
  }
  /// Sets the masks of B_re and B_im (masks[0], masks[1]; 0/1 matrices of N × m, the other
  /// tensors' entries ignored). Newly masked entries become 0, newly unmasked ones start at 0;
  /// the layout and the graphs are rebuilt and maskVersion() changes. On any error nothing changes.
  void setParameterMasks(const std::vector<RowMatrix<Scalar>>& masks) {
    detail::requireLength("parameter masks", static_cast<Index>(masks.size()), m_layout.tensorCount());
    setMasks(masks[0], masks[1]);
  }
  /// Sets the masks of B_re and B_im, as setParameterMasks() does.
  void setMasks(const RowMatrix<Scalar>& maskRe, const RowMatrix<Scalar>& maskIm) {
    for (const auto& [name, mask] : {std::pair{"mask_re", &maskRe}, std::pair{"mask_im", &maskIm}}) {
      detail::requireShape(name, mask->rows(), mask->cols(), m_units, m_inputSize);
      for (Index r = 0; r < m_units; ++r)
        for (Index c = 0; c < m_inputSize; ++c)
          if ((*mask)(r, c) != Scalar(0) && (*mask)(r, c) != Scalar(1))
            detail::fail<ValueError>(name, "entries 0 or 1",
                                     detail::describePrecisely(static_cast<double>((*mask)(r, c))) + " at (" +
                                         detail::describe(r) + ", " + detail::describe(c) + ")");
    }
    MaskStructure built = buildStructure(maskRe, maskIm);
    m_maskRe = maskRe;
    m_maskIm = maskIm;
    m_bRe = m_bRe.cwiseProduct(m_maskRe);
    m_bIm = m_bIm.cwiseProduct(m_maskIm);
    commitStructure(std::move(built));
  }

  /// The order and meaning of θ (docs/math.md §2): factors B_re rows, B_im rows, ν, θ, C_re rows,
  /// C_im rows, D; sources z = [x; 1; Re h_t; Im h_t].
  const ParameterLayout& layout() const { return m_layout; }
  /// D_t's structure: each unit's 2 × 2 rotation-and-decay block.
  const SparsityPattern& dynamicsGraph() const { return m_dynamicsGraph; }
  /// Every coupling of the LRU is inside a unit: e-prop's graph is the dynamics graph.
  const SparsityPattern& internalGraph() const { return m_dynamicsGraph; }
  /// The rows each factor moves: B_re row j Re h_j, B_im row j Im h_j, ν_j and θ_j both; the
  /// output's factors none.
  const SparsityPattern& factorPattern() const { return m_factorPattern; }
  /// ∂s'/∂x: Re h_j and Im h_j read the active inputs of B's row j.
  const SparsityPattern& inputGraph() const { return m_inputGraph; }
  /// ∂y/∂s' (dense: C), ∂y/∂x (D's diagonal), and the output factors' rows of y.
  const SparsityPattern& outputStateGraph() const { return m_outputStateGraph; }
  /// ∂y/∂x's structure: y_b ← x_b with the skip, else empty.
  const SparsityPattern& outputInputGraph() const { return m_outputInputGraph; }
  /// The output rows each factor moves directly: C's rows and D's on y_b.
  const SparsityPattern& outputFactorPattern() const { return m_outputFactorPattern; }
  /// Changes whenever the masks change (unique across cells in the process).
  std::uint64_t maskVersion() const { return m_maskVersion; }

  /// A cache for this cell's steps: values [Re λ, Im λ, γ, ∂h'/∂ν (Re, Im), ∂h'/∂θ (Re, Im),
  /// Re h', Im h'] (N each), then the output's slopes φ' and y (o each).
  StepCache<Scalar> makeCache() const { return StepCache<Scalar>(9 * m_units + 2 * m_outputSize); }

  /// next = [Re h'; Im h'] and the output y, with the step's factors in `cache`.
  void forward(const VectorView<Scalar>& input, const VectorView<Scalar>& state, VectorSpan<Scalar> next,
               StepCache<Scalar>& cache) const {
    detail::requireLength("input", input.size(), m_inputSize);
    detail::requireLength("state", state.size(), stateSize());
    detail::requireLength("next state", next.size(), stateSize());
    detail::requireLength("cache.values", cache.values.size(), 9 * m_units + 2 * m_outputSize);
    const Index n = m_units;
    Scalar* v = cache.values.data();
    for (Index j = 0; j < n; ++j) {
      const Scalar a = std::exp(m_nu[j]), phase = std::exp(m_theta[j]);
      const Scalar modulus = std::exp(-a);
      const Scalar re = modulus * std::cos(phase), im = modulus * std::sin(phase);
      const Scalar gamma = std::sqrt(-std::expm1(Scalar(-2) * a));
      const Scalar uRe = m_bRe.row(j).dot(input), uIm = m_bIm.row(j).dot(input);
      const Scalar hRe = state[j], hIm = state[n + j];
      const Scalar pRe = re * hRe - im * hIm, pIm = im * hRe + re * hIm;  // λ h
      next[j] = pRe + gamma * uRe;
      next[n + j] = pIm + gamma * uIm;
      // ∂λ/∂ν = −a λ, ∂γ/∂ν = |λ|² a / γ, ∂λ/∂θ = i exp(θ) λ (0 where |λ| underflowed to 0).
      const Scalar dGamma = gamma > Scalar(0) ? modulus * modulus * a / gamma : Scalar(0);
      const Scalar scale = modulus > Scalar(0) ? a : Scalar(0), turn = modulus > Scalar(0) ? phase : Scalar(0);
      v[j] = re;
      v[n + j] = im;
      v[2 * n + j] = gamma;
      v[3 * n + j] = -scale * pRe + dGamma * uRe;
      v[4 * n + j] = -scale * pIm + dGamma * uIm;
      v[5 * n + j] = -turn * pIm;
      v[6 * n + j] = turn * pRe;
      v[7 * n + j] = next[j];
      v[8 * n + j] = next[n + j];
    }
    Scalar* slope = v + 9 * n;
    Scalar* y = slope + m_outputSize;
    const auto hRe = next.head(n), hIm = next.segment(n, n);
    for (Index b = 0; b < m_outputSize; ++b) {
      Scalar pre = m_cRe.row(b).dot(hRe) - m_cIm.row(b).dot(hIm);
      if (m_skip) pre += m_d[b] * input[b];
      activate(pre, y[b], slope[b]);
    }
  }

  /// z = [x; 1; Re h'; Im h'].
  void sources(const StepCache<Scalar>& cache, const VectorView<Scalar>& input, const VectorView<Scalar>& /*state*/,
               VectorSpan<Scalar> z) const {
    const Index n = m_units;
    z.head(m_inputSize) = input;
    z[m_inputSize] = Scalar(1);
    z.segment(m_inputSize + 1, 2 * n) = cache.values.segment(7 * n, 2 * n);
  }
  /// y_t.
  void output(const StepCache<Scalar>& cache, const VectorView<Scalar>& /*next*/, VectorSpan<Scalar> y) const {
    y = cache.values.segment(9 * m_units + m_outputSize, m_outputSize);
  }
  /// δ_s = (∂y/∂s')ᵀ δ_y = [C_reᵀ g; −C_imᵀ g] with g = φ' ⊙ δ_y; e = g on the rows of C_re and
  /// D, −g on those of C_im, 0 elsewhere.
  void outputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& outputGradient,
                      VectorSpan<Scalar> stateGradient, VectorSpan<Scalar> factorGradient) const {
    const Index n = m_units, o = m_outputSize;
    const auto slope = cache.values.segment(9 * n, o);
    factorGradient.setZero();
    auto g = factorGradient.segment(4 * n, o);
    g = slope.cwiseProduct(outputGradient);
    factorGradient.segment(4 * n + o, o) = -g;
    if (m_skip) factorGradient.segment(4 * n + 2 * o, o) = g;
    stateGradient.head(n).noalias() = m_cRe.transpose() * g;
    stateGradient.segment(n, n).noalias() = m_cIm.transpose() * (-g);
  }

  /// @name Jacobian products on a step's cache (docs/math.md §2)
  /// @{

  /// values[i] = D_t at dynamicsGraph() entry entries[i].
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<const StorageIndex> entries,
                        std::span<Scalar> values) const {
    for (std::size_t i = 0; i < entries.size(); ++i) values[i] = dynamicsEntry(cache, entries[i]);
  }
  /// values[e] = D_t at every entry of dynamicsGraph(): each unit's λ as a 2 × 2 block.
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    for (Index e = 0; e < m_dynamicsGraph.nonZeros(); ++e) values[static_cast<std::size_t>(e)] = dynamicsEntry(cache, e);
  }
  /// The internal couplings' values: D_t's, as every coupling is internal.
  void internalJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const { dynamicsJacobian(cache, values); }
  /// values[e] = F_t at every entry of factorPattern(): γ for B's rows, ∂h'/∂ν and ∂h'/∂θ (Re, Im).
  void immediateFactors(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    const Index n = m_units;
    const Scalar* v = cache.values.data();
    std::size_t e = 0;
    for (Index j = 0; j < n; ++j) values[e++] = v[2 * n + j];  // B_re row j on Re h_j: γ
    for (Index j = 0; j < n; ++j) values[e++] = v[2 * n + j];  // B_im row j on Im h_j: γ
    for (Index j = 0; j < n; ++j) values[e++] = v[3 * n + j], values[e++] = v[4 * n + j];  // ν_j
    for (Index j = 0; j < n; ++j) values[e++] = v[5 * n + j], values[e++] = v[6 * n + j];  // θ_j
  }
  /// out = D_t v: each unit's pair multiplied by λ_j.
  void dynamicsProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> out) const {
    const Index n = m_units;
    const auto re = cache.values.head(n), im = cache.values.segment(n, n);
    out.head(n) = re.cwiseProduct(v.head(n)) - im.cwiseProduct(v.segment(n, n));
    out.segment(n, n) = im.cwiseProduct(v.head(n)) + re.cwiseProduct(v.segment(n, n));
  }
  /// e = F_tᵀ v.
  void factorGradient(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> e) const {
    const Index n = m_units;
    const auto values = cache.values;
    const auto vRe = v.head(n), vIm = v.segment(n, n);
    e.setZero();
    e.head(n) = values.segment(2 * n, n).cwiseProduct(vRe);
    e.segment(n, n) = values.segment(2 * n, n).cwiseProduct(vIm);
    e.segment(2 * n, n) = values.segment(3 * n, n).cwiseProduct(vRe) + values.segment(4 * n, n).cwiseProduct(vIm);
    e.segment(3 * n, n) = values.segment(5 * n, n).cwiseProduct(vRe) + values.segment(6 * n, n).cwiseProduct(vIm);
  }
  /// previous = D_tᵀ v and e = F_tᵀ v.
  void vectorJacobianProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> previous,
                             VectorSpan<Scalar> e) const {
    const Index n = m_units;
    const auto re = cache.values.head(n), im = cache.values.segment(n, n);
    previous.head(n) = re.cwiseProduct(v.head(n)) + im.cwiseProduct(v.segment(n, n));
    previous.segment(n, n) = re.cwiseProduct(v.segment(n, n)) - im.cwiseProduct(v.head(n));
    factorGradient(cache, v, e);
  }
  /// values on inputGraph(): γ_j B_re[j, c] and γ_j B_im[j, c].
  void inputJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const {
    const Index n = m_units;
    for (Index row = 0; row < 2 * n; ++row) {
      const Index j = row % n;
      const RowMatrix<Scalar>& b = row < n ? m_bRe : m_bIm;
      for (Index e = m_inputGraph.rowStart(row); e < m_inputGraph.rowStart(row + 1); ++e)
        values[static_cast<std::size_t>(e)] = cache.values[2 * n + j] * b(j, m_inputGraph.column(e));
    }
  }
  /// inputGradient = (∂s'/∂x)ᵀ v = B_reᵀ (γ ⊙ v_re) + B_imᵀ (γ ⊙ v_im).
  void inputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> inputGradient) const {
    const Index n = m_units;
    const auto gamma = cache.values.segment(2 * n, n);
    inputGradient.noalias() = m_bRe.transpose() * gamma.cwiseProduct(v.head(n));
    inputGradient.noalias() += m_bIm.transpose() * gamma.cwiseProduct(v.segment(n, n));
  }
  /// Values on the output graphs: φ'_b C_re[b, j] and −φ'_b C_im[b, j]; φ'_b D_b; φ'_b on the rows
  /// of C_re and D, −φ'_b on those of C_im.
  void outputJacobian(const StepCache<Scalar>& cache, std::span<Scalar> stateValues, std::span<Scalar> inputValues,
                      std::span<Scalar> factorValues) const {
    const Index n = m_units, o = m_outputSize;
    const Scalar* slope = cache.values.data() + 9 * n;
    std::size_t e = 0;
    for (Index b = 0; b < o; ++b) {
      for (Index j = 0; j < n; ++j) stateValues[e++] = slope[b] * m_cRe(b, j);
      for (Index j = 0; j < n; ++j) stateValues[e++] = -slope[b] * m_cIm(b, j);
    }
    if (m_skip)
      for (Index b = 0; b < o; ++b) inputValues[static_cast<std::size_t>(b)] = slope[b] * m_d[b];
    e = 0;
    for (Index b = 0; b < o; ++b) factorValues[e++] = slope[b];
    for (Index b = 0; b < o; ++b) factorValues[e++] = -slope[b];
    if (m_skip)
      for (Index b = 0; b < o; ++b) factorValues[e++] = slope[b];
  }
  /// @}

private:
  struct MaskStructure {
    ParameterLayout layout;
    SparsityPattern inputGraph;
  };

  std::vector<std::pair<std::string, std::int64_t>> configuration() const {
    return {{"units", m_units}, {"output_size", m_outputSize}, {"skip", m_skip ? 1 : 0},
            {"activation", static_cast<std::int64_t>(m_activation)}};
  }

  /// y and φ'(pre) of the output's function.
  void activate(Scalar pre, Scalar& y, Scalar& slope) const {
    switch (m_activation) {
      case LRUActivation::None:
        y = pre;
        slope = Scalar(1);
        return;
      case LRUActivation::Tanh:
        y = std::tanh(pre);
        slope = Scalar(1) - y * y;
        return;
      case LRUActivation::GELU: {
        const Scalar cdf = Scalar(0.5) * std::erfc(-pre / std::numbers::sqrt2_v<Scalar>);
        const Scalar density = std::exp(Scalar(-0.5) * pre * pre) / std::sqrt(Scalar(2) * std::numbers::pi_v<Scalar>);
        y = pre * cdf;
        slope = cdf + pre * density;
        return;
      }
    }
  }

  Scalar dynamicsEntry(const StepCache<Scalar>& cache, Index e) const {
    const Index n = m_units, row = m_dynamicsGraph.entryRow(e), column = m_dynamicsGraph.column(e);
    const Index j = row % n;
    const Scalar re = cache.values[j], im = cache.values[n + j];
    if (row < n) return column < n ? re : -im;  // Re h' = Re λ Re h − Im λ Im h
    return column < n ? im : re;                // Im h' = Im λ Re h + Re λ Im h
  }

  /// visit(parameter, j) for every parameter of `self` (an LRU, const or not) in θ order.
  template <class Self, class Visit>
  static void visitParameters(Self& self, Visit&& visit) {
    Index j = 0;
    auto matrix = [&](Index t, auto& values) {
      for (Index r = 0; r < values.rows(); ++r)
        for (StorageIndex c : self.m_layout.columns(t, r)) visit(values(r, c), j++);
    };
    auto vector = [&](auto& values) {
      for (Index r = 0; r < values.size(); ++r) visit(values[r], j++);
    };
    matrix(0, self.m_bRe);
    matrix(1, self.m_bIm);
    vector(self.m_nu);
    vector(self.m_theta);
    matrix(4, self.m_cRe);
    matrix(5, self.m_cIm);
    if (self.m_skip) vector(self.m_d);
  }

  void assign(const ParameterTensors<Scalar>& tensors) {
    m_bRe = tensors[0];
    m_bIm = tensors[1];
    m_nu = tensors[2].col(0);
    m_theta = tensors[3].col(0);
    m_cRe = tensors[4];
    m_cIm = tensors[5];
    if (m_skip) m_d = tensors[6].col(0);
  }

  void checkSizes() const {
    detail::requireArray<Scalar>("units", detail::checkedProduct("units", 9, m_units), 1, "step cache (9 N)");
    detail::requireArray<Scalar>("inputSize", m_units, m_inputSize, "B_re (N x m)");
    detail::requireArray<Index>("inputSize", m_units, m_inputSize, "mask draw (N x m positions)");
    detail::requireArray<Scalar>("outputSize", m_outputSize, m_units, "C_re (o x N)");
  }

  /// The layout of masks for B_re and B_im, and the input graph, without changing the cell.
  MaskStructure buildStructure(const RowMatrix<Scalar>& maskRe, const RowMatrix<Scalar>& maskIm) const {
    const Index n = m_units, m = m_inputSize, o = m_outputSize;
    std::vector<TensorSpec> specs{{"B_re", n, m, 0, SourceKind::Columns, 0, "mask_re"},
                                  {"B_im", n, m, n, SourceKind::Columns, 0, "mask_im"},
                                  {"nu_log", n, 1, 2 * n, SourceKind::Constant, m},
                                  {"theta_log", n, 1, 3 * n, SourceKind::Constant, m},
                                  {"C_re", o, n, 4 * n, SourceKind::Columns, m + 1},
                                  {"C_im", o, n, 4 * n + o, SourceKind::Columns, m + 1 + n}};
    if (m_skip) specs.push_back({"D", o, 1, 4 * n + 2 * o, SourceKind::Diagonal, 0});
    std::vector<const RowMatrix<Scalar>*> masks{&maskRe, &maskIm};
    ParameterLayout layout(std::move(specs), masks, factorCount(), m + 1 + 2 * n);
    std::vector<std::vector<StorageIndex>> input(static_cast<std::size_t>(2 * n));
    for (Index j = 0; j < n; ++j) {
      for (StorageIndex c : layout.columns(0, j)) input[static_cast<std::size_t>(j)].push_back(c);
      for (StorageIndex c : layout.columns(1, j)) input[static_cast<std::size_t>(n + j)].push_back(c);
    }
    return {std::move(layout), SparsityPattern(m, std::move(input))};
  }

  Index factorCount() const { return 4 * m_units + (m_skip ? 3 : 2) * m_outputSize; }

  /// The patterns fixed by the sizes alone.
  void buildFixedPatterns() {
    const Index n = m_units, o = m_outputSize, factors = factorCount();
    std::vector<std::vector<StorageIndex>> dynamics(static_cast<std::size_t>(2 * n));
    std::vector<std::vector<StorageIndex>> rows(static_cast<std::size_t>(factors));
    for (Index j = 0; j < n; ++j) {
      const auto re = static_cast<StorageIndex>(j), im = static_cast<StorageIndex>(n + j);
      dynamics[static_cast<std::size_t>(j)] = {re, im};
      dynamics[static_cast<std::size_t>(n + j)] = {re, im};
      rows[static_cast<std::size_t>(j)] = {re};
      rows[static_cast<std::size_t>(n + j)] = {im};
      rows[static_cast<std::size_t>(2 * n + j)] = {re, im};
      rows[static_cast<std::size_t>(3 * n + j)] = {re, im};
    }
    m_dynamicsGraph = SparsityPattern(2 * n, std::move(dynamics));
    m_factorPattern = SparsityPattern(2 * n, std::move(rows));
    std::vector<std::vector<StorageIndex>> outputState(static_cast<std::size_t>(o)), outputInput(static_cast<std::size_t>(o));
    std::vector<std::vector<StorageIndex>> outputFactors(static_cast<std::size_t>(factors));
    for (Index b = 0; b < o; ++b) {
      for (Index r = 0; r < 2 * n; ++r) outputState[static_cast<std::size_t>(b)].push_back(static_cast<StorageIndex>(r));
      if (m_skip) {
        outputInput[static_cast<std::size_t>(b)].push_back(static_cast<StorageIndex>(b));
        outputFactors[static_cast<std::size_t>(4 * n + 2 * o + b)].push_back(static_cast<StorageIndex>(b));
      }
      outputFactors[static_cast<std::size_t>(4 * n + b)].push_back(static_cast<StorageIndex>(b));
      outputFactors[static_cast<std::size_t>(4 * n + o + b)].push_back(static_cast<StorageIndex>(b));
    }
    m_outputStateGraph = SparsityPattern(2 * n, std::move(outputState));
    m_outputInputGraph = SparsityPattern(m_inputSize, std::move(outputInput));
    m_outputFactorPattern = SparsityPattern(o, std::move(outputFactors));
  }

  void commitStructure(MaskStructure&& built) noexcept {
    m_layout = std::move(built.layout);
    m_inputGraph = std::move(built.inputGraph);
    m_maskVersion = detail::nextMaskVersion();
  }

  Index m_inputSize, m_units, m_outputSize;
  bool m_skip;
  LRUActivation m_activation;
  RowMatrix<Scalar> m_maskRe, m_maskIm;  ///< the masks of B_re and B_im
  RowMatrix<Scalar> m_bRe, m_bIm, m_cRe, m_cIm;
  Vector<Scalar> m_nu, m_theta, m_d;
  ParameterLayout m_layout;
  SparsityPattern m_dynamicsGraph, m_factorPattern, m_inputGraph;
  SparsityPattern m_outputStateGraph, m_outputInputGraph, m_outputFactorPattern;
  std::uint64_t m_maskVersion = 0;
};

/// The linear recurrent unit.
template <class Scalar>
struct CellTypeName<LRU<Scalar>> {
  static constexpr std::string_view value = "lru";  ///< the stored name
};

}  // namespace snap
