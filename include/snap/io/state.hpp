#pragma once
/// @file
/// Named, typed and shape-checked arrays in an NpzArchive: what the saveState()/loadState()
/// members of engines, optimizers, readout, trainer and tasks are written with
/// (docs/reliability.md lists the arrays), and what a program adds its own arrays to a
/// checkpoint with. Every read checks presence, type and shape against what the reader
/// expects and throws snap::FormatError naming the array.

#include <cstdint>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/io/npz.hpp"

namespace snap {
namespace detail {

/// "array 'name'", the argument of every message about a stored array.
inline std::string arrayArgument(const std::string& name) { return "array '" + name + "'"; }

/// "(3, 4)", NumPy's notation for a shape.
inline std::string describeShape(const std::vector<std::int64_t>& shape) {
  std::string text = "(";
  for (std::size_t i = 0; i < shape.size(); ++i)
    text += std::to_string(shape[i]) + (shape.size() == 1 ? "," : i + 1 < shape.size() ? ", " : "");
  return text + ")";
}

}  // namespace detail

/// Stores a vector (one-dimensional) or a matrix (two-dimensional, row-major).
template <class Derived>
void putArray(NpzArchive& archive, const std::string& name, const Eigen::DenseBase<Derived>& values) {
  archive[name] = NpyArray::of(values);
}
/// Stores a zero-dimensional array.
template <class T>
void putScalar(NpzArchive& archive, const std::string& name, T value) {
  archive[name] = NpyArray::scalar(value);
}
/// Stores a text as its bytes (uint8), readable in NumPy with `bytes(a).decode()`.
inline void putText(NpzArchive& archive, const std::string& name, std::string_view text) {
  archive[name] = NpyArray::of(reinterpret_cast<const std::uint8_t*>(text.data()),
                               {static_cast<std::int64_t>(text.size())});
}

/// The array `name`; FormatError if the archive has none.
inline const NpyArray& findArray(const NpzArchive& archive, const std::string& name) {
  const auto it = archive.find(name);
  if (it == archive.end())
    detail::fail<FormatError>(detail::arrayArgument(name), "an array of that name", "none (missing)");
  return it->second;
}

/// The elements of array `name`, which must have type T and exactly `shape`.
template <class T>
std::vector<T> readValues(const NpzArchive& archive, const std::string& name, const std::vector<std::int64_t>& shape) {
  const NpyArray& array = findArray(archive, name);
  if (array.shape != shape)
    detail::fail<FormatError>(detail::arrayArgument(name), "shape " + detail::describeShape(shape),
                              detail::describeShape(array.shape));
  return array.values<T>(detail::arrayArgument(name));
}

/// A vector of `length` values.
template <class Scalar>
Vector<Scalar> readVector(const NpzArchive& archive, const std::string& name, Index length) {
  const std::vector<Scalar> values = readValues<Scalar>(archive, name, {length});
  return Eigen::Map<const Vector<Scalar>>(values.data(), length);
}

/// A rows × cols matrix (stored row-major), as any Eigen matrix type.
template <class MatrixType>
MatrixType readMatrix(const NpzArchive& archive, const std::string& name, Index rows, Index cols) {
  using Scalar = typename MatrixType::Scalar;
  const std::vector<Scalar> values = readValues<Scalar>(archive, name, {rows, cols});
  return Eigen::Map<const RowMatrix<Scalar>>(values.data(), rows, cols);
}

/// A zero-dimensional array, within [low, high].
template <class T>
T readScalar(const NpzArchive& archive, const std::string& name, T low, T high) {
  const T value = readValues<T>(archive, name, {}).front();
  if (!(value >= low && value <= high))
    detail::fail<FormatError>(detail::arrayArgument(name),
                              "a value in [" + detail::describe(low) + ", " + detail::describe(high) + "]", value);
  return value;
}

/// A text stored by putText, of at most `maxLength` bytes.
inline std::string readText(const NpzArchive& archive, const std::string& name, std::size_t maxLength = 1 << 20) {
  const NpyArray& array = findArray(archive, name);
  if (array.shape.size() != 1)
    detail::fail<FormatError>(detail::arrayArgument(name), "a one-dimensional array of bytes",
                              "shape " + detail::describeShape(array.shape));
  const std::vector<std::uint8_t> bytes = array.values<std::uint8_t>(detail::arrayArgument(name));
  if (bytes.size() > maxLength)
    detail::fail<FormatError>(detail::arrayArgument(name), "at most " + detail::describe(maxLength) + " bytes",
                              bytes.size());
  return {bytes.begin(), bytes.end()};
}

/// Stores a generator's state: the text of std::mt19937_64's operator<<, as bytes.
inline void putRandom(NpzArchive& archive, const std::string& name, const Random& random) {
  std::ostringstream text;
  text << random.engine();
  putText(archive, name, text.str());
}

/// A generator restored from putRandom's bytes. The text must parse completely and print back
/// identically, so that anything but a state this library wrote is refused.
inline Random readRandom(const NpzArchive& archive, const std::string& name) {
  const std::string text = readText(archive, name, 16384);
  for (char c : text)
    if (!((c >= '0' && c <= '9') || c == ' '))
      detail::fail<FormatError>(detail::arrayArgument(name), "the decimal state of a std::mt19937_64",
                                "other characters");
  Random random;
  std::istringstream in(text);
  in >> random.engine();
  std::ostringstream back;
  back << random.engine();
  if (in.fail() || back.str() != text)
    detail::fail<FormatError>(detail::arrayArgument(name), "the decimal state of a std::mt19937_64",
                              "a text that does not parse as one");
  return random;
}

namespace detail {

/// Throws FormatError unless the text `name` is `expected` (`what` says what it identifies).
inline void requireText(const NpzArchive& archive, const std::string& name, std::string_view expected,
                        std::string_view what) {
  const std::string text = readText(archive, name, 256);
  if (text != expected) fail<FormatError>(arrayArgument(name), std::string(what) + " " + std::string(expected), text);
}

/// Writes a cell's four tensors in PyTorch's layout and its masks (uint8, 0/1) under `prefix`:
/// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, `mask_ih`, `mask_hh` (checkpoints and
/// weights files alike).
template <class CellType>
void putCellTensors(NpzArchive& archive, const std::string& prefix, const CellType& cell) {
  putArray(archive, prefix + "weight_ih", cell.weight_ih());
  putArray(archive, prefix + "weight_hh", cell.weight_hh());
  putArray(archive, prefix + "bias_ih", cell.bias_ih());
  putArray(archive, prefix + "bias_hh", cell.bias_hh());
  putArray(archive, prefix + "mask_ih", cell.mask_ih().template cast<std::uint8_t>());
  putArray(archive, prefix + "mask_hh", cell.mask_hh().template cast<std::uint8_t>());
}

/// Writes what putCellTensors writes, plus the cell's gate and state-block counts `gates` and
/// `unit_states`, under `prefix`.
template <class CellType>
void saveCell(NpzArchive& archive, const std::string& prefix, const CellType& cell) {
  putScalar<std::int64_t>(archive, prefix + "gates", cell.structure().gates);
  putScalar<std::int64_t>(archive, prefix + "unit_states", cell.structure().unitStates);
  putCellTensors(archive, prefix, cell);
}

/// Reads what saveCell wrote into `cell` (in practice a copy being checked): the structure and
/// every shape must be the cell's, and the cell's own checks of masks and tensors apply, their
/// errors reported as FormatError naming the array. Masks equal to the cell's are not set again
/// (its maskVersion() stays).
template <class CellType>
void loadCell(const NpzArchive& archive, const std::string& prefix, CellType& cell) {
  using Scalar = typename CellType::Scalar;
  readScalar<std::int64_t>(archive, prefix + "gates", cell.structure().gates, cell.structure().gates);
  readScalar<std::int64_t>(archive, prefix + "unit_states", cell.structure().unitStates, cell.structure().unitStates);
  const Index rows = cell.gateRows(), inputs = cell.inputSize(), hidden = cell.hiddenSize();
  using Bytes = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const RowMatrix<Scalar> maskIh = readMatrix<Bytes>(archive, prefix + "mask_ih", rows, inputs).template cast<Scalar>();
  const RowMatrix<Scalar> maskHh = readMatrix<Bytes>(archive, prefix + "mask_hh", rows, hidden).template cast<Scalar>();
  const CellTensors<Scalar> tensors{readMatrix<RowMatrix<Scalar>>(archive, prefix + "weight_ih", rows, inputs),
                                    readMatrix<RowMatrix<Scalar>>(archive, prefix + "weight_hh", rows, hidden),
                                    readVector<Scalar>(archive, prefix + "bias_ih", rows),
                                    readVector<Scalar>(archive, prefix + "bias_hh", rows)};
  try {
    if (maskIh != cell.mask_ih() || maskHh != cell.mask_hh()) cell.setMasks(maskIh, maskHh);
    cell.setTensors(tensors);
  } catch (const FormatError&) {
    throw;
  } catch (const Error& error) {
    // "snap: weight_ih: expected …, got …" becomes "snap: array '<prefix>weight_ih': expected …, got …".
    std::string message = error.what();
    const std::string head = "snap: ";
    const auto colon = message.find(": ", head.size());
    if (message.rfind(head, 0) != 0 || colon == std::string::npos) throw FormatError(message);
    throw FormatError(head + arrayArgument(prefix + message.substr(head.size(), colon - head.size())) +
                      message.substr(colon));
  }
}

}  // namespace detail
}  // namespace snap
