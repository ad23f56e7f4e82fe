// Hostile files (docs/reliability.md, "What is checked on loading"): checkpoints and weights
// files crafted with valid checksums, whose contents a careless or hostile user chose. Each is
// refused with a FormatError naming the path or the array, before anything is sized by what it
// claims, and the objects loading it are left unchanged. Counters at their bound load, and the
// call that would advance one past it is refused with a UsageError that changes nothing.

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"
#include "../support/training.hpp"

namespace snap::test {
namespace {

std::string temporaryPath(const std::string& name) {
  return ::testing::TempDir() + "snap_hostile_" + std::to_string(::getpid()) + "_" + name;
}

/// A file or folder of the test's own, removed with everything in it at the end.
struct TemporaryPath {
  std::string path;
  explicit TemporaryPath(const std::string& name) : path(temporaryPath(name)) {}
  ~TemporaryPath() { std::filesystem::remove_all(path); }
};

/// A GRU (or LSTM) trainer with Adam and a copy task, with a few steps taken on every stream
/// (scored and unscored, so that engines hold gradients, pending steps, open windows).
template <class Engine>
struct Trained {
  using Cell = typename Engine::CellType;
  using Scalar = typename Engine::Scalar;
  CopyTask task{{.seed = 5}};
  Cell cell;
  Readout<Scalar> readout;
  Trainer<Engine> trainer;

  explicit Trained(const typename Engine::Options& options = {}, const TrainerOptions& trainerOptions = {},
               Index steps = 5)
      : cell(3, 4, {.recurrentDensity = 0.5, .seed = 2}), readout(4, 2, 3),
        trainer(cell, readout, Adam{.learningRate = 0.01}, trainerOptions, options) {
    for (Index t = 0; t < steps; ++t) {
      observeEach(trainer, [&](Index b) { return input(t, b); }, [&](Index b) { return target(t, b); });
      trainer.endStep();
    }
    task.record(task.next(), 0.5);
  }
  static Vector<Scalar> input(Index t, Index b) {
    Random random(static_cast<std::uint64_t>(100 * t + b + 1));
    Vector<Scalar> x(3);
    for (Index i = 0; i < 3; ++i) x[i] = static_cast<Scalar>(random.uniform(-1.0, 1.0));
    return x;
  }
  static Index target(Index t, Index b) { return (t + b) % 3 == 0 ? -1 : (t + b) % 2; }

  NpzArchive state() const { return checkpointArrays(trainer, &task); }
};

/// Expects restoring `arrays` into `run` to throw FormatError naming `argument`, and the run
/// (trainer, cell, readout, engines, optimizer, task) to be exactly as before.
template <class R>
void expectRefused(R& run, const NpzArchive& arrays, const std::string& argument) {
  SCOPED_TRACE(argument);
  const NpzArchive before = run.state();
  const std::uint64_t maskVersion = run.cell.maskVersion();
  expectError<FormatError>([&] { restoreCheckpoint(arrays, run.trainer, &run.task); }, argument);
  EXPECT_TRUE(sameArchive(run.state(), before));
  EXPECT_EQ(run.cell.maskVersion(), maskVersion);
}

/// The same through a file: `arrays` written as a checkpoint (with a valid checksum), then
/// loaded with loadCheckpoint.
template <class R>
void expectFileRefused(R& run, const NpzArchive& arrays, const std::string& argument) {
  SCOPED_TRACE(argument);
  const TemporaryPath file("refused.npz");
  writeCheckpoint(file.path, arrays);
  const NpzArchive before = run.state();
  expectError<FormatError>([&] { loadCheckpoint(file.path, run.trainer, &run.task); }, argument);
  EXPECT_TRUE(sameArchive(run.state(), before));
}

template <class T>
void setValue(NpyArray& array, std::size_t index, T value) {
  ASSERT_EQ(array.type, detail::npyType<T>());
  ASSERT_LE((index + 1) * sizeof(T), array.bytes.size());
  std::memcpy(array.bytes.data() + index * sizeof(T), &value, sizeof(T));
}
void setCounter(NpzArchive& arrays, const std::string& name, std::int64_t value) {
  arrays.at(name) = NpyArray::scalar<std::int64_t>(value);
}

// --- 1. Only regular files are read -------------------------------------------------------

TEST(HostileFiles, ADirectoryAFifoOrADeviceIsRefusedNamingThePath) {
  // Before the fix, a FIFO blocked the open until a writer came: the alarm ends the test then.
  ::alarm(60);
  const TemporaryPath folder("folder");
  ASSERT_TRUE(std::filesystem::create_directory(folder.path));
  const TemporaryPath fifo("fifo");
  ASSERT_EQ(::mkfifo(fifo.path.c_str(), 0600), 0);
  std::vector<std::string> paths = {folder.path, fifo.path};
  if (std::filesystem::exists("/dev/zero")) paths.push_back("/dev/zero");
  Trained<SnAp<GRU<float>>> run({.n = 1});
  const NpzArchive before = run.state();
  GRU<float> cell(3, 4, {.recurrentDensity = 0.5, .seed = 8});
  const GRU<float> cellBefore = cell;
  Readout<float> readout(4, 2);
  for (const std::string& path : paths) {
    SCOPED_TRACE(path);
    auto namesThePath = [&](auto&& call, const std::string& argument) {
      expectError<FormatError>(call, argument);
      try {
        call();
      } catch (const FormatError& error) {
        const std::string message = error.what();
        EXPECT_NE(message.find(path), std::string::npos) << message;
        EXPECT_NE(message.find("a regular file"), std::string::npos) << message;
      } catch (...) {
      }
    };
    namesThePath([&] { readCheckpoint(path); }, "checkpoint path");
    namesThePath([&] { loadCheckpoint(path, run.trainer, &run.task); }, "checkpoint path");
    namesThePath([&] { loadWeights(path, cell); }, "weights file");
    namesThePath([&] { loadWeights(path, cell, readout); }, "weights file");
    namesThePath([&] { readWeightsInfo(path); }, "weights file");
    namesThePath([&] { loadNpz(path); }, "npz path");
  }
  EXPECT_TRUE(sameArchive(run.state(), before));
  EXPECT_EQ(cell.maskVersion(), cellBefore.maskVersion());
  EXPECT_EQ(cell.weight_hh(), cellBefore.weight_hh());
  ::alarm(0);
}

TEST(HostileFiles, ARegularFileStillLoadsThroughALink) {
  Trained<RTRL<GRU<float>>> run;
  const TemporaryPath file("linked.npz");
  const TemporaryPath link("link.npz");
  saveCheckpoint(file.path, run.trainer, &run.task);
  ASSERT_EQ(::symlink(file.path.c_str(), link.path.c_str()), 0);
  Trained<RTRL<GRU<float>>> fresh({}, {}, 0);
  loadCheckpoint(link.path, fresh.trainer, &fresh.task);
  EXPECT_TRUE(sameArchive(fresh.state(), run.state()));
}

// --- 2. Sizes are checked against each other before anything grows ------------------------

TEST(HostileFiles, AnOpenWindowLongerThanItsArraysIsRefusedBeforeTheHistoryGrows) {
  // Untruncated BPTT (one update per sequence): its history grows to the stored window's length
  // (window_steps; the window arrays are B x window_steps x ...).
  Trained<BPTT<GRU<float>>> run({}, {.schedule = UpdateSchedule::PerSequence});
  const NpzArchive good = run.state();
  const Index k = run.cell.stateSize();
  const std::int64_t huge = std::numeric_limits<std::int32_t>::max();
  {
    // The file: 2^31 − 1 steps in the window, and a δ array of shape (1, 2^31 − 1, 0)
    // with no data bytes: refused at the first window array that does not have that length.
    NpzArchive arrays = good;
    setCounter(arrays, "trainer/engine/steps", huge);
    setCounter(arrays, "trainer/engine/window_steps", huge);
    arrays.at("trainer/engine/window/deltas") = NpyArray{"<f4", {1, huge, 0}, {}};
    expectFileRefused(run, arrays, "array 'trainer/engine/window/immediate_ih'");
  }
  {
    // A window longer than the steps taken.
    NpzArchive arrays = good;
    const std::int64_t steps = run.trainer.engine().steps();
    EXPECT_GT(run.trainer.engine().windowSteps(), 0);
    setCounter(arrays, "trainer/engine/window_steps", steps + 1);
    expectRefused(run, arrays, "array 'trainer/engine/window_steps'");
  }
  {
    // 2^20 steps and a δ array of that length (4 MiB, present), but the other window arrays
    // of the saved length: refused at the first of them, before the history holds 2^20 steps.
    NpzArchive arrays = good;
    const Index count = Index{1} << 20;
    setCounter(arrays, "trainer/engine/steps", count);
    setCounter(arrays, "trainer/engine/window_steps", count);
    arrays.at("trainer/engine/window/deltas") =
        NpyArray::of(std::vector<float>(static_cast<std::size_t>(count * k), 0.0f).data(), {1, count, k});
    expectRefused(run, arrays, "array 'trainer/engine/window/immediate_ih'");
  }
  {
    // A δ flagged in an empty window.
    NpzArchive arrays = good;
    for (const char* name : {"immediate_ih", "immediate_hh", "direct", "preactivations", "sources", "deltas", "cuts"}) {
      NpyArray& array = arrays.at(std::string("trainer/engine/window/") + name);
      array.shape[1] = 0;
      array.bytes.clear();
    }
    setCounter(arrays, "trainer/engine/window_steps", 0);
    setCounter(arrays, "trainer/engine/window_has_deltas", 1);
    expectRefused(run, arrays, "array 'trainer/engine/window_has_deltas'");
    setCounter(arrays, "trainer/engine/window_has_deltas", 0);
    restoreCheckpoint(arrays, run.trainer, &run.task);  // consistent: loads
    EXPECT_EQ(run.trainer.engine().windowSteps(), 0);
  }
}

TEST(HostileFiles, APendingStepBeforeAnyStepIsRefused) {
  Trained<RTRL<GRU<float>>> rtrl({}, {}, 0);
  NpzArchive arrays = rtrl.state();
  setCounter(arrays, "trainer/engine/pending", 1);
  expectRefused(rtrl, arrays, "array 'trainer/engine/pending'");
  Trained<SnAp<GRU<float>>> snap({.n = 2}, {}, 0);
  arrays = snap.state();
  setCounter(arrays, "trainer/engine/pending", 1);
  expectRefused(snap, arrays, "array 'trainer/engine/pending'");
}

TEST(HostileFiles, ARecentWindowLongerThanTheTasksIsRefused) {
  Trained<SnAp<GRU<float>>> run({.n = 1});
  NpzArchive arrays = run.state();
  const Index window = run.task.options().window;
  arrays.at("task/recent_loss") = NpyArray::of(Vector<double>(Vector<double>::Zero(window + 1)));
  arrays.at("task/recent_steps") = NpyArray::of(Vector<std::int64_t>(Vector<std::int64_t>::Ones(window + 1)));
  expectRefused(run, arrays, "array 'task/recent_loss'");
}

// --- 3. Counters: bounded on load, and their increments checked ---------------------------

/// Every counter of a checkpoint of a trainer with Adam and a copy task.
const std::vector<std::string> counters = {
    "trainer/pending_steps",        "trainer/updates",          "trainer/skipped_steps",
    "trainer/skipped_updates",      "trainer/engine/steps",
    "trainer/optimizer/cell/steps", "trainer/optimizer/readout/steps", "task/data_time",
    "task/sequences"};

TEST(HostileFiles, CountersAboveTwoToTheSixtyTwoAreRefused) {
  Trained<SnAp<GRU<float>>> run({.n = 2}, {.batch = 2});
  const NpzArchive good = run.state();
  for (const std::string& name : counters) {
    for (const std::int64_t value : {std::numeric_limits<std::int64_t>::max(), counterLimit + 1, std::int64_t{-1}}) {
      NpzArchive arrays = good;
      setCounter(arrays, name, value);
      expectRefused(run, arrays, "array '" + name + "'");
    }
    NpzArchive arrays = good;
    setCounter(arrays, name, counterLimit);
    Trained<SnAp<GRU<float>>> target({.n = 2}, {.batch = 2}, 0);
    restoreCheckpoint(arrays, target.trainer, &target.task);  // the bound itself loads
    EXPECT_TRUE(sameArchive(target.state(), arrays)) << name;
  }
}

TEST(HostileFiles, AStreamWithMoreStepsThanTheBatchIsRefused) {
  Trained<SnAp<GRU<float>>> run({.n = 2}, {.batch = 2});
  NpzArchive arrays = run.state();
  const std::int64_t steps = run.trainer.engine().steps();
  arrays.at("trainer/engine/stream_steps") =
      NpyArray::of(Vector<std::int64_t>(Vector<std::int64_t>::Constant(2, steps + 1)));
  expectRefused(run, arrays, "array 'trainer/engine/stream_steps'");
  arrays.at("trainer/engine/stream_steps") = NpyArray::of(Vector<std::int64_t>(Vector<std::int64_t>::Constant(3, 0)));
  expectRefused(run, arrays, "array 'trainer/engine/stream_steps'");
}

/// Restores `arrays` into `run` with counter `name` set to `value`.
template <class R>
void loadWithCounter(R& run, NpzArchive arrays, const std::string& name, std::int64_t value) {
  setCounter(arrays, name, value);
  restoreCheckpoint(arrays, run.trainer, &run.task);
}

/// Loads `arrays` with counter `name` set to `value` into `run`, then expects `advance` to
/// throw UsageError naming `argument` and to change nothing.
template <class R, class Advance>
void expectNoRoom(R& run, const NpzArchive& arrays, const std::string& name, std::int64_t value, Advance&& advance,
                  const std::string& argument) {
  SCOPED_TRACE(name);
  loadWithCounter(run, arrays, name, value);
  const NpzArchive before = run.state();
  expectError<UsageError>(advance, argument);
  EXPECT_TRUE(sameArchive(run.state(), before));
}

TEST(HostileFiles, ACounterAtItsBoundRefusesToAdvanceAndChangesNothing) {
  using Engine = RTRL<GRU<float>>;
  Trained<Engine> source({}, {.batch = 2, .updateEvery = 3});
  const NpzArchive good = source.state();
  Trained<Engine> run({}, {.batch = 2, .updateEvery = 3}, 0);
  const Vector<float> x = Trained<Engine>::input(0, 0);
  const auto batchStep = [&](Trained<Engine>& target) {
    observeEach(target.trainer, [&](Index) { return x; }, [](Index) { return Index(1); });
  };
  expectNoRoom(run, good, "trainer/engine/steps", counterLimit, [&] { batchStep(run); },
               "steps since the last resetState()");
  expectNoRoom(run, good, "trainer/pending_steps", counterLimit, [&] { run.trainer.endStep(); }, "pending steps");
  expectNoRoom(run, good, "trainer/updates", counterLimit, [&] { run.trainer.update(); }, "updates");
  expectNoRoom(run, good, "trainer/updates", counterLimit, [&] { run.trainer.endStep(); }, "updates");
  expectNoRoom(run, good, "trainer/skipped_updates", counterLimit, [&] { run.trainer.update(); }, "skipped updates");
  expectNoRoom(run, good, "trainer/optimizer/cell/steps", counterLimit, [&] { run.trainer.update(); }, "Adam steps");
  expectNoRoom(run, good, "trainer/optimizer/readout/steps", counterLimit, [&] { run.trainer.update(); },
               "Adam steps");
  const CopySequence sequence({1}, 2);  // at most L = 1 symbols
  expectNoRoom(run, good, "task/sequences", counterLimit, [&] { run.task.record(sequence, 0.5); }, "sequences");
  expectNoRoom(run, good, "task/data_time", counterLimit - sequence.steps() + 1,
               [&] { run.task.record(sequence, 0.5); }, "data time");
  // One below the bound: the step is taken, its state saved loads, the next step is refused.
  loadWithCounter(run, good, "trainer/engine/steps", counterLimit - 1);
  batchStep(run);
  EXPECT_EQ(run.trainer.engine().steps(), counterLimit);
  const NpzArchive saved = run.state();
  Trained<Engine> resumed({}, {.batch = 2, .updateEvery = 3}, 0);
  restoreCheckpoint(saved, resumed.trainer, &resumed.task);
  expectError<UsageError>([&] { batchStep(resumed); }, "steps since the last resetState()");
  // Data time exactly at the bound after a record.
  loadWithCounter(run, good, "task/data_time", counterLimit - sequence.steps());
  run.task.record(sequence, 0.5);
  EXPECT_EQ(run.task.dataTime(), counterLimit);
}

TEST(HostileFiles, SkippedStepsAtTheirBoundRefuseTheNextObserve) {
  using Engine = UORO<GRU<float>>;
  Trained<Engine> source({}, {.nonFinite = NonFinitePolicy::Skip});
  Trained<Engine> run({}, {.nonFinite = NonFinitePolicy::Skip}, 0);
  Vector<float> nan = Vector<float>::Constant(3, std::numeric_limits<float>::quiet_NaN());
  expectNoRoom(run, source.state(), "trainer/skipped_steps", counterLimit, [&] { run.trainer.observe(nan, 1); },
               "skipped steps");
}

/// The step counter of every engine is bounded and checked (the engines share it).
template <class Engine>
struct EngineCounters : ::testing::Test {};
using Engines = ::testing::Types<RTRL<GRU<float>>, SnAp<LSTM<float>>, UORO<GRU<float>>, BPTT<GRU<float>>>;
TYPED_TEST_SUITE(EngineCounters, Engines);

TYPED_TEST(EngineCounters, StepsAtTheBoundRefuseTheNextStep) {
  using Engine = TypeParam;
  typename Engine::Options options{};
  if constexpr (std::is_same_v<Engine, SnAp<LSTM<float>>>) options.n = 1;
  if constexpr (std::is_same_v<Engine, BPTT<GRU<float>>>) options.window = 3;
  Trained<Engine> source(options);
  Trained<Engine> run(options, {}, 0);
  NpzArchive arrays = source.state();
  setCounter(arrays, "trainer/engine/steps", std::numeric_limits<std::int64_t>::max());
  expectRefused(run, arrays, "array 'trainer/engine/steps'");
  expectNoRoom(run, source.state(), "trainer/engine/steps", counterLimit,
               [&] { run.trainer.observe(Trained<Engine>::input(0, 0), 1); }, "steps since the last resetState()");
}

TEST(HostileFiles, ACurriculumLongerThanTheTaskCanDrawIsRefused) {
  Trained<SnAp<GRU<float>>> run({.n = 1});
  const NpzArchive good = run.state();
  NpzArchive arrays = good;
  setCounter(arrays, "task/length", std::int64_t{1} << 40);
  expectFileRefused(run, arrays, "array 'task/length'");
  setCounter(arrays, "task/length", CopySequence::maxLength() + 1);
  expectRefused(run, arrays, "array 'task/length'");
  // Records drawn at a length above L.
  arrays = good;
  ASSERT_EQ(arrays.at("task/recent_steps").size(), 1);
  setValue<std::int64_t>(arrays.at("task/recent_steps"), 0, arrays.at("task/length").values<std::int64_t>("")[0] + 1);
  expectRefused(run, arrays, "array 'task/recent_steps'");
  // The longest length loads, and a sequence of it can be drawn.
  arrays = good;
  setCounter(arrays, "task/length", CopySequence::maxLength());
  restoreCheckpoint(arrays, run.trainer, &run.task);
  EXPECT_EQ(run.task.length(), CopySequence::maxLength());
  EXPECT_LE(run.task.next().length(), CopySequence::maxLength());
  EXPECT_THROW(run.task.curriculum().restore(CopySequence::maxLength() + 1, {}), ValueError);
}

// --- 4. Every floating array is finite (and in its domain) in the type it is used in ------

/// For every floating array of `run`'s checkpoint (but the informational learning rate): a
/// NaN, +∞ or −∞ in its last element is refused naming the array, and changes nothing.
template <class R>
void everyFloatingArrayRefusesNonFiniteValues(R& run) {
  const NpzArchive good = run.state();
  int checked = 0;
  for (const auto& [name, array] : good) {
    if (name == "trainer/optimizer/learning_rate" || array.size() == 0) continue;
    const auto last = static_cast<std::size_t>(array.size() - 1);
    for (const double value : {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                               -std::numeric_limits<double>::infinity()}) {
      NpzArchive arrays = good;
      if (array.type == "<f4") {
        setValue(arrays.at(name), last, static_cast<float>(value));
      } else if (array.type == "<f8") {
        setValue(arrays.at(name), last, value);
      } else {
        continue;
      }
      // The norm of the last update may be +∞ (a sum of squares that overflowed).
      if (name == "trainer/last_gradient_norm" && value > 0) continue;
      SCOPED_TRACE(value);
      expectRefused(run, arrays, "array '" + name + "'");
      ++checked;
    }
  }
  EXPECT_GT(checked, 30);
}

TEST(HostileFiles, NaNsAndInfinitiesAreRefusedInEveryFloatingArray) {
  {
    Trained<SnAp<GRU<float>>> run({.n = 2}, {.batch = 2});
    everyFloatingArrayRefusesNonFiniteValues(run);
  }
  {
    Trained<SnAp<LSTM<float>>> run({.n = 1});
    everyFloatingArrayRefusesNonFiniteValues(run);
  }
  {
    Trained<RTRL<GRU<double>>> run;
    everyFloatingArrayRefusesNonFiniteValues(run);
  }
  {
    Trained<UORO<GRU<float>>> run({.seed = 4});
    everyFloatingArrayRefusesNonFiniteValues(run);
  }
  {
    Trained<BPTT<GRU<float>>> run({.window = 3});
    ASSERT_GT(run.trainer.engine().windowSteps(), 0);
    everyFloatingArrayRefusesNonFiniteValues(run);
  }
  {
    Trained<BPTT<RNN<double>>> run({}, {.schedule = UpdateSchedule::PerSequence});
    ASSERT_GT(run.trainer.engine().windowSteps(), 0);
    everyFloatingArrayRefusesNonFiniteValues(run);
  }
}

TEST(HostileFiles, AdamsSecondMomentMustBeFiniteAndNonNegative) {
  // The example: a double Adam with v = +∞ loaded, then froze a parameter.
  Trained<RTRL<GRU<double>>> run;
  const NpzArchive good = run.state();
  for (const char* name : {"trainer/optimizer/cell/second", "trainer/optimizer/readout/second"})
    for (const double value : {std::numeric_limits<double>::infinity(), -1e-300, -1.0}) {
      NpzArchive arrays = good;
      setValue(arrays.at(name), 0, value);
      expectFileRefused(run, arrays, std::string("array '") + name + "'");
    }
  NpzArchive zero = good;
  setValue(zero.at("trainer/optimizer/cell/second"), 0, -0.0);  // −0 ≥ 0: a moment of zero
  restoreCheckpoint(zero, run.trainer, &run.task);
}

TEST(HostileFiles, AFloat64ArrayIsRefusedByAFloatObject) {
  // A checkpoint's arrays have the object's scalar type: 1e300 as float64 in place of a float
  // array is refused by its type, whatever its value.
  Trained<UORO<GRU<float>>> run;
  NpzArchive arrays = run.state();
  for (const char* name : {"trainer/engine/parameter_estimate", "trainer/readout/weight", "trainer/cell/weight_hh"}) {
    NpzArchive changed = arrays;
    NpyArray& array = changed.at(name);
    std::vector<double> values(static_cast<std::size_t>(array.size()), 1e300);
    array = NpyArray::of(values.data(), array.shape);
    expectRefused(run, changed, std::string("array '") + name + "'");
  }
}

// --- 5. loadWeights: checked in the cell's scalar type, all or nothing ---------------------

/// A float64 weights file of a GRU(3, 4) whose masks differ from those of the cells loading it.
struct WeightsFile {
  TemporaryPath file{"weights.npz"};
  NpzArchive archive;
  WeightsFile() {
    const GRU<double> cell(3, 4, {.recurrentDensity = 0.5, .seed = 4});
    saveWeights(file.path, cell, Readout<double>(4, 2, 5));
    archive = loadNpz(file.path);
  }
  /// The file with element `index` of `name` set to `value`.
  const std::string& with(const std::string& name, std::size_t index, double value) {
    NpzArchive changed = archive;
    setValue(changed.at(name), index, value);
    saveNpz(file.path, changed);
    return file.path;
  }
};

template <class Cell>
void expectWeightsRefused(const std::string& path, const std::string& array, bool withReadout) {
  SCOPED_TRACE(array);
  using Scalar = typename Cell::Scalar;
  Cell cell(3, 4, {.recurrentDensity = 0.25, .seed = 9});
  Readout<Scalar> readout(4, 2, 10);
  const Cell before = cell;
  const Vector<Scalar> readoutBefore = readout.parameters();
  try {
    if (withReadout)
      loadWeights(path, cell, readout);
    else
      loadWeights(path, cell);
    ADD_FAILURE() << "no FormatError";
  } catch (const FormatError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("weights file '" + path + "': array '" + array + "': expected "), std::string::npos)
        << message;
  } catch (const std::exception& error) {
    ADD_FAILURE() << "not a FormatError: " << error.what();
  }
  EXPECT_EQ(cell.maskVersion(), before.maskVersion());
  EXPECT_EQ(cell.mask_ih(), before.mask_ih());
  EXPECT_EQ(cell.mask_hh(), before.mask_hh());
  EXPECT_EQ(cell.weight_ih(), before.weight_ih());
  EXPECT_EQ(cell.weight_hh(), before.weight_hh());
  EXPECT_EQ(cell.bias_ih(), before.bias_ih());
  EXPECT_EQ(cell.bias_hh(), before.bias_hh());
  EXPECT_EQ(readout.parameters(), readoutBefore);
}

TEST(HostileFiles, WeightsBeyondAFloatCellsRangeChangeNothing) {
  WeightsFile file;
  const auto& mask = file.archive.at("mask_hh").bytes;
  const auto kept = static_cast<std::size_t>(std::find(mask.begin(), mask.end(), 1) - mask.begin());
  ASSERT_LT(kept, mask.size());
  // 1e300 is finite as float64 but +∞ as float: refused by a float cell, and nothing (not the
  // masks, which differ from the cell's) is replaced first.
  for (const char* name : {"weight_ih", "bias_hh"}) {
    expectWeightsRefused<GRU<float>>(file.with(name, 0, 1e300), name, false);
    expectWeightsRefused<GRU<float>>(file.with(name, 0, -1e300), name, true);
  }
  expectWeightsRefused<GRU<float>>(file.with("weight_hh", kept, 1e300), "weight_hh", true);
  // In the readout, the cell is not overwritten before the readout is refused.
  expectWeightsRefused<GRU<float>>(file.with("readout_weight", 1, 1e300), "readout_weight", true);
  expectWeightsRefused<GRU<float>>(file.with("readout_bias", 0, 1e39), "readout_bias", true);
  // A double cell takes 1e300.
  GRU<double> wide(3, 4);
  loadWeights(file.with("weight_ih", 0, 1e300), wide);
  EXPECT_EQ(wide.weight_ih()(0, 0), 1e300);
}

TEST(HostileFiles, AMaskEntryThatIsNotExactlyZeroOrOneIsRefused) {
  // A float64 mask of 1 + 1e-9 rounds to 1 as float: refused as stored, for float and double
  // cells alike.
  WeightsFile file;
  NpzArchive changed = file.archive;
  RowMatrix<double> mask = RowMatrix<double>::Ones(12, 4);
  mask(2, 1) = 1 + 1e-9;
  changed.at("mask_hh") = NpyArray::of(mask);
  changed.at("weight_hh") = NpyArray::of(RowMatrix<double>(RowMatrix<double>::Constant(12, 4, 0.5)));
  saveNpz(file.file.path, changed);
  expectWeightsRefused<GRU<float>>(file.file.path, "mask_hh", true);
  expectWeightsRefused<GRU<double>>(file.file.path, "mask_hh", false);
}

// --- 6. Skip with a batch: the flags of the batch step in progress are saved ---------------

TEST(HostileFiles, ASaveBetweenObserveAndEndStepResumesExactly) {
  using Engine = SnAp<GRU<float>>;
  const TrainerOptions options{.batch = 2, .nonFinite = NonFinitePolicy::Skip};
  auto input = [](Index t) { return [t](Index b) { return Trained<Engine>::input(t, b); }; };
  auto target = [](Index t) { return [t](Index b) { return Trained<Engine>::target(t, b); }; };
  // The batch step of t = 5 observed, or skipped (a NaN in stream 1's input), then a save
  // before its endStep(): the resumed run ends it as the straight run does (K = 1).
  for (const bool skipped : {false, true}) {
    SCOPED_TRACE(skipped ? "skipped batch step" : "observed batch step");
    auto observe = [&](Trained<Engine>& run) {
      if (!skipped) return observeEach(run.trainer, input(5), target(5));
      return observeEach(run.trainer,
                         [](Index b) {
                           Vector<float> x = Trained<Engine>::input(5, b);
                           if (b == 1) x[0] = std::numeric_limits<float>::quiet_NaN();
                           return x;
                         },
                         target(5));
    };
    auto finish = [&](Trained<Engine>& run) {
      run.trainer.endStep();
      for (Index t = 6; t < 9; ++t) {
        observeEach(run.trainer, input(t), target(t));
        run.trainer.endStep();
      }
    };
    Trained<Engine> straight({.n = 2}, options), cut({.n = 2}, options);
    observe(straight);
    observe(cut);
    const TemporaryPath file("between.npz");
    saveCheckpoint(file.path, cut.trainer, &cut.task);
    Trained<Engine> resumed({.n = 2}, options, 0);
    loadCheckpoint(file.path, resumed.trainer, &resumed.task);
    const long long updates = straight.trainer.updates();
    finish(straight);
    finish(resumed);
    EXPECT_EQ(straight.trainer.updates(), updates + (skipped ? 3 : 4));
    EXPECT_EQ(resumed.trainer.updates(), straight.trainer.updates());
    EXPECT_EQ(resumed.trainer.skippedSteps(), straight.trainer.skippedSteps());
    EXPECT_TRUE(sameArchive(resumed.state(), straight.state()));
    // The flags are checked like every other value.
    NpzArchive arrays = cut.state();
    setCounter(arrays, "trainer/step_observed", 2);
    expectRefused(resumed, arrays, "array 'trainer/step_observed'");
    arrays = cut.state();
    arrays.erase("trainer/step_skipped");
    expectRefused(resumed, arrays, "array 'trainer/step_skipped'");
  }
}

}  // namespace
}  // namespace snap::test
