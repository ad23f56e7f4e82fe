#pragma once
/// @file
/// The exceptions snap throws, and the helpers that build their messages.

#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace snap {

/// Base of every exception snap throws. The message names the argument, what was expected
/// and what was given: "snap: <argument>: expected <expected>, got <given>".
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A size or shape does not match (input length, tensor shape, mask shape, cell sizes).
class ShapeError : public Error {
public:
  using Error::Error;
};

/// A value is out of its domain (density outside (0, 1], n < 1, a mask entry that is not 0/1).
class ValueError : public Error {
public:
  using Error::Error;
};

/// A call made in the wrong order (a loss gradient before any step, for example).
class UsageError : public Error {
public:
  using Error::Error;
};

/// A NaN or an infinity where a stream of values enters: an input x_t, a loss or a state
/// gradient δ_t, a state, a gradient at update time (docs/reliability.md). The call that
/// detects it changes nothing.
class NonFiniteError : public Error {
public:
  using Error::Error;
};

namespace detail {

/// Formats any streamable value for an error message.
template <class T>
std::string describe(const T& value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

/// "rows x cols", the shape notation used in every shape message.
inline std::string shapeOf(std::int64_t rows, std::int64_t cols) {
  return describe(rows) + " x " + describe(cols);
}

/// Throws `E` with the message "snap: <argument>: expected <expected>, got <given>".
template <class E = Error, class Given>
[[noreturn]] void fail(std::string_view argument, std::string_view expected, const Given& given) {
  std::string message = "snap: ";
  message.append(argument).append(": expected ").append(expected).append(", got ");
  message.append(describe(given));
  throw E(message);
}

/// Throws a ShapeError unless `given == expected` for a length.
inline void requireLength(std::string_view argument, std::int64_t given, std::int64_t expected) {
  if (given != expected) fail<ShapeError>(argument, "length " + describe(expected), given);
}

/// Throws a ShapeError unless a matrix argument has the expected shape.
inline void requireShape(std::string_view argument, std::int64_t rows, std::int64_t cols,
                         std::int64_t expectedRows, std::int64_t expectedCols) {
  if (rows != expectedRows || cols != expectedCols)
    fail<ShapeError>(argument, "shape " + shapeOf(expectedRows, expectedCols), shapeOf(rows, cols));
}

/// The name of a batched argument: `singular` ("input") for one stream, its plural ("inputs")
/// for B > 1.
inline std::string batchName(std::string_view singular, std::int64_t streams) {
  return std::string(singular) + (streams == 1 ? "" : "s");
}

/// Throws a ShapeError unless a batched argument holds B columns of `expectedRows` values:
/// for one stream a vector of that length ("input: expected length 3, got 4"), for B > 1 a
/// matrix ("inputs: expected shape 3 x 16, got 3 x 8").
inline void requireColumns(std::string_view singular, std::int64_t rows, std::int64_t cols, std::int64_t expectedRows,
                           std::int64_t streams) {
  if (streams == 1 && cols == 1) return requireLength(singular, rows, expectedRows);
  requireShape(batchName(singular, streams), rows, cols, expectedRows, streams);
}

/// True when every value of an Eigen expression is finite, in one vectorised pass: Σ x·0 is 0
/// when every x is finite and NaN as soon as one is infinite or NaN (Eigen's allFinite() is a
/// scalar loop, too slow for the checks made at every step).
template <class Values>
bool allFinite(const Values& values) {
  using Scalar = typename Values::Scalar;
  return (values.array() * Scalar(0)).sum() == Scalar(0);
}

/// Throws a NonFiniteError naming the first NaN or infinity of `values` (an Eigen vector, or a
/// matrix of B streams' columns); costs one vectorised pass when every value is finite.
template <class Values>
void requireFinite(std::string_view argument, const Values& values) {
  if (allFinite(values)) return;
  for (std::int64_t c = 0; c < values.cols(); ++c)
    for (std::int64_t r = 0; r < values.rows(); ++r)
      if (!std::isfinite(values(r, c)))
        fail<NonFiniteError>(argument, "finite values",
                             describe(values(r, c)) + " at index " + describe(r) +
                                 (values.cols() > 1 ? " of stream " + describe(c) : std::string()));
}

}  // namespace detail
}  // namespace snap
