#pragma once
// What every translation unit of the extension shares: the checks that turn a Python object
// into a view of a NumPy array (never a copy, never a conversion), the copies that hand C++
// data back, and the binding functions each translation unit defines (docs/python.md).

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <snap/snap.hpp>

#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

namespace snap::python {

namespace py = pybind11;
using detail::describe;

/// "32" or "64": the suffix of a class bound for float or double.
template <class Scalar>
std::string bits() {
  return std::is_same_v<Scalar, float> ? "32" : "64";
}

/// "float32" or "float64", as NumPy names the dtype.
template <class T>
std::string dtypeName() {
  if constexpr (std::is_same_v<T, float>) return "float32";
  else if constexpr (std::is_same_v<T, double>) return "float64";
  else return "int64";
}

/// A shape as Python prints it: (3,), (2, 3).
std::string describeShape(const py::array& array);
/// A shape from extents, −1 printed as "any".
std::string describeShape(std::initializer_list<Index> shape);

/// The C-contiguous NumPy array of element type T that `object` must be, with `shape`'s number
/// of dimensions and its extents (−1: any). Throws TypeError for None, a non-array or another
/// dtype, snap.ShapeError for another shape, snap.ValueError for a non-contiguous array; the
/// messages read "snap: <argument>: expected <expected>, got <given>".
template <class T>
py::array_t<T> arrayArgument(py::handle object, const char* argument, std::initializer_list<Index> shape) {
  const std::string expected = "a C-contiguous numpy.ndarray of " + dtypeName<T>();
  if (object.is_none()) throw py::type_error(std::string("snap: ") + argument + ": expected " + expected + ", got None");
  if (!py::isinstance<py::array>(object))
    throw py::type_error(std::string("snap: ") + argument + ": expected " + expected + ", got an object of type " +
                         std::string(py::str(py::type::of(object).attr("__name__"))));
  auto array = py::reinterpret_borrow<py::array>(object);
  if (!py::array_t<T>::check_(array))
    throw py::type_error(std::string("snap: ") + argument + ": expected " + expected + ", got an array of " +
                         py::cast<std::string>(array.dtype().attr("name")));
  bool fits = array.ndim() == static_cast<py::ssize_t>(shape.size());
  if (fits) {
    py::ssize_t axis = 0;
    for (Index extent : shape) fits = fits && (extent < 0 || array.shape(axis) == extent), ++axis;
  }
  if (!fits) detail::fail<ShapeError>(argument, "shape " + describeShape(shape), describeShape(array));
  if (!(array.flags() & py::array::c_style))
    detail::fail<ValueError>(argument, "a C-contiguous array (numpy.ascontiguousarray makes one)",
                             "a non-contiguous view");
  return py::reinterpret_borrow<py::array_t<T>>(array);
}

/// A one-dimensional argument of any length, as an Eigen view of the NumPy data (no copy).
template <class Scalar>
Eigen::Map<const Vector<Scalar>> vectorArgument(py::handle object, const char* argument) {
  const py::array_t<Scalar> array = arrayArgument<Scalar>(object, argument, {-1});
  return {array.data(), static_cast<Index>(array.shape(0))};
}

/// A two-dimensional argument of any shape, as a row-major Eigen view of the NumPy data.
template <class Scalar>
Eigen::Map<const RowMatrix<Scalar>> matrixArgument(py::handle object, const char* argument) {
  const py::array_t<Scalar> array = arrayArgument<Scalar>(object, argument, {-1, -1});
  return {array.data(), static_cast<Index>(array.shape(0)), static_cast<Index>(array.shape(1))};
}

/// The columns of B streams (rows values each, stream b in column b) from a NumPy argument:
/// a (B, rows) array, or a vector when B = 1 (whose length the engine checks, with the C++
/// message); its C order is the column-major rows × B matrix the engines take (no copy). The
/// type and the contiguity are checked first, then the shape.
template <class Scalar>
Eigen::Map<const Matrix<Scalar>> batchArgument(py::handle object, const char* argument, Index rows, Index streams) {
  const bool vector = py::isinstance<py::array>(object) && py::reinterpret_borrow<py::array>(object).ndim() == 1;
  const py::array_t<Scalar> array =
      vector ? arrayArgument<Scalar>(object, argument, {-1}) : arrayArgument<Scalar>(object, argument, {-1, -1});
  if (vector && streams == 1) return {array.data(), static_cast<Index>(array.shape(0)), 1};
  const bool fits = !vector && array.shape(0) == streams && array.shape(1) == rows;
  if (!fits)
    detail::fail<ShapeError>(argument,
                             streams == 1 ? "shape " + describeShape({rows}) + " or " + describeShape({1, rows})
                                          : "shape " + describeShape({streams, rows}),
                             describeShape(array));
  return {array.data(), rows, streams};
}

/// A copy of B streams' columns (rows × B) as NumPy: a vector when B = 1, else (B, rows).
template <class Derived>
py::array copyBatch(const Eigen::DenseBase<Derived>& columns) {
  using Scalar = typename Derived::Scalar;
  if (columns.cols() == 1) {
    py::array_t<Scalar> out(static_cast<py::ssize_t>(columns.rows()));
    Eigen::Map<Vector<Scalar>>(out.mutable_data(), columns.rows()) = columns.col(0);
    return out;
  }
  py::array_t<Scalar> out({static_cast<py::ssize_t>(columns.cols()), static_cast<py::ssize_t>(columns.rows())});
  Eigen::Map<Matrix<Scalar>>(out.mutable_data(), columns.rows(), columns.cols()) = columns;
  return out;
}

/// A new NumPy array holding a copy of a vector.
template <class Derived>
py::array_t<typename Derived::Scalar> copyVector(const Eigen::DenseBase<Derived>& values) {
  py::array_t<typename Derived::Scalar> out(static_cast<py::ssize_t>(values.size()));
  Eigen::Map<Vector<typename Derived::Scalar>>(out.mutable_data(), values.size()) = values;
  return out;
}

/// A new row-major NumPy array holding a copy of a matrix.
template <class Derived>
py::array_t<typename Derived::Scalar> copyMatrix(const Eigen::DenseBase<Derived>& values) {
  py::array_t<typename Derived::Scalar> out({static_cast<py::ssize_t>(values.rows()), static_cast<py::ssize_t>(values.cols())});
  Eigen::Map<RowMatrix<typename Derived::Scalar>>(out.mutable_data(), values.rows(), values.cols()) = values;
  return out;
}

/// The four tensors as a dict of NumPy arrays keyed by PyTorch's names.
template <class Scalar>
py::dict tensorDict(const CellTensors<Scalar>& tensors) {
  py::dict out;
  out["weight_ih"] = copyMatrix(tensors.weight_ih);
  out["weight_hh"] = copyMatrix(tensors.weight_hh);
  out["bias_ih"] = copyVector(tensors.bias_ih);
  out["bias_hh"] = copyVector(tensors.bias_hh);
  return out;
}

/// A dict of NumPy arrays as named arrays of a checkpoint (each array copied; dtypes float32,
/// float64, int32, int64, uint64 or uint8).
NpzArchive archiveOf(py::handle arrays, const char* argument);
/// The arrays of `archive` whose names none of the checkpoint's own names are, as a dict of copies.
py::dict extraArrays(const NpzArchive& archive);

/// The optimizer a Python object is (snap.SGD or snap.Adam), TypeError otherwise.
AnyOptimizer optimizerArgument(py::handle object);
/// TrainerOptions from the keyword arguments of a trainer's constructor.
TrainerOptions trainerOptions(Index batch, int threads, const std::string& schedule, Index updateEvery,
                              double clipNorm, const std::string& nonFinite);

/// The binding functions, one per translation unit (module.cpp calls them in this order).
void bindErrors(py::module_& module);
void bindBasics(py::module_& module);  // options, optimizers, Random, the copy task, weights info
void bindCells32(py::module_& module);
void bindCells64(py::module_& module);
void bindRTRL32(py::module_& module);
void bindRTRL64(py::module_& module);
void bindSnAp32(py::module_& module);
void bindSnAp64(py::module_& module);
void bindUORO32(py::module_& module);
void bindUORO64(py::module_& module);
void bindBPTT32(py::module_& module);
void bindBPTT64(py::module_& module);

}  // namespace snap::python
