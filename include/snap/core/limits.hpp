#pragma once
/// @file
/// What snap accepts at the edges (docs/reliability.md, "Sizes and options"): size arithmetic
/// checked for overflow, one bound on what any array may hold, counters that refuse to wrap,
/// and options checked in the scalar type they are used in.

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <type_traits>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// The most bytes one array snap allocates may hold: 4 GiB. A size that would need a larger
/// array (a weight tensor, an influence matrix, a history, a batch of engines) is refused with
/// a ValueError naming the argument before anything is allocated.
inline constexpr std::int64_t maxArrayBytes = std::int64_t(1) << 32;

/// The bound of every counter (steps, updates, data time, …), as it advances and as a file
/// holds it: 2^62, so that a counter read from a file can take any step without overflowing,
/// and every state saved loads again.
inline constexpr std::int64_t counterLimit = std::int64_t{1} << 62;

namespace detail {

/// "snap::maxArrayBytes = 4 GiB", the budget as the messages cite it.
inline std::string describeBudget() { return "snap::maxArrayBytes = 4 GiB"; }

/// The shortest text that reads back as `value` (1.000000001, not 1 as a stream prints it).
inline std::string describePrecisely(double value) {
  char text[32];
  const auto end = std::to_chars(text, text + sizeof(text), value).ptr;
  return {text, end};
}

/// a · b, or a ValueError naming `argument` when the product overflows (sizes are ≥ 0).
inline Index checkedProduct(std::string_view argument, Index a, Index b) {
  Index product = 0;
  if (a < 0 || b < 0 || __builtin_mul_overflow(a, b, &product))
    fail<ValueError>(argument, "sizes whose product fits in 64 bits", describe(a) + " x " + describe(b));
  return product;
}

/// a + b, or a ValueError naming `argument` when the sum overflows (sizes are ≥ 0).
inline Index checkedSum(std::string_view argument, Index a, Index b) {
  Index sum = 0;
  if (a < 0 || b < 0 || __builtin_add_overflow(a, b, &sum))
    fail<ValueError>(argument, "sizes whose sum fits in 64 bits", describe(a) + " + " + describe(b));
  return sum;
}

/// Returns `count`; a ValueError naming `argument` unless an array of `count` values of T
/// (`what`, for the message) fits in maxArrayBytes.
template <class T>
Index requireArray(std::string_view argument, Index count, std::string_view what) {
  constexpr auto most = maxArrayBytes / static_cast<std::int64_t>(sizeof(T));
  if (count < 0 || count > most)
    fail<ValueError>(argument,
                     std::string("a size whose ") + std::string(what) + " holds at most " + describe(most) +
                         " values (" + describeBudget() + ")",
                     describe(count) + " values");
  return count;
}

/// rows · cols, checked for overflow and against maxArrayBytes for an array of T.
template <class T>
Index requireArray(std::string_view argument, Index rows, Index cols, std::string_view what) {
  return requireArray<T>(argument, checkedProduct(argument, rows, cols), what);
}

/// Throws UsageError naming `counter` unless `value + step` stays within counterLimit: called
/// before a counter advances, and before anything else in the call changes.
inline void requireCounterRoom(std::string_view counter, std::int64_t value, std::int64_t step = 1) {
  if (step < 0 || step > counterLimit || value > counterLimit - step)
    fail<UsageError>(counter, "a count that can advance by " + describe(step) + " within 2^62 (snap::counterLimit)",
                     value);
}

/// "float" or "double", for messages.
template <class Scalar>
constexpr const char* scalarName() {
  return std::is_same_v<Scalar, float> ? "float" : "double";
}

/// How an option's range includes its ends.
enum class Bound { Open, Closed, None };

/// An option given as a double, converted to the scalar type `Scalar` it is used in, and
/// checked there: it must be finite in Scalar (not overflow), a nonzero value must stay a
/// normal number (not round to 0 or to a subnormal), and the converted value must lie in the
/// range from `low` to `high` (Bound::None: unbounded on that side). Otherwise a ValueError
/// names `argument` with `expected` and the scalar type.
template <class Scalar>
Scalar optionIn(std::string_view argument, double value, std::string_view expected, double low, Bound lowBound,
                double high, Bound highBound) {
  using Limits = std::numeric_limits<Scalar>;
  // The message is built only on failure: options are checked at every optimizer update.
  const auto refuse = [&](std::string_view why, const std::string& given) {
    fail<ValueError>(argument, std::string(expected) + " (checked in " + scalarName<Scalar>() + ")" + std::string(why),
                     given);
  };
  if (!std::isfinite(value) || std::fabs(value) > static_cast<double>(Limits::max()))
    refuse(std::string(", finite in ") + scalarName<Scalar>(), describePrecisely(value));
  const auto converted = static_cast<Scalar>(value);
  if (value != 0.0 && !(std::fabs(converted) >= Limits::min()))
    refuse(std::string(", a normal ") + scalarName<Scalar>() + " (magnitude at least " + describe(Limits::min()) + ")",
           describePrecisely(value));
  const auto c = static_cast<double>(converted);
  const bool aboveLow = lowBound == Bound::None || (lowBound == Bound::Open ? c > low : c >= low);
  const bool belowHigh = highBound == Bound::None || (highBound == Bound::Open ? c < high : c <= high);
  if (!aboveLow || !belowHigh)
    refuse("", c == value ? describePrecisely(value)
                          : describePrecisely(value) + ", which is " + describePrecisely(c) + " in " + scalarName<Scalar>());
  return converted;
}

/// A positive option (a learning rate, an epsilon): optionIn over (0, ∞).
template <class Scalar>
Scalar positiveOptionIn(std::string_view argument, double value, std::string_view expected) {
  return optionIn<Scalar>(argument, value, expected, 0.0, Bound::Open, 0.0, Bound::None);
}

}  // namespace detail
}  // namespace snap
