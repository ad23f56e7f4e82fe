#pragma once
/// @file
/// The copy task with the curriculum of Mujika et al. (MATH §7): the benchmark of the SnAp
/// paper. Sequences, curriculum and the data-time metric are seeded and deterministic.

#include <algorithm>
#include <cstdint>
#include <deque>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"

namespace snap {

/// One copy-task sequence: L symbols, a delimiter, then L blank steps whose targets are the
/// L symbols in order. 2L + 1 steps in all; the loss is scored on the L recall steps.
class CopySequence {
public:
  CopySequence(std::vector<int> symbols, int alphabet) : m_symbols(std::move(symbols)), m_alphabet(alphabet) {}

  /// L, the number of symbols to copy.
  Index length() const { return static_cast<Index>(m_symbols.size()); }
  /// 2L + 1.
  Index steps() const { return 2 * length() + 1; }
  int alphabet() const { return m_alphabet; }
  const std::vector<int>& symbols() const { return m_symbols; }

  /// The class fed at step t: a symbol (t < L), the delimiter `alphabet` (t = L), or −1 for
  /// the blank input of the recall steps.
  int inputClass(Index t) const {
    checkStep(t);
    if (t < length()) return m_symbols[static_cast<std::size_t>(t)];
    return t == length() ? m_alphabet : -1;
  }
  /// Writes the input of step t: one-hot over {symbols…, delimiter}, all zeros when blank.
  template <class Derived>
  void input(Index t, Eigen::DenseBase<Derived>& out) const {
    detail::requireLength("copy-task input", out.size(), m_alphabet + 1);
    out.setZero();
    const int cls = inputClass(t);
    if (cls >= 0) out[cls] = 1;
  }
  /// The target of step t: symbol t − L − 1 on the recall steps, −1 (unscored) before.
  int target(Index t) const {
    checkStep(t);
    return t > length() ? m_symbols[static_cast<std::size_t>(t - length() - 1)] : -1;
  }

private:
  void checkStep(Index t) const {
    if (t < 0 || t >= steps()) detail::fail<ShapeError>("step", "an index in [0, 2L + 1)", t);
  }
  std::vector<int> m_symbols;
  int m_alphabet;
};

/// Options of the copy task and its curriculum.
struct CopyTaskOptions {
  int alphabet = 2;           ///< symbols to copy (bits by default)
  Index initialLength = 1;    ///< L at the start
  Index lengthSpread = 5;     ///< lengths are drawn from [max(1, L − spread), L]
  double threshold = 0.15;    ///< L rises when the recent loss per recall step falls below this, in bits
  Index window = 50;          ///< "recent": the last this many sequences at the current L
  std::uint64_t seed = 0;     ///< seeds the lengths and the symbols
};

/// The curriculum: L starts at initialLength and rises by 1 whenever the average loss per
/// recall step over the last `window` sequences (all drawn at the current L) falls below the
/// threshold; the window then starts afresh.
class Curriculum {
public:
  /// One finished sequence: its total recall loss in bits and its recall steps.
  struct Record {
    double loss;
    Index steps;
  };

  explicit Curriculum(const CopyTaskOptions& options = {}) : m_options(options), m_length(options.initialLength) {
    if (options.initialLength < 1)
      detail::fail<ValueError>("CopyTaskOptions::initialLength", "at least 1", options.initialLength);
    if (options.window < 1) detail::fail<ValueError>("CopyTaskOptions::window", "at least 1 sequence", options.window);
    if (options.lengthSpread < 0)
      detail::fail<ValueError>("CopyTaskOptions::lengthSpread", "at least 0", options.lengthSpread);
    if (!(options.threshold > 0)) detail::fail<ValueError>("CopyTaskOptions::threshold", "a value > 0 bits", options.threshold);
  }

  /// L, the current curriculum length.
  Index length() const { return m_length; }

  /// Records a finished sequence: its total recall loss in bits and its recall steps. Returns
  /// true when L rose.
  bool record(double lossBits, Index recallSteps) {
    if (recallSteps < 1) detail::fail<ValueError>("recallSteps", "at least 1", recallSteps);
    m_recent.push_back({lossBits, recallSteps});
    if (static_cast<Index>(m_recent.size()) > m_options.window) m_recent.pop_front();
    if (static_cast<Index>(m_recent.size()) == m_options.window && recentLoss() < m_options.threshold) {
      ++m_length;
      m_recent.clear();
      return true;
    }
    return false;
  }

  /// Average loss per recall step over the recorded recent sequences, in bits (0 if none).
  double recentLoss() const {
    double loss = 0;
    Index steps = 0;
    for (const Record& r : m_recent) {
      loss += r.loss;
      steps += r.steps;
    }
    return steps > 0 ? loss / static_cast<double>(steps) : 0.0;
  }
  /// Sequences in the current window.
  Index recentCount() const { return static_cast<Index>(m_recent.size()); }
  const CopyTaskOptions& options() const { return m_options; }

  /// The window's contents, for checkpoints: (loss, steps) pairs, oldest first.
  const std::deque<Record>& recent() const { return m_recent; }
  void restore(Index length, const std::deque<Record>& recent) {
    m_length = length;
    m_recent = recent;
  }

private:
  CopyTaskOptions m_options;
  Index m_length;
  std::deque<Record> m_recent;
};

/// The copy task: draws sequences at the curriculum's length and counts data time.
class CopyTask {
public:
  explicit CopyTask(const CopyTaskOptions& options = {}) : m_curriculum(options), m_random(options.seed) {
    if (options.alphabet < 2) detail::fail<ValueError>("CopyTaskOptions::alphabet", "at least 2 symbols", options.alphabet);
  }

  /// Input size (symbols + delimiter) and output size (symbols).
  Index inputSize() const { return options().alphabet + 1; }
  Index outputSize() const { return options().alphabet; }

  /// A new sequence: length uniform in [max(1, L − spread), L], symbols uniform.
  CopySequence next() {
    const Index level = m_curriculum.length();
    const Index shortest = std::max<Index>(1, level - options().lengthSpread);
    const Index length = shortest + static_cast<Index>(m_random.below(static_cast<std::uint64_t>(level - shortest + 1)));
    std::vector<int> symbols(static_cast<std::size_t>(length));
    for (int& s : symbols) s = static_cast<int>(m_random.below(static_cast<std::uint64_t>(options().alphabet)));
    return CopySequence(std::move(symbols), options().alphabet);
  }

  /// Records a finished sequence (its steps count towards data time); returns true when L rose.
  bool record(const CopySequence& sequence, double recallLossBits) {
    m_dataTime += sequence.steps();
    ++m_sequences;
    return m_curriculum.record(recallLossBits, sequence.length());
  }

  /// L, the curriculum length reached.
  Index length() const { return m_curriculum.length(); }
  /// Data time: the input steps consumed by recorded sequences.
  long long dataTime() const { return m_dataTime; }
  long long sequences() const { return m_sequences; }
  const Curriculum& curriculum() const { return m_curriculum; }
  Curriculum& curriculum() { return m_curriculum; }
  const CopyTaskOptions& options() const { return m_curriculum.options(); }
  Random& random() { return m_random; }
  void restoreCounters(long long dataTime, long long sequences) {
    m_dataTime = dataTime;
    m_sequences = sequences;
  }

private:
  Curriculum m_curriculum;
  Random m_random;
  long long m_dataTime = 0;
  long long m_sequences = 0;
};

}  // namespace snap
