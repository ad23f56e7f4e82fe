#pragma once
/// @file
/// The Eigen types snap's interfaces use.

#include <Eigen/Core>
#include <cstdint>

namespace snap {

/// Sizes and indices, as in Eigen.
using Index = Eigen::Index;

/// Index type of the compact index arrays (patterns, parameter layouts).
using StorageIndex = std::int32_t;

/// A column vector.
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// A row-major matrix: the layout of PyTorch's weight tensors, so row r of a weight is contiguous.
template <class Scalar>
using RowMatrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A column-major matrix (Eigen's default).
template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;

/// A read-only view of any contiguous vector expression (a Vector, a segment, a Map).
template <class Scalar>
using VectorView = Eigen::Ref<const Vector<Scalar>>;

/// A writable view of a contiguous vector.
template <class Scalar>
using VectorSpan = Eigen::Ref<Vector<Scalar>>;

/// A read-only view of a column-major matrix expression with contiguous columns: B streams'
/// inputs (m × B) or state gradients (k × B). A Vector binds to it as one column.
template <class Scalar>
using MatrixView = Eigen::Ref<const Matrix<Scalar>>;

/// A writable view of a column-major matrix with contiguous columns.
template <class Scalar>
using MatrixSpan = Eigen::Ref<Matrix<Scalar>>;

}  // namespace snap
