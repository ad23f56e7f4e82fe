#pragma once
/// @file
/// Named, typed and shape-checked arrays in an NpzArchive: what the saveState()/loadState()
/// members of engines, optimizers, readout, trainer and tasks are written with
/// (docs/reliability.md lists the arrays), and what a program adds its own arrays to a
/// checkpoint with. Every read checks presence, type and shape against what the reader
/// expects, and every value against its Domain (finite, ≥ 0, a range) in the type it is read
/// into, and throws snap::FormatError naming the array; lengths stored in a file are read with
/// readLength() and counters with readCounter(), bounded before anything is sized by them.

#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/npz.hpp"

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

/// What the values of an array read from a file may be, in the type T they are read into:
/// each must lie in [low, high]. The default bounds are T's finite range, so that a NaN or an
/// infinity is refused unless a bound is itself infinite.
template <class T>
struct Domain {
  T low = std::numeric_limits<T>::lowest();  ///< the least value accepted
  T high = std::numeric_limits<T>::max();    ///< the greatest value accepted
};

namespace detail {

/// A value read from a file, for messages: integers as numbers (bytes too), floating values
/// with every digit that tells them apart (1 + 1e-9 is not printed as 1).
template <class T>
std::string describeValue(T value) {
  if constexpr (std::is_floating_point_v<T>) {
    std::ostringstream out;
    out.precision(std::numeric_limits<T>::max_digits10);
    out << value;
    return out.str();
  } else {
    return describe(+value);
  }
}

/// "finite values >= 0", "a value in [0, 1]": what a Domain accepts, for messages about one
/// value (`single`) or an array.
template <class T>
std::string describeDomain(const Domain<T>& domain, bool single) {
  const bool low = domain.low != std::numeric_limits<T>::lowest(), high = domain.high != std::numeric_limits<T>::max();
  std::string text = std::string(single ? "a " : "") + (std::is_floating_point_v<T> && !(low && high) ? "finite " : "") +
                     (single ? "value" : "values");
  if (low && high) return text + " in [" + describeValue(domain.low) + ", " + describeValue(domain.high) + "]";
  if (low) return text + " >= " + describeValue(domain.low);
  if (high) return text + " <= " + describeValue(domain.high);
  return text;
}

/// Throws FormatError naming `argument` and the first value outside `domain` (NaN included).
template <class T>
void requireDomain(std::string_view argument, const T* values, std::size_t count, const Domain<T>& domain) {
  for (std::size_t i = 0; i < count; ++i)
    if (!(values[i] >= domain.low && values[i] <= domain.high))
      fail<FormatError>(argument, describeDomain(domain, count == 1),
                        describeValue(values[i]) + (count > 1 ? " at index " + describe(i) : std::string()));
}

}  // namespace detail

/// The elements of array `name`, which must have type T and exactly `shape`, each in `domain`
/// (by default T's finite values). The shape is checked before anything is allocated.
template <class T>
std::vector<T> readValues(const NpzArchive& archive, const std::string& name, const std::vector<std::int64_t>& shape,
                          const Domain<T>& domain = {}) {
  const NpyArray& array = findArray(archive, name);
  if (array.shape != shape)
    detail::fail<FormatError>(detail::arrayArgument(name), "shape " + detail::describeShape(shape),
                              detail::describeShape(array.shape));
  std::vector<T> values = array.values<T>(detail::arrayArgument(name));
  detail::requireDomain(detail::arrayArgument(name), values.data(), values.size(), domain);
  return values;
}

/// n, the leading extent of array `name`, whose shape must be (n, trailing…) with 0 ≤ n ≤ most:
/// what sizes an object by a length stored in a file, checked against the rest of the shape and
/// the object's own bound before the object grows.
inline std::int64_t readLength(const NpzArchive& archive, const std::string& name,
                               const std::vector<std::int64_t>& trailing, std::int64_t most) {
  const NpyArray& array = findArray(archive, name);
  const bool fits = array.shape.size() == trailing.size() + 1 && array.shape[0] <= most &&
                    std::equal(trailing.begin(), trailing.end(), array.shape.begin() + 1);
  if (!fits) {
    std::vector<std::int64_t> expected = {0};
    expected.insert(expected.end(), trailing.begin(), trailing.end());
    std::string shape = detail::describeShape(expected);
    shape.replace(1, 1, "n");
    detail::fail<FormatError>(detail::arrayArgument(name), "shape " + shape + " with n <= " + detail::describe(most),
                              detail::describeShape(array.shape));
  }
  return array.shape[0];
}

/// A vector of `length` values, each in `domain`.
template <class Scalar>
Vector<Scalar> readVector(const NpzArchive& archive, const std::string& name, Index length,
                          const Domain<Scalar>& domain = {}) {
  const std::vector<Scalar> values = readValues<Scalar>(archive, name, {length}, domain);
  return Eigen::Map<const Vector<Scalar>>(values.data(), length);
}

/// A rows × cols matrix (stored row-major), as any Eigen matrix type, each value in `domain`.
template <class MatrixType>
MatrixType readMatrix(const NpzArchive& archive, const std::string& name, Index rows, Index cols,
                      const Domain<typename MatrixType::Scalar>& domain = {}) {
  using Scalar = typename MatrixType::Scalar;
  const std::vector<Scalar> values = readValues<Scalar>(archive, name, {rows, cols}, domain);
  return Eigen::Map<const RowMatrix<Scalar>>(values.data(), rows, cols);
}

/// A zero-dimensional array, within [low, high] (an infinite bound admits that infinity).
template <class T>
T readScalar(const NpzArchive& archive, const std::string& name, T low, T high) {
  return readValues<T>(archive, name, {}, Domain<T>{low, high}).front();
}

/// A counter: a zero-dimensional int64 array in [0, counterLimit].
inline std::int64_t readCounter(const NpzArchive& archive, const std::string& name) {
  return readScalar<std::int64_t>(archive, name, 0, counterLimit);
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

}  // namespace detail
}  // namespace snap
