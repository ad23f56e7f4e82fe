#pragma once
/// @file
/// The copy task with the curriculum of Mujika et al. (docs/math.md §7): the benchmark of the SnAp
/// paper. Sequences, curriculum and the data-time metric are seeded and deterministic.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/random.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/arrays.hpp"

namespace snap {

/// One copy-task sequence: L symbols, a delimiter, then L blank steps whose targets are the
/// L symbols in order. 2L + 1 steps in all; the loss is scored on the L recall steps.
class CopySequence {
public:
  /// A sequence that copies `symbols`, each a class in [0, alphabet).
  /// @throws ValueError if alphabet < 2, `symbols` is empty, or a symbol is out of range
  CopySequence(std::vector<int> symbols, int alphabet) : m_symbols(std::move(symbols)), m_alphabet(alphabet) {
    if (alphabet < 2) detail::fail<ValueError>("alphabet", "at least 2 symbols", alphabet);
    requireAlphabet("alphabet", alphabet);
    if (m_symbols.empty()) detail::fail<ValueError>("symbols", "at least 1 symbol to copy", "none");
    if (static_cast<Index>(m_symbols.size()) > maxLength())
      detail::fail<ValueError>("symbols", "at most " + detail::describe(maxLength()) + " symbols", m_symbols.size());
    for (int symbol : m_symbols)
      if (symbol < 0 || symbol >= alphabet)
        detail::fail<ValueError>("symbols", "symbols in [0, " + detail::describe(alphabet) + ")", symbol);
  }

  /// The longest sequence, 2^24 symbols (2^25 + 1 steps, far beyond any curriculum run): what a
  /// checkpoint's curriculum may hold and where the curriculum stops rising, so that the next
  /// sequence can always be drawn.
  static constexpr Index maxLength() { return Index{1} << 24; }
  /// The largest alphabet: a one-hot input of alphabet + 1 doubles fits in snap::maxArrayBytes.
  static constexpr Index maxAlphabet() { return maxArrayBytes / static_cast<Index>(sizeof(double)) - 1; }
  /// Throws ValueError naming `argument` unless `alphabet` is at most maxAlphabet().
  static void requireAlphabet(std::string_view argument, Index alphabet) {
    if (alphabet > maxAlphabet())
      detail::fail<ValueError>(argument, "at most " + detail::describe(maxAlphabet()) +
                                             " symbols (a one-hot input within " + detail::describeBudget() + ")",
                               alphabet);
  }

  /// L, the number of symbols to copy.
  Index length() const { return static_cast<Index>(m_symbols.size()); }
  /// 2L + 1.
  Index steps() const { return 2 * length() + 1; }
  /// The number of symbols; the delimiter is class `alphabet`.
  int alphabet() const { return m_alphabet; }
  /// The L symbols to copy.
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
    detail::requireLength("copy-task input", out.size(), Index{m_alphabet} + 1);
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
/// threshold; the window then starts afresh. L stays at most CopySequence::maxLength().
class Curriculum {
public:
  /// One finished sequence: its total recall loss in bits and its recall steps.
  struct Record {
    double loss;  ///< the total recall loss, in bits
    Index steps;  ///< its recall steps (the sequence's L)
  };

  /// A curriculum at L = options.initialLength with an empty window.
  /// @throws ValueError if initialLength < 1, window < 1, lengthSpread < 0 or threshold ≤ 0
  ///         (or NaN)
  explicit Curriculum(const CopyTaskOptions& options = {}) : m_options(options), m_length(options.initialLength) {
    if (options.initialLength < 1 || options.initialLength > CopySequence::maxLength())
      detail::fail<ValueError>("CopyTaskOptions::initialLength",
                               "a length in [1, " + detail::describe(CopySequence::maxLength()) + "]", options.initialLength);
    if (options.window < 1) detail::fail<ValueError>("CopyTaskOptions::window", "at least 1 sequence", options.window);
    detail::requireArray<Record>("CopyTaskOptions::window", options.window, "window of records");
    if (options.lengthSpread < 0)
      detail::fail<ValueError>("CopyTaskOptions::lengthSpread", "at least 0", options.lengthSpread);
    if (!(options.threshold > 0)) detail::fail<ValueError>("CopyTaskOptions::threshold", "a value > 0 bits", options.threshold);
  }

  /// L, the current curriculum length.
  Index length() const { return m_length; }

  /// Records a finished sequence: its total recall loss in bits and its recall steps. Returns
  /// true when L rose.
  /// L stops rising at CopySequence::maxLength(). All arguments are checked before anything changes.
  bool record(double lossBits, Index recallSteps) {
    checkRecord(lossBits, recallSteps);
    m_recent.push_back({lossBits, recallSteps});
    if (static_cast<Index>(m_recent.size()) > m_options.window) m_recent.pop_front();
    if (static_cast<Index>(m_recent.size()) == m_options.window && recentLoss() < m_options.threshold &&
        m_length < CopySequence::maxLength()) {
      ++m_length;
      m_recent.clear();
      return true;
    }
    return false;
  }

  /// Throws unless record(lossBits, recallSteps) would accept them.
  static void checkRecord(double lossBits, Index recallSteps) {
    if (recallSteps < 1) detail::fail<ValueError>("recallSteps", "at least 1", recallSteps);
    if (!std::isfinite(lossBits)) detail::fail<NonFiniteError>("lossBits", "a finite loss", lossBits);
    if (lossBits < 0) detail::fail<ValueError>("lossBits", "a loss >= 0 bits", lossBits);
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
  /// The options the curriculum was built with.
  const CopyTaskOptions& options() const { return m_options; }

  /// The window's contents, for checkpoints: (loss, steps) pairs, oldest first.
  const std::deque<Record>& recent() const { return m_recent; }
  /// Sets L and the window's records (from a checkpoint).
  /// @throws ValueError if length is not in [1, CopySequence::maxLength()], `recent` holds more than
  ///         options().window records, or a record's loss is not finite and ≥ 0 or its steps
  ///         are < 1 (nothing changes then)
  void restore(Index length, const std::deque<Record>& recent) {
    if (length < 1 || length > CopySequence::maxLength())
      detail::fail<ValueError>("length", "a curriculum length in [1, " + detail::describe(CopySequence::maxLength()) + "]",
                               length);
    if (static_cast<Index>(recent.size()) > m_options.window)
      detail::fail<ValueError>("recent", "at most CopyTaskOptions::window = " + detail::describe(m_options.window) +
                                             " sequences", recent.size());
    for (const Record& record : recent)
      if (!(std::isfinite(record.loss) && record.loss >= 0) || record.steps < 1)
        detail::fail<ValueError>("recent", "records of a finite loss >= 0 over at least 1 step",
                                 detail::describe(record.loss) + " bits over " + detail::describe(record.steps) + " steps");
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
  /// A task at L = options.initialLength whose lengths and symbols are drawn from options.seed.
  /// @throws ValueError if options.alphabet < 2, or as Curriculum's constructor does
  explicit CopyTask(const CopyTaskOptions& options = {}) : m_curriculum(options), m_random(options.seed) {
    if (options.alphabet < 2) detail::fail<ValueError>("CopyTaskOptions::alphabet", "at least 2 symbols", options.alphabet);
    CopySequence::requireAlphabet("CopyTaskOptions::alphabet", options.alphabet);
  }

  /// Input size (symbols + delimiter) and output size (symbols).
  Index inputSize() const { return Index{options().alphabet} + 1; }
  /// Output size: the symbols.
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
  /// A sequence longer than L (ValueError: the task draws none, and its state would not load
  /// again), a loss that is not finite (NonFiniteError) or negative (ValueError), or counters
  /// that would overflow (UsageError) are refused before anything changes.
  bool record(const CopySequence& sequence, double recallLossBits) {
    if (sequence.length() > length())
      detail::fail<ValueError>("sequence", "at most L = " + detail::describe(length()) + " symbols (the curriculum's length)",
                               sequence.length());
    detail::requireCounterRoom("data time", m_dataTime, sequence.steps());
    detail::requireCounterRoom("sequences", m_sequences);
    const bool rose = m_curriculum.record(recallLossBits, sequence.length());  // checks the loss before it changes anything
    m_dataTime += sequence.steps();
    ++m_sequences;
    return rose;
  }

  /// L, the curriculum length reached.
  Index length() const { return m_curriculum.length(); }
  /// Data time: the input steps consumed by recorded sequences.
  long long dataTime() const { return m_dataTime; }
  /// The sequences recorded.
  long long sequences() const { return m_sequences; }
  /// The curriculum.
  const Curriculum& curriculum() const { return m_curriculum; }
  /// The curriculum (writable: Curriculum::restore()).
  Curriculum& curriculum() { return m_curriculum; }
  /// The options the task was built with.
  const CopyTaskOptions& options() const { return m_curriculum.options(); }
  /// The generator of lengths and symbols (its state is part of a checkpoint).
  Random& random() { return m_random; }
  /// Sets the data time and the count of recorded sequences (from a checkpoint).
  /// @throws ValueError if either is negative or above snap::counterLimit (2^62)
  void restoreCounters(long long dataTime, long long sequences) {
    if (dataTime < 0 || dataTime > counterLimit)
      detail::fail<ValueError>("dataTime", "a count of steps in [0, 2^62] (snap::counterLimit)", dataTime);
    if (sequences < 0 || sequences > counterLimit)
      detail::fail<ValueError>("sequences", "a count of sequences in [0, 2^62] (snap::counterLimit)", sequences);
    m_dataTime = dataTime;
    m_sequences = sequences;
  }

  /// Writes `<prefix>random` (the generator of lengths and symbols), `data_time`, `sequences`,
  /// `alphabet`, the curriculum's `length`, and its window as `recent_loss` (bits) and
  /// `recent_steps`, oldest first.
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    putRandom(archive, prefix + "random", m_random);
    putScalar<std::int64_t>(archive, prefix + "data_time", m_dataTime);
    putScalar<std::int64_t>(archive, prefix + "sequences", m_sequences);
    putScalar<std::int64_t>(archive, prefix + "alphabet", options().alphabet);
    putScalar<std::int64_t>(archive, prefix + "length", m_curriculum.length());
    const auto& recent = m_curriculum.recent();
    Vector<double> loss(static_cast<Index>(recent.size()));
    Vector<std::int64_t> steps(static_cast<Index>(recent.size()));
    for (std::size_t i = 0; i < recent.size(); ++i) {
      loss[static_cast<Index>(i)] = recent[i].loss;
      steps[static_cast<Index>(i)] = recent[i].steps;
    }
    putArray(archive, prefix + "recent_loss", loss);
    putArray(archive, prefix + "recent_steps", steps);
  }
  /// Restores what saveState wrote (the alphabet must be this task's; the window at most its
  /// options' window, its records drawn at a length in [1, L]; L at most CopySequence::maxLength();
  /// the counters at most counterLimit); FormatError naming the array otherwise, and the task
  /// is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    Random random = readRandom(archive, prefix + "random");
    const std::int64_t dataTime = readCounter(archive, prefix + "data_time");
    const std::int64_t sequences = readCounter(archive, prefix + "sequences");
    readScalar<std::int64_t>(archive, prefix + "alphabet", options().alphabet, options().alphabet);
    const auto length = readScalar<std::int64_t>(archive, prefix + "length", 1, CopySequence::maxLength());
    const std::int64_t count = readLength(archive, prefix + "recent_loss", {}, options().window);
    const auto loss = readValues<double>(archive, prefix + "recent_loss", {count}, {.low = 0.0});
    const auto steps = readValues<std::int64_t>(archive, prefix + "recent_steps", {count}, {1, length});
    std::deque<Curriculum::Record> recent;
    for (std::size_t i = 0; i < loss.size(); ++i) recent.push_back({loss[i], static_cast<Index>(steps[i])});
    m_curriculum.restore(static_cast<Index>(length), recent);
    m_random = random;
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
