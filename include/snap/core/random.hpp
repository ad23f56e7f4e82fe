#pragma once
/// @file
/// A seeded random generator whose draws are the same on every platform and standard library
/// (std::uniform_*_distribution is implementation-defined, so it is not used).

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// Deterministic random numbers: 64-bit Mersenne Twister with portable transforms.
class Random {
public:
  /// A generator seeded with `seed`.
  explicit Random(std::uint64_t seed = 0) : m_engine(seed) {}

  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(m_engine() >> 11) * 0x1.0p-53; }

  /// Uniform in [low, high).
  double uniform(double low, double high) { return low + (high - low) * uniform(); }

  /// Uniform integer in [0, count), without modulo bias (rejection of the top partial range).
  /// `count` > 0.
  std::uint64_t below(std::uint64_t count) {
    if (count == 0) detail::fail<ValueError>("count", "at least 1 value to draw from", count);
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % count;
    std::uint64_t draw = m_engine();
    while (draw >= limit) draw = m_engine();
    return draw % count;
  }

  /// Uniform in (0, 1): never 0 (for logarithms).
  double open() {
    double u = uniform();
    while (u == 0.0) u = uniform();
    return u;
  }

  /// Standard normal, by the Box–Muller transform of two open() draws (the same numbers on
  /// every platform whose std::log, std::sqrt and std::cos are correctly rounded, as glibc's are).
  double normal() {
    const double radius = std::sqrt(-2.0 * std::log(open()));
    return radius * std::cos(6.283185307179586476925286766559 * uniform());
  }

  /// +1 or −1 with equal probability.
  double sign() { return (m_engine() >> 63) != 0 ? 1.0 : -1.0; }

  /// Fills `out` with independent ±1 signs, 64 per draw of the engine.
  template <class Derived>
  void signs(Eigen::DenseBase<Derived>& out) {
    std::uint64_t bits = 0;
    for (Index i = 0; i < out.size(); ++i) {
      if (i % 64 == 0) bits = m_engine();
      out[i] = (bits & 1U) != 0 ? typename Derived::Scalar(1) : typename Derived::Scalar(-1);
      bits >>= 1;
    }
  }

  /// A uniformly random subset of `count` distinct positions of [0, size), sorted.
  std::vector<Index> choose(Index size, Index count) {
    if (size < 0) detail::fail<ShapeError>("size", "at least 0", size);
    if (count < 0 || count > size)
      detail::fail<ValueError>("count", "a count in [0, size = " + detail::describe(size) + "]", count);
    detail::requireArray<Index>("size", size, "list of positions");
    std::vector<Index> positions(static_cast<std::size_t>(size));
    for (Index i = 0; i < size; ++i) positions[static_cast<std::size_t>(i)] = i;
    for (Index i = 0; i < count; ++i) {  // partial Fisher–Yates
      const auto j = i + static_cast<Index>(below(static_cast<std::uint64_t>(size - i)));
      std::swap(positions[static_cast<std::size_t>(i)], positions[static_cast<std::size_t>(j)]);
    }
    positions.resize(static_cast<std::size_t>(count));
    std::sort(positions.begin(), positions.end());
    return positions;
  }

  /// The underlying engine, for saving and restoring its state.
  std::mt19937_64& engine() { return m_engine; }
  /// The underlying engine (read only).
  const std::mt19937_64& engine() const { return m_engine; }

private:
  std::mt19937_64 m_engine;
};

}  // namespace snap
