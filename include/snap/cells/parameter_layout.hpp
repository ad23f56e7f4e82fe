#pragma once
/// @file
/// The parameter vector θ of a cell (docs/math.md §1–§2): the cell's parameter tensors, which
/// of their entries are parameters (masks), where each sits in θ, and the factor and source
/// that form its column of the immediate Jacobian. Every engine works from this alone, so a cell
/// of any kind (gated, LRU, a stack of layers) describes its parameters the same way.

#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// What multiplies the entries of a parameter tensor in the immediate Jacobian.
enum class SourceKind {
  Columns,   ///< entry (r, c) multiplies z[sourceOffset + c] (a weight matrix)
  Constant,  ///< every entry multiplies z[sourceOffset], a 1 (a bias)
  Diagonal,  ///< entry (r, 0) multiplies z[sourceOffset + r] (an elementwise weight)
};

/// One parameter tensor of a cell: its name (as saved in weights files and checkpoints), its
/// shape, the factor of its row r (factorOffset + r), its entries' sources and, for a tensor with
/// a 0/1 mask (SourceKind::Columns only), the mask's name. A vector is a tensor of one column.
struct TensorSpec {
  std::string name;                         ///< its name in weights files and checkpoints
  Index rows = 0;                           ///< its rows
  Index cols = 1;                           ///< its columns (1 for a vector)
  Index factorOffset = 0;                   ///< the factor of row 0; row r's is factorOffset + r
  SourceKind source = SourceKind::Columns;  ///< what its entries multiply
  Index sourceOffset = 0;                   ///< the first source its entries multiply
  std::string maskName = {};                ///< the name of its 0/1 mask; empty: every entry is active

  /// Whether the tensor has a mask.
  bool isMaskable() const { return !maskName.empty(); }
};

/// A cell's parameter tensors, in the order of ParameterLayout::tensor(t); vectors are n × 1.
template <class Scalar>
using ParameterTensors = std::vector<RowMatrix<Scalar>>;

/// The order and meaning of θ.
///
/// θ lists the tensors in order, each by its active entries in row-major order (a masked entry
/// of a maskable tensor is not a parameter). Parameter j enters one step through one *factor*,
/// factor(j) = factorOffset + row of its tensor, times one *source*, z[source(j)], where z is the
/// step's source vector (sourceSize() values, the cell's sources()): column j of the immediate
/// Jacobian I_t is (column factor(j) of the step's factor matrix F_t) · z[source(j)]
/// (docs/math.md §2). For the gated cells, the factors are the 2·G·H preactivations and
/// z = [x; 1; h_{t−1}; 1].
class ParameterLayout {
public:
  ParameterLayout() = default;

  /// The layout of `specs`, with masks[t] the 0/1 mask of tensor t (nonzero = active; a null
  /// pointer, or a tensor that is not maskable, keeps every entry). `factorCount` and
  /// `sourceSize` bound the factors and sources the tensors use.
  template <class Scalar>
  ParameterLayout(std::vector<TensorSpec> specs, const std::vector<const RowMatrix<Scalar>*>& masks, Index factorCount,
                  Index sourceSize)
      : m_specs(std::move(specs)), m_factorCount(factorCount), m_sourceSize(sourceSize) {
    std::size_t count = 0;
    m_tensors.resize(m_specs.size());
    for (std::size_t t = 0; t < m_specs.size(); ++t) {
      const TensorSpec& spec = m_specs[t];
      Tensor& tensor = m_tensors[t];
      const RowMatrix<Scalar>* mask = t < masks.size() && spec.isMaskable() ? masks[t] : nullptr;
      if (spec.rows < 0 || spec.cols < 1 || (spec.source != SourceKind::Columns && spec.cols != 1))
        detail::fail<ShapeError>("TensorSpec " + spec.name, "rows >= 0 and one column unless SourceKind::Columns",
                                 detail::describe(spec.rows) + " x " + detail::describe(spec.cols));
      if (spec.factorOffset < 0 || spec.factorOffset + spec.rows > factorCount)
        detail::fail<ShapeError>("TensorSpec " + spec.name + " factors", "within [0, " + detail::describe(factorCount) + ")",
                                 spec.factorOffset + spec.rows);
      const Index lastSource = spec.sourceOffset + (spec.source == SourceKind::Columns    ? spec.cols
                                                    : spec.source == SourceKind::Diagonal ? spec.rows
                                                                                          : 1);
      if (spec.sourceOffset < 0 || lastSource > sourceSize)
        detail::fail<ShapeError>("TensorSpec " + spec.name + " sources", "within [0, " + detail::describe(sourceSize) + ")",
                                 lastSource);
      if (mask != nullptr) detail::requireShape(spec.name + " mask", mask->rows(), mask->cols(), spec.rows, spec.cols);
      tensor.offset = static_cast<Index>(count);
      tensor.rowStart.assign(1, 0);
      for (Index r = 0; r < spec.rows; ++r) {
        for (Index c = 0; c < spec.cols; ++c)
          if (mask == nullptr || (*mask)(r, c) != Scalar(0)) tensor.columns.push_back(static_cast<StorageIndex>(c));
        tensor.rowStart.push_back(static_cast<StorageIndex>(tensor.columns.size()));
      }
      count += tensor.columns.size();
      if (count > static_cast<std::size_t>(std::numeric_limits<StorageIndex>::max()))
        detail::fail<ShapeError>("parameter count", "fewer than 2^31 parameters", count);
    }
    m_factor.reserve(count);
    m_source.reserve(count);
    m_tensorOf.reserve(count);
    for (std::size_t t = 0; t < m_specs.size(); ++t) {
      const TensorSpec& spec = m_specs[t];
      for (Index r = 0; r < spec.rows; ++r)
        for (StorageIndex c : columns(static_cast<Index>(t), r)) {
          m_factor.push_back(static_cast<StorageIndex>(spec.factorOffset + r));
          m_source.push_back(static_cast<StorageIndex>(sourceOf(spec, r, c)));
          m_tensorOf.push_back(static_cast<StorageIndex>(t));
        }
    }
  }

  /// p, the number of parameters.
  Index size() const { return static_cast<Index>(m_factor.size()); }
  /// The number of factors (columns of the step's factor matrix).
  Index factorCount() const { return m_factorCount; }
  /// The length of the source vector z.
  Index sourceSize() const { return m_sourceSize; }

  /// The number of tensors.
  Index tensorCount() const { return static_cast<Index>(m_specs.size()); }
  /// Tensor t's name, shape, factors and sources.
  const TensorSpec& tensor(Index t) const { return m_specs[static_cast<std::size_t>(t)]; }
  /// The index of the tensor called `name`, or −1.
  Index findTensor(std::string_view name) const {
    for (std::size_t t = 0; t < m_specs.size(); ++t)
      if (m_specs[t].name == name) return static_cast<Index>(t);
    return -1;
  }
  /// Position in θ of tensor t's first parameter.
  Index tensorOffset(Index t) const { return m_tensors[static_cast<std::size_t>(t)].offset; }
  /// The active entries (parameters) of tensor t.
  Index tensorSize(Index t) const { return static_cast<Index>(m_tensors[static_cast<std::size_t>(t)].columns.size()); }
  /// The active columns of row r of tensor t.
  std::span<const StorageIndex> columns(Index t, Index r) const {
    const Tensor& tensor = m_tensors[static_cast<std::size_t>(t)];
    const auto begin = tensor.rowStart[static_cast<std::size_t>(r)];
    return {tensor.columns.data() + begin, static_cast<std::size_t>(tensor.rowStart[static_cast<std::size_t>(r) + 1] - begin)};
  }
  /// Position in θ of the first active entry of row r of tensor t.
  Index offset(Index t, Index r) const {
    const Tensor& tensor = m_tensors[static_cast<std::size_t>(t)];
    return tensor.offset + tensor.rowStart[static_cast<std::size_t>(r)];
  }
  /// True when every entry of tensor t is a parameter.
  bool isDense(Index t) const { return tensorSize(t) == tensor(t).rows * tensor(t).cols; }

  /// The factor of parameter j (the row of its tensor plus the tensor's factorOffset).
  Index factor(Index j) const { return m_factor[static_cast<std::size_t>(j)]; }
  /// Index into z of parameter j's source.
  Index source(Index j) const { return m_source[static_cast<std::size_t>(j)]; }
  /// The tensor of parameter j.
  Index tensorOf(Index j) const { return m_tensorOf[static_cast<std::size_t>(j)]; }
  /// The row of parameter j in its tensor.
  Index rowOf(Index j) const { return factor(j) - tensor(tensorOf(j)).factorOffset; }

  /// factor(j) for every parameter.
  const std::vector<StorageIndex>& factors() const { return m_factor; }
  /// source(j) for every parameter.
  const std::vector<StorageIndex>& sources() const { return m_source; }

  /// Zero tensors of the layout's shapes.
  template <class Scalar>
  ParameterTensors<Scalar> zeroTensors() const {
    ParameterTensors<Scalar> tensors;
    for (const TensorSpec& spec : m_specs) tensors.push_back(RowMatrix<Scalar>::Zero(spec.rows, spec.cols));
    return tensors;
  }

  /// θ from the tensors (masked entries are not read).
  template <class Scalar>
  Vector<Scalar> flatten(const ParameterTensors<Scalar>& tensors) const {
    Vector<Scalar> theta(size());
    flattenInto(tensors, theta);
    return theta;
  }
  /// Writes θ of the tensors into `theta` (of length size()), without allocating.
  template <class Scalar>
  void flattenInto(const ParameterTensors<Scalar>& tensors, std::type_identity_t<VectorSpan<Scalar>> theta) const {
    detail::requireLength("parameter vector", theta.size(), size());
    requireTensors(tensors);
    Index j = 0;
    for (Index t = 0; t < tensorCount(); ++t)
      for (Index r = 0; r < tensor(t).rows; ++r)
        for (StorageIndex c : columns(t, r)) theta[j++] = tensors[static_cast<std::size_t>(t)](r, c);
  }
  /// Writes θ into the tensors, which must already have their shapes; masked entries are left
  /// as they are.
  template <class Scalar>
  void unflattenInto(const std::type_identity_t<VectorView<Scalar>>& theta, ParameterTensors<Scalar>& tensors) const {
    detail::requireLength("parameter vector", theta.size(), size());
    requireTensors(tensors);
    Index j = 0;
    for (Index t = 0; t < tensorCount(); ++t)
      for (Index r = 0; r < tensor(t).rows; ++r)
        for (StorageIndex c : columns(t, r)) tensors[static_cast<std::size_t>(t)](r, c) = theta[j++];
  }
  /// The tensors of θ, with exact zeros at masked positions.
  template <class Derived>
  ParameterTensors<typename Derived::Scalar> unflatten(const Eigen::MatrixBase<Derived>& theta) const {
    using Scalar = typename Derived::Scalar;
    ParameterTensors<Scalar> tensors = zeroTensors<Scalar>();
    unflattenInto<Scalar>(theta, tensors);
    return tensors;
  }
  /// Tensor t's 0/1 mask (all ones for a tensor without one).
  RowMatrix<std::uint8_t> mask(Index t) const {
    const TensorSpec& spec = tensor(t);
    RowMatrix<std::uint8_t> mask = RowMatrix<std::uint8_t>::Zero(spec.rows, spec.cols);
    for (Index r = 0; r < spec.rows; ++r)
      for (StorageIndex c : columns(t, r)) mask(r, c) = 1;
    return mask;
  }

  /// out[j] = keep · out[j] + factorGradient[factor(j)] · z[source(j)]: the factored I_tᵀ v of
  /// docs/math.md §2 added to `out` (keep = 1), or to a scaled `out`, given the factor gradient
  /// e = F_tᵀ v of v. With keep = 1, a weight row whose factor gradient is 0 is skipped: sparse
  /// factor gradients (an output's own parameters, a stack's same-step terms) cost their rows.
  template <class Scalar>
  void addParameterGradient(const std::type_identity_t<VectorView<Scalar>>& factorGradient,
                            const std::type_identity_t<VectorView<Scalar>>& z,
                            std::type_identity_t<VectorSpan<Scalar>> out, Scalar keep = Scalar(1)) const {
    const Scalar* e = factorGradient.data();
    const Scalar* x = z.data();
    Scalar* g = out.data();
    for (Index t = 0; t < tensorCount(); ++t) {
      const TensorSpec& spec = tensor(t);
      const Tensor& stored = m_tensors[static_cast<std::size_t>(t)];
      Index j = stored.offset;
      if (spec.source != SourceKind::Columns) {
        for (Index r = 0; r < spec.rows; ++r, ++j) {
          const Scalar source = x[spec.source == SourceKind::Constant ? spec.sourceOffset : spec.sourceOffset + r];
          g[j] = keep * g[j] + e[spec.factorOffset + r] * source;
        }
        continue;
      }
      const Scalar* sources = x + spec.sourceOffset;
      for (Index r = 0; r < spec.rows; ++r) {
        const Scalar er = e[spec.factorOffset + r];
        const auto active = columns(t, r);
        const auto count = static_cast<Index>(active.size());
        if (er == Scalar(0) && keep == Scalar(1)) {  // adds exactly nothing (the sources are finite)
          j += count;
          continue;
        }
        if (count == spec.cols) {  // a dense row: a contiguous axpy
          Eigen::Map<Vector<Scalar>> target(g + j, count);
          target = keep * target + er * Eigen::Map<const Vector<Scalar>>(sources, count);
        } else {
          for (Index i = 0; i < count; ++i) g[j + i] = keep * g[j + i] + er * sources[active[static_cast<std::size_t>(i)]];
        }
        j += count;
      }
    }
  }

  /// ‖I_tᵀ v‖² from the factor gradient e, without forming I_tᵀ v: Σ_j e[factor(j)]² z[source(j)]².
  template <class Scalar>
  Scalar squaredNormOfParameterGradient(const std::type_identity_t<VectorView<Scalar>>& factorGradient,
                                        const std::type_identity_t<VectorView<Scalar>>& z) const {
    Scalar total = 0;
    for (Index t = 0; t < tensorCount(); ++t) {
      const TensorSpec& spec = tensor(t);
      if (spec.source != SourceKind::Columns) {
        for (Index r = 0; r < spec.rows; ++r) {
          const Scalar source = z[spec.source == SourceKind::Constant ? spec.sourceOffset : spec.sourceOffset + r];
          const Scalar er = factorGradient[spec.factorOffset + r];
          total += er * er * source * source;
        }
        continue;
      }
      const auto sources = z.segment(spec.sourceOffset, spec.cols);
      const Scalar all = sources.squaredNorm();
      for (Index r = 0; r < spec.rows; ++r) {
        const Scalar er = factorGradient[spec.factorOffset + r];
        if (er == Scalar(0)) continue;
        const auto active = columns(t, r);
        Scalar squares = 0;
        if (static_cast<Index>(active.size()) == spec.cols)
          squares = all;
        else
          for (StorageIndex c : active) squares += sources[c] * sources[c];
        total += er * er * squares;
      }
    }
    return total;
  }

  /// Bytes held by the index arrays.
  std::size_t bytes() const {
    std::size_t indices = m_factor.size() + m_source.size() + m_tensorOf.size();
    for (const Tensor& tensor : m_tensors) indices += tensor.rowStart.size() + tensor.columns.size();
    return indices * sizeof(StorageIndex);
  }

private:
  struct Tensor {
    Index offset = 0;
    std::vector<StorageIndex> rowStart{0}, columns;
  };

  static Index sourceOf(const TensorSpec& spec, Index r, Index c) {
    switch (spec.source) {
      case SourceKind::Columns: return spec.sourceOffset + c;
      case SourceKind::Constant: return spec.sourceOffset;
      case SourceKind::Diagonal: return spec.sourceOffset + r;
    }
    return spec.sourceOffset;
  }

  template <class Scalar>
  void requireTensors(const ParameterTensors<Scalar>& tensors) const {
    detail::requireLength("parameter tensors", static_cast<Index>(tensors.size()), tensorCount());
    for (Index t = 0; t < tensorCount(); ++t)
      detail::requireShape(tensor(t).name, tensors[static_cast<std::size_t>(t)].rows(),
                           tensors[static_cast<std::size_t>(t)].cols(), tensor(t).rows, tensor(t).cols);
  }

  std::vector<TensorSpec> m_specs;
  std::vector<Tensor> m_tensors;
  Index m_factorCount = 0;
  Index m_sourceSize = 0;
  std::vector<StorageIndex> m_factor, m_source, m_tensorOf;
};

}  // namespace snap
