#pragma once
/// @file
/// The adding problem (Hochreiter & Schmidhuber 1997, experiment 4), in the form later papers use
/// (Le et al. 2015, Arjovsky et al. 2016): a regression task over T steps whose target, the sum
/// of two marked values, needs the two values kept in memory until the last step. Seeded and
/// deterministic like CopyTask; RegressionReadout is its readout.

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/arrays.hpp"

namespace snap {

/// One adding-problem sequence of T steps: step t's input is (value_t, marker_t) with value_t in
/// [0, 1) and marker_t 1 at exactly two steps, one in the first half [0, ⌊T/2⌋) and one in the
/// second half [⌊T/2⌋, T), 0 elsewhere. The target, value_first + value_second, is scored at
/// the last step only.
class AddingSequence {
public:
  /// A sequence of the T = values.size() values, marked at steps `first` and `second`.
  /// @throws ValueError if T < 2 or T > maxLength(), a value is not in [0, 1) (NaN included),
  ///         `first` is not in [0, ⌊T/2⌋) or `second` not in [⌊T/2⌋, T)
  AddingSequence(std::vector<double> values, Index first, Index second)
      : m_values(std::move(values)), m_first(first), m_second(second) {
    requireLength("values", static_cast<Index>(m_values.size()));
    for (std::size_t t = 0; t < m_values.size(); ++t)
      if (!(m_values[t] >= 0.0 && m_values[t] < 1.0))
        detail::fail<ValueError>("values", "values in [0, 1)",
                                 detail::describe(m_values[t]) + " at step " + detail::describe(t));
    const Index half = length() / 2;
    if (first < 0 || first >= half)
      detail::fail<ValueError>("first", "a step in the first half [0, " + detail::describe(half) + ")", first);
    if (second < half || second >= length())
      detail::fail<ValueError>("second",
                               "a step in the second half [" + detail::describe(half) + ", " +
                                   detail::describe(length()) + ")",
                               second);
  }

  /// The longest sequence, 2^24 steps: what AddingTaskOptions::length may be.
  static constexpr Index maxLength() { return Index{1} << 24; }
  /// Throws ValueError naming `argument` unless 2 ≤ `length` ≤ maxLength().
  static void requireLength(std::string_view argument, Index length) {
    if (length < 2 || length > maxLength())
      detail::fail<ValueError>(argument, "a length in [2, " + detail::describe(maxLength()) + "] steps", length);
  }

  /// T, the number of steps.
  Index length() const { return static_cast<Index>(m_values.size()); }
  /// The T values, step by step.
  const std::vector<double>& values() const { return m_values; }
  /// The marked step of the first half.
  Index first() const { return m_first; }
  /// The marked step of the second half.
  Index second() const { return m_second; }

  /// Whether step t is marked.
  bool marked(Index t) const {
    checkStep(t);
    return t == m_first || t == m_second;
  }
  /// Writes the input of step t, (value_t, marker_t), into a vector of 2 entries.
  template <class Derived>
  void input(Index t, Eigen::DenseBase<Derived>& out) const {
    detail::requireLength("adding-task input", out.size(), 2);
    using Scalar = typename Derived::Scalar;
    const bool marker = marked(t);  // checks t
    out[0] = static_cast<Scalar>(m_values[static_cast<std::size_t>(t)]);
    out[1] = marker ? Scalar(1) : Scalar(0);
  }
  /// input() into a temporary view (a column of a batch's inputs, `inputs.col(b)`).
  template <class Derived>
  void input(Index t, Eigen::DenseBase<Derived>&& out) const {
    input(t, out);
  }
  /// The target, value_first + value_second (in [0, 2)).
  double target() const {
    return m_values[static_cast<std::size_t>(m_first)] + m_values[static_cast<std::size_t>(m_second)];
  }
  /// Whether step t is scored: the last step, T − 1, only.
  bool scored(Index t) const {
    checkStep(t);
    return t == length() - 1;
  }

private:
  void checkStep(Index t) const {
    if (t < 0 || t >= length()) detail::fail<ShapeError>("step", "an index in [0, T = " + detail::describe(length()) + ")", t);
  }
  std::vector<double> m_values;
  Index m_first, m_second;
};

/// Options of the adding task.
struct AddingTaskOptions {
  Index length = 50;       ///< T, the steps of every sequence, in [2, AddingSequence::maxLength()]
  std::uint64_t seed = 0;  ///< seeds the values and the marked steps
};

/// The adding task: draws sequences of T steps, each value uniform in [0, 1) and each marked
/// step uniform in its half, from one seeded generator.
class AddingTask {
public:
  /// A task of sequences of options.length steps drawn from options.seed.
  /// @throws ValueError unless 2 ≤ options.length ≤ AddingSequence::maxLength()
  explicit AddingTask(const AddingTaskOptions& options = {}) : m_options(options), m_random(options.seed) {
    AddingSequence::requireLength("AddingTaskOptions::length", options.length);
  }

  /// Input size: (value, marker).
  static constexpr Index inputSize() { return 2; }
  /// Output size: the sum.
  static constexpr Index outputSize() { return 1; }
  /// T, the steps of every sequence.
  Index length() const { return m_options.length; }

  /// A new sequence: the marked steps first (uniform in [0, ⌊T/2⌋), then in [⌊T/2⌋, T)), then
  /// the T values (uniform in [0, 1), 53 random bits each).
  /// @throws UsageError when the count of sequences drawn would pass snap::counterLimit
  AddingSequence next() {
    detail::requireCounterRoom("sequences", m_sequences);
    const Index half = length() / 2;
    const auto first = static_cast<Index>(m_random.below(static_cast<std::uint64_t>(half)));
    const auto second = half + static_cast<Index>(m_random.below(static_cast<std::uint64_t>(length() - half)));
    std::vector<double> values(static_cast<std::size_t>(length()));
    for (double& value : values) value = m_random.uniform();
    ++m_sequences;
    return AddingSequence(std::move(values), first, second);
  }

  /// The constant prediction that does best in squared error: 1, the mean of the target.
  static constexpr double baselinePrediction() { return 1.0; }
  /// The expected squared error (ŷ − target)² per sequence of the prediction ŷ = 1: the variance
  /// of a sum of two independent U[0, 1) values, 2 · 1/12 = 1/6. A model that beats it has
  /// learnt something of the marked values.
  static constexpr double baselineSquaredError() { return 1.0 / 6.0; }
  /// baselineSquaredError() in RegressionReadout's loss, ½ (ŷ − target)²: 1/12 per sequence.
  static constexpr double baselineLoss() { return baselineSquaredError() / 2; }

  /// The sequences drawn so far.
  long long sequences() const { return m_sequences; }
  /// The options the task was built with.
  const AddingTaskOptions& options() const { return m_options; }
  /// The generator of the values and the marked steps (its state is part of a checkpoint).
  Random& random() { return m_random; }

  /// Writes `<prefix>random` (the generator), `<prefix>sequences` (the sequences drawn) and
  /// `<prefix>length` (T).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    putRandom(archive, prefix + "random", m_random);
    putScalar<std::int64_t>(archive, prefix + "sequences", m_sequences);
    putScalar<std::int64_t>(archive, prefix + "length", m_options.length);
  }
  /// Restores what saveState wrote (T must be this task's, the count at most counterLimit);
  /// FormatError naming the array otherwise, and the task is left as it was. The next
  /// sequences are then those the saved task would have drawn.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    Random random = readRandom(archive, prefix + "random");
    const std::int64_t sequences = readCounter(archive, prefix + "sequences");
    readScalar<std::int64_t>(archive, prefix + "length", m_options.length, m_options.length);
    m_random = random;
    m_sequences = sequences;
  }

private:
  AddingTaskOptions m_options;
  Random m_random;
  long long m_sequences = 0;
};

}  // namespace snap
