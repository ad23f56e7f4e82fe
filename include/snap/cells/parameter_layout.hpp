#pragma once
/// @file
/// The parameter vector θ of a masked cell (docs/math.md §1): which weights are parameters, where each
/// sits in θ, and what factor and source form its column of the immediate Jacobian (docs/math.md §2).

#include <cstddef>
#include <limits>
#include <span>
#include <type_traits>
#include <vector>

#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// The order of θ and what each parameter is.
///
/// θ lists the active (unmasked) entries of weight_ih in row-major order, then those of
/// weight_hh, then bias_ih and bias_hh: PyTorch's flattening order with masked weights left out.
/// Column j of I_t is factor(j) (a column of the step's immediate factors: r < G·H for the
/// input preactivation of row r, G·H + r for its recurrent preactivation) times the source
/// z[source(j)], where z = [x; 1; h_{t−1}; 1] (sourceSize() = m + H + 2): each weight row's
/// sources and its bias's are consecutive, as the kernels prefer.
class ParameterLayout {
public:
  ParameterLayout() = default;

  /// The layout of the parameters left active by the two masks (nonzero entries are active).
  template <class Scalar>
  ParameterLayout(const RowMatrix<Scalar>& maskIh, const RowMatrix<Scalar>& maskHh)
      : m_inputSize(maskIh.cols()), m_hiddenSize(maskHh.cols()), m_gateRows(maskIh.rows()) {
    const Index rows = m_gateRows;
    auto collect = [&](const RowMatrix<Scalar>& mask, std::vector<StorageIndex>& starts,
                       std::vector<StorageIndex>& columns) {
      starts.assign(1, 0);
      for (Index r = 0; r < rows; ++r) {
        for (Index c = 0; c < mask.cols(); ++c)
          if (mask(r, c) != Scalar(0)) columns.push_back(static_cast<StorageIndex>(c));
        starts.push_back(static_cast<StorageIndex>(columns.size()));
      }
    };
    collect(maskIh, m_startIh, m_columnsIh);
    collect(maskHh, m_startHh, m_columnsHh);
    const std::size_t count = m_columnsIh.size() + m_columnsHh.size() + 2 * static_cast<std::size_t>(rows);
    if (count > static_cast<std::size_t>(std::numeric_limits<StorageIndex>::max()))
      detail::fail<ShapeError>("parameter count", "fewer than 2^31 parameters", count);
    m_factor.reserve(count);
    m_source.reserve(count);
    for (Index r = 0; r < rows; ++r)
      for (StorageIndex c : columnsIh(r)) push(r, c);
    for (Index r = 0; r < rows; ++r)
      for (StorageIndex c : columnsHh(r)) push(rows + r, recurrentSource() + c);
    for (Index r = 0; r < rows; ++r) push(r, inputBiasSource());
    for (Index r = 0; r < rows; ++r) push(rows + r, recurrentBiasSource());
  }

  /// p, the number of parameters.
  Index size() const { return static_cast<Index>(m_factor.size()); }
  /// m.
  Index inputSize() const { return m_inputSize; }
  /// H.
  Index hiddenSize() const { return m_hiddenSize; }
  /// G·H, the rows of the weight tensors.
  Index gateRows() const { return m_gateRows; }
  /// m + H + 2, the length of the source vector z = [x; 1; h; 1].
  Index sourceSize() const { return m_inputSize + m_hiddenSize + 2; }
  /// Position in z of bias_ih's 1.
  Index inputBiasSource() const { return m_inputSize; }
  /// Position in z of h_0.
  Index recurrentSource() const { return m_inputSize + 1; }
  /// Position in z of bias_hh's 1.
  Index recurrentBiasSource() const { return m_inputSize + m_hiddenSize + 1; }

  /// Active weights of weight_ih.
  Index weightIhCount() const { return static_cast<Index>(m_columnsIh.size()); }
  /// Active weights of weight_hh.
  Index weightHhCount() const { return static_cast<Index>(m_columnsHh.size()); }

  /// Preactivation column of parameter j: r for weight_ih/bias_ih row r, G·H + r for weight_hh/bias_hh.
  Index factor(Index j) const { return m_factor[static_cast<std::size_t>(j)]; }
  /// Index into z = [x; 1; h; 1] of parameter j's source.
  Index source(Index j) const { return m_source[static_cast<std::size_t>(j)]; }
  /// Weight row r (= g·H + u) of parameter j.
  Index row(Index j) const { return factor(j) % m_gateRows; }
  /// Gate block of parameter j.
  Index gate(Index j) const { return row(j) / m_hiddenSize; }
  /// Home unit of parameter j (docs/math.md §2).
  Index unit(Index j) const { return row(j) % m_hiddenSize; }

  /// The active columns of row r of weight_ih.
  std::span<const StorageIndex> columnsIh(Index r) const { return slice(m_startIh, m_columnsIh, r); }
  /// The active columns of row r of weight_hh.
  std::span<const StorageIndex> columnsHh(Index r) const { return slice(m_startHh, m_columnsHh, r); }
  /// Position in θ of the first active weight of row r of weight_ih.
  Index offsetIh(Index r) const { return m_startIh[static_cast<std::size_t>(r)]; }
  /// Position in θ of the first active weight of row r of weight_hh.
  Index offsetHh(Index r) const { return weightIhCount() + m_startHh[static_cast<std::size_t>(r)]; }
  /// Position in θ of bias_ih[0].
  Index offsetBiasIh() const { return weightIhCount() + weightHhCount(); }
  /// Position in θ of bias_hh[0].
  Index offsetBiasHh() const { return offsetBiasIh() + m_gateRows; }

  /// factor(j) for every parameter.
  const std::vector<StorageIndex>& factors() const { return m_factor; }
  /// source(j) for every parameter.
  const std::vector<StorageIndex>& sources() const { return m_source; }

  /// θ from the four tensors (masked entries are not read).
  template <class Scalar>
  Vector<Scalar> flatten(const CellTensors<Scalar>& tensors) const {
    Vector<Scalar> theta(size());
    flattenInto(tensors, theta);
    return theta;
  }

  /// Writes θ of the four tensors into `theta` (of length size()), without allocating.
  template <class Scalar>
  void flattenInto(const CellTensors<Scalar>& tensors, std::type_identity_t<VectorSpan<Scalar>> theta) const {
    detail::requireLength("parameter vector", theta.size(), size());
    Index j = 0;
    for (Index r = 0; r < m_gateRows; ++r)
      for (StorageIndex c : columnsIh(r)) theta[j++] = tensors.weight_ih(r, c);
    for (Index r = 0; r < m_gateRows; ++r)
      for (StorageIndex c : columnsHh(r)) theta[j++] = tensors.weight_hh(r, c);
    theta.segment(j, m_gateRows) = tensors.bias_ih;
    theta.segment(j + m_gateRows, m_gateRows) = tensors.bias_hh;
  }

  /// Writes θ into the four tensors, which must already have their shapes; masked entries
  /// are left as they are.
  template <class Scalar>
  void unflattenInto(const std::type_identity_t<VectorView<Scalar>>& theta, CellTensors<Scalar>& tensors) const {
    detail::requireLength("parameter vector", theta.size(), size());
    Index j = 0;
    for (Index r = 0; r < m_gateRows; ++r)
      for (StorageIndex c : columnsIh(r)) tensors.weight_ih(r, c) = theta[j++];
    for (Index r = 0; r < m_gateRows; ++r)
      for (StorageIndex c : columnsHh(r)) tensors.weight_hh(r, c) = theta[j++];
    tensors.bias_ih = theta.segment(j, m_gateRows);
    tensors.bias_hh = theta.segment(j + m_gateRows, m_gateRows);
  }

  /// The four tensors of θ, with exact zeros at masked positions.
  template <class Derived>
  CellTensors<typename Derived::Scalar> unflatten(const Eigen::MatrixBase<Derived>& theta) const {
    using Scalar = typename Derived::Scalar;
    CellTensors<Scalar> tensors{RowMatrix<Scalar>::Zero(m_gateRows, m_inputSize),
                                RowMatrix<Scalar>::Zero(m_gateRows, m_hiddenSize),
                                Vector<Scalar>::Zero(m_gateRows), Vector<Scalar>::Zero(m_gateRows)};
    unflattenInto<Scalar>(theta, tensors);
    return tensors;
  }

  /// out[j] = keep · out[j] + preactivationGradient[factor(j)] · z[source(j)]: the factored
  /// I_tᵀ v of docs/math.md §2 added to `out` (keep = 1), or to a scaled `out`, given the
  /// preactivation gradient of v (CellBase::preactivationGradient).
  template <class Scalar>
  void addParameterGradient(const std::type_identity_t<VectorView<Scalar>>& preactivationGradient,
                            const std::type_identity_t<VectorView<Scalar>>& z,
                            std::type_identity_t<VectorSpan<Scalar>> out, Scalar keep = Scalar(1)) const {
    const Scalar* e = preactivationGradient.data();
    const Scalar* x = z.data();
    Scalar* g = out.data();
    const Index rows = m_gateRows;
    // One weight row and its bias: a contiguous axpy when the row is dense, a gather otherwise.
    auto addRow = [&](Index& j, Index bias, Scalar er, std::span<const StorageIndex> columns, const Scalar* sources,
                      Index width) {
      const auto count = static_cast<Index>(columns.size());
      if (count == width) {
        Eigen::Map<Vector<Scalar>> target(g + j, count);
        target = keep * target + er * Eigen::Map<const Vector<Scalar>>(sources, count);
      } else {
        for (Index i = 0; i < count; ++i) g[j + i] = keep * g[j + i] + er * sources[columns[static_cast<std::size_t>(i)]];
      }
      j += count;
      g[bias] = keep * g[bias] + er;  // the bias's source is 1
    };
    Index j = 0;
    for (Index r = 0; r < rows; ++r) addRow(j, offsetBiasIh() + r, e[r], columnsIh(r), x, m_inputSize);
    for (Index r = 0; r < rows; ++r)
      addRow(j, offsetBiasHh() + r, e[rows + r], columnsHh(r), x + recurrentSource(), m_hiddenSize);
  }

  /// ‖I_tᵀ v‖² from the preactivation gradient, without forming I_tᵀ v:
  /// Σ_rows e_r² (Σ_{active c} z_c² + 1).
  template <class Scalar>
  Scalar squaredNormOfParameterGradient(const std::type_identity_t<VectorView<Scalar>>& preactivationGradient,
                                        const std::type_identity_t<VectorView<Scalar>>& z) const {
    const Index rows = m_gateRows;
    const auto input = z.head(m_inputSize), recurrent = z.segment(recurrentSource(), m_hiddenSize);
    const Scalar inputSquares = input.squaredNorm(), recurrentSquares = recurrent.squaredNorm();
    auto rowSquares = [](std::span<const StorageIndex> columns, const auto& sources, Scalar all) {
      if (static_cast<Index>(columns.size()) == sources.size()) return all + Scalar(1);
      Scalar sum = 1;
      for (StorageIndex c : columns) sum += sources[c] * sources[c];
      return sum;
    };
    Scalar total = 0;
    for (Index r = 0; r < rows; ++r) {
      const Scalar ei = preactivationGradient[r], eh = preactivationGradient[rows + r];
      total += ei * ei * rowSquares(columnsIh(r), input, inputSquares);
      total += eh * eh * rowSquares(columnsHh(r), recurrent, recurrentSquares);
    }
    return total;
  }

  /// Bytes held by the index arrays.
  std::size_t bytes() const {
    return (m_startIh.size() + m_columnsIh.size() + m_startHh.size() + m_columnsHh.size() +
            m_factor.size() + m_source.size()) *
           sizeof(StorageIndex);
  }

private:
  static std::span<const StorageIndex> slice(const std::vector<StorageIndex>& starts,
                                             const std::vector<StorageIndex>& columns, Index r) {
    const auto begin = starts[static_cast<std::size_t>(r)];
    return {columns.data() + begin, static_cast<std::size_t>(starts[static_cast<std::size_t>(r) + 1] - begin)};
  }
  void push(Index factor, Index source) {
    m_factor.push_back(static_cast<StorageIndex>(factor));
    m_source.push_back(static_cast<StorageIndex>(source));
  }

  Index m_inputSize = 0;
  Index m_hiddenSize = 0;
  Index m_gateRows = 0;
  std::vector<StorageIndex> m_startIh{0}, m_columnsIh, m_startHh{0}, m_columnsHh;
  std::vector<StorageIndex> m_factor, m_source;
};

}  // namespace snap
