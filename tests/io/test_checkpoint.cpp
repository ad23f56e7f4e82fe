// Checkpoints (docs/reliability.md): every engine's state round-trips bit for bit, whatever is
// pending; a trainer saved at any step and loaded into fresh objects goes on exactly as the
// uninterrupted one; a truncated, corrupted, foreign or mismatched file throws FormatError,
// never crashes, and a refused load changes nothing. (A kill -9 during a save: test_kill.cpp.)

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "../support/archive.hpp"
#include "../support/reference.hpp"
#include "../support/sanitizers.hpp"
#include "../support/training.hpp"

namespace snap::test {
namespace {

/// A fixed stream of inputs and state gradients; every third step is unscored (no δ), so that
/// checkpoints fall both between a step and its δ and after it.
template <class Scalar>
struct Stream {
  std::vector<Vector<Scalar>> inputs, deltas;
  Stream(Index inputSize, Index stateSize, Index steps) {
    Random random(17);
    for (Index t = 0; t < steps; ++t) {
      inputs.push_back(randomVector(random, inputSize).cast<Scalar>());
      deltas.push_back(randomVector(random, stateSize).cast<Scalar>());
    }
  }
  bool scored(Index t) const { return t % 3 != 1; }
};

/// Runs steps [from, to) of `stream` on `engine`, with a gradient reset every 4 steps and a
/// state reset at step 9 (the calls a trainer makes).
template <class Engine, class Scalar>
void drive(Engine& engine, const Stream<Scalar>& stream, Index from, Index to) {
  for (Index t = from; t < to; ++t) {
    const auto i = static_cast<std::size_t>(t);
    engine.step(stream.inputs[i]);
    if (stream.scored(t)) engine.accumulate(stream.deltas[i]);
    if (t % 4 == 3) {
      engine.gradient();
      engine.resetGradient();
    }
    if (t == 9) engine.resetState();
  }
}

/// For every split point k: the engine run to k, saved, loaded into a fresh engine, and run on
/// to the end is bit-identical (state, gradient, influence) to the uninterrupted engine.
template <class Engine>
void expectExactRoundTrips(const typename Engine::CellType& cell, const typename Engine::Options& options) {
  using Scalar = typename Engine::Scalar;
  constexpr Index steps = 14;
  const Stream<Scalar> stream(cell.inputSize(), cell.stateSize(), steps);
  Engine straight(cell, options);
  drive(straight, stream, 0, steps);
  const Vector<Scalar> expected = straight.gradient();
  for (Index k = 0; k < steps; ++k) {
    SCOPED_TRACE(::testing::Message() << "saved after " << k << " steps");
    Engine first(cell, options);
    drive(first, stream, 0, k);
    NpzArchive archive;
    first.saveState(archive, "engine/");
    Engine resumed(cell, options);
    resumed.loadState(archive, "engine/");
    EXPECT_TRUE(sameArchive(stateOf(resumed), stateOf(first)));
    drive(resumed, stream, k, steps);
    EXPECT_EQ(resumed.gradient(), expected);
    EXPECT_TRUE(sameArchive(stateOf(resumed), stateOf(straight)));
  }
}

template <class C>
class EngineCheckpoints : public ::testing::Test {};
using Cells = ::testing::Types<GRU<float>, LSTM<float>, RNN<double>>;
TYPED_TEST_SUITE(EngineCheckpoints, Cells);

TYPED_TEST(EngineCheckpoints, EveryEngineResumesBitForBit) {
  const TypeParam cell(3, 6, {.recurrentDensity = 0.4, .maskSharing = MaskSharing::Shared, .seed = 21});
  {
    SCOPED_TRACE("RTRL");
    expectExactRoundTrips<RTRL<TypeParam>>(cell, {});
  }
  for (int n : {1, 2, 3}) {
    SCOPED_TRACE(::testing::Message() << "SnAp-" << n);
    expectExactRoundTrips<SnAp<TypeParam>>(cell, {.n = n});
    expectExactRoundTrips<SnAp<TypeParam>>(cell, {.n = n, .denseBlockAbove = 0.0});
  }
  {
    SCOPED_TRACE("UORO");
    expectExactRoundTrips<UORO<TypeParam>>(cell, {.seed = 22});
  }
  {
    SCOPED_TRACE("BPTT, untruncated");
    expectExactRoundTrips<BPTT<TypeParam>>(cell, {});
  }
  {
    SCOPED_TRACE("BPTT, window 4");
    expectExactRoundTrips<BPTT<TypeParam>>(cell, {.window = 4});
  }
}

TEST(EngineCheckpoints, APendingStepIsSavedNotFlushed) {
  // SnAp fuses the step's influence update with the δ that follows; a flush followed by
  // accumulate() rounds differently. The checkpoint keeps the step pending, so the resumed
  // engine takes the fused path, as the uninterrupted one does.
  const LSTM<float> cell(3, 8, {.recurrentDensity = 0.5, .seed = 23});
  const Stream<float> stream(3, cell.stateSize(), 2);
  SnAp<LSTM<float>> straight(cell, {.n = 2}), saved(cell, {.n = 2});
  for (auto* engine : {&straight, &saved}) {
    engine->step(stream.inputs[0]);
    engine->accumulate(stream.deltas[0]);
    engine->step(stream.inputs[1]);
  }
  NpzArchive archive;
  saved.saveState(archive, "");
  EXPECT_EQ(archive.at("pending").values<std::int64_t>("pending").front(), 1);
  SnAp<LSTM<float>> resumed(cell, {.n = 2});
  resumed.loadState(archive, "");
  straight.accumulate(stream.deltas[1]);
  resumed.accumulate(stream.deltas[1]);
  EXPECT_EQ(resumed.gradient(), straight.gradient());
  // flush() performs the same update eagerly: the same influence, a gradient equal to rounding.
  saved.flush();
  saved.accumulate(stream.deltas[1]);
  EXPECT_LE(relativeError(saved.gradient().cast<double>(), straight.gradient().cast<double>()), 1e-6);
}

// --- Trainers, in process ---

template <class Engine>
void expectTrainerResumesExactly(const typename Engine::Options& options, const TrainerOptions& trainerOptions) {
  constexpr Index steps = 20;
  Training<Engine> straight(options, trainerOptions);
  straight.run(0, steps);
  for (Index k : {Index{0}, Index{1}, Index{5}, Index{8}, Index{13}, Index{19}}) {
    SCOPED_TRACE(::testing::Message() << "saved after " << k << " steps");
    Training<Engine> first(options, trainerOptions);
    first.run(0, k);
    NpzArchive archive;
    first.trainer.saveState(archive, "trainer/");
    Training<Engine> resumed(options, trainerOptions, 99);  // other masks and weights: all come from the file
    resumed.trainer.loadState(archive, "trainer/");
    resumed.run(k, steps);
    EXPECT_EQ(resumed.cell.parameters(), straight.cell.parameters());
    EXPECT_TRUE(sameArchive(stateOf(resumed.trainer), stateOf(straight.trainer)));
  }
}

TEST(TrainerCheckpoints, EveryEngineResumesBitForBitInProcess) {
  const TrainerOptions online{.batch = 2, .clipNorm = 1.0};
  {
    SCOPED_TRACE("RTRL");
    expectTrainerResumesExactly<RTRL<GRU<float>>>({}, online);
  }
  {
    SCOPED_TRACE("SnAp-1");
    expectTrainerResumesExactly<SnAp<GRU<float>>>({.n = 1}, online);
  }
  {
    SCOPED_TRACE("SnAp-2, LSTM");
    expectTrainerResumesExactly<SnAp<LSTM<float>>>({.n = 2}, online);
  }
  {
    SCOPED_TRACE("UORO");
    expectTrainerResumesExactly<UORO<GRU<float>>>({.seed = 3}, online);
  }
  {
    SCOPED_TRACE("BPTT, window 3");
    expectTrainerResumesExactly<BPTT<GRU<float>>>({.window = 3}, {.batch = 2, .updateEvery = 3});
  }
  {
    SCOPED_TRACE("BPTT, untruncated, per sequence");
    expectTrainerResumesExactly<BPTT<GRU<double>>>({}, {.batch = 2, .schedule = UpdateSchedule::PerSequence});
  }
}

TEST(TrainerCheckpoints, TheStoredMasksReplaceTheCellsMasks) {
  Training<SnAp<GRU<float>>> source({.n = 2}, {.batch = 2}), target({.n = 2}, {.batch = 2}, 77);
  source.run(0, 6);
  target.run(0, 3);
  ASSERT_NE(source.cell.mask_hh(), target.cell.mask_hh());
  NpzArchive archive;
  source.trainer.saveState(archive);
  target.trainer.loadState(archive);
  EXPECT_EQ(target.cell.mask_hh(), source.cell.mask_hh());
  EXPECT_EQ(target.cell.weight_hh(), source.cell.weight_hh());
  source.run(6, 12);
  target.run(6, 12);
  EXPECT_TRUE(sameArchive(stateOf(target.trainer), stateOf(source.trainer)));
}

TEST(TrainerCheckpoints, ACopyTaskResumes) {
  CopyTask task({.initialLength = 2, .window = 4, .seed = 5}), resumed({.initialLength = 2, .window = 4, .seed = 5});
  for (int i = 0; i < 9; ++i) task.record(task.next(), 0.05);
  NpzArchive archive;
  task.saveState(archive, "task/");
  resumed.loadState(archive, "task/");
  EXPECT_EQ(resumed.length(), task.length());
  EXPECT_EQ(resumed.dataTime(), task.dataTime());
  EXPECT_EQ(resumed.sequences(), task.sequences());
  EXPECT_EQ(resumed.curriculum().recentLoss(), task.curriculum().recentLoss());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(resumed.next().symbols(), task.next().symbols());
}

// --- Damaged and mismatched files ---

/// A small checkpoint of a trainer and a copy task, as the bytes of its file.
struct SmallCheckpoint {
  Training<SnAp<GRU<float>>> training{{.n = 2}, {.batch = 2}};
  CopyTask task{{.seed = 8}};
  std::vector<std::uint8_t> bytes;
  NpzArchive arrays;
  SmallCheckpoint() {
    training.run(0, 5);
    task.record(task.next(), 0.5);
    const std::string path = ::testing::TempDir() + "snap_small_" + std::to_string(::getpid()) + ".npz";
    saveCheckpoint(path, training.trainer, &task);
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    std::remove(path.c_str());
    arrays = readCheckpoint(bytes.data(), bytes.size(), "small");
  }
  /// The whole state the checkpoint could change.
  NpzArchive state() const { return checkpointArrays(training.trainer, &task); }
};

TEST(CorruptCheckpoints, EveryTruncationIsRefused) {
  SmallCheckpoint checkpoint;
  const NpzArchive before = checkpoint.state();
  for (std::size_t size = 0; size < checkpoint.bytes.size(); ++size) {
    try {
      readCheckpoint(checkpoint.bytes.data(), size, "truncated");
      ADD_FAILURE() << "a checkpoint cut to " << size << " of " << checkpoint.bytes.size() << " bytes was accepted";
    } catch (const FormatError&) {
    }
  }
  EXPECT_TRUE(sameArchive(checkpoint.state(), before));
}

#if SNAP_TEST_SANITIZED
constexpr std::uint8_t kFlips[] = {0xFF};  // one pattern per byte: the sanitized build is slower
#else
constexpr std::uint8_t kFlips[] = {0x01, 0xFF};
#endif

TEST(CorruptCheckpoints, EveryFlippedByteIsRefusedOrHarmless) {
  // A flipped byte either makes the file invalid (FormatError) or lands where nothing is read
  // (a zip header's date, say): the arrays are then exactly the original ones.
  SmallCheckpoint checkpoint;
  std::size_t refused = 0;
  for (std::size_t at = 0; at < checkpoint.bytes.size(); ++at) {
    for (std::uint8_t mask : kFlips) {
      std::vector<std::uint8_t> bytes = checkpoint.bytes;
      bytes[at] ^= mask;
      try {
        const NpzArchive arrays = readCheckpoint(bytes.data(), bytes.size(), "flipped");
        EXPECT_TRUE(sameArchive(arrays, checkpoint.arrays)) << "byte " << at << " flipped with " << int{mask};
      } catch (const FormatError&) {
        ++refused;
      }
    }
  }
  // Most bytes are checked (array data and npy headers by the CRC-32s, the directory by its
  // structure); the rest are zip header fields the reader does not need.
  EXPECT_GT(refused, std::size(kFlips) * checkpoint.bytes.size() * 3 / 4);
}

TEST(CorruptCheckpoints, ForeignFilesAndVersions) {
  SmallCheckpoint checkpoint;
  const std::string text = "not a zip file at all, just text";
  EXPECT_THROW(readCheckpoint(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), "text"), FormatError);
  EXPECT_THROW(readCheckpoint(nullptr, 0, "empty"), FormatError);
  auto rewritten = [&](auto&& change) {
    NpzArchive arrays = checkpoint.arrays;
    change(arrays);
    const std::string path = ::testing::TempDir() + "snap_foreign_" + std::to_string(::getpid()) + ".npz";
    saveNpz(path, arrays);
    try {
      readCheckpoint(path);
      std::remove(path.c_str());
      return std::string("accepted");
    } catch (const FormatError& error) {
      std::remove(path.c_str());
      return std::string(error.what());
    }
  };
  EXPECT_NE(rewritten([](NpzArchive& a) { putText(a, "format", "some other format"); }).find("array 'format'"),
            std::string::npos);
  EXPECT_NE(rewritten([](NpzArchive& a) { a.erase("format"); }).find("a snap checkpoint"), std::string::npos);
  EXPECT_NE(rewritten([](NpzArchive& a) { putScalar<std::int64_t>(a, "version", checkpointVersion + 1); }).find("version"),
            std::string::npos);
  EXPECT_NE(rewritten([](NpzArchive& a) { putScalar<double>(a, "version", 1.0); }).find("version"),
            std::string::npos);
  EXPECT_NE(rewritten([](NpzArchive& a) { a.erase("checksum"); }).find("checksum"), std::string::npos);
  EXPECT_NE(rewritten([](NpzArchive& a) { a.erase("trainer/readout/bias"); }).find("checksum"), std::string::npos);
}

/// Arrays written for inspection only (they describe the configuration rather than the state).
const std::set<std::string> informational = {"trainer/optimizer/learning_rate"};
/// Arrays read together: a length that does not fit may be reported on the partner.
const std::map<std::string, std::string> partner = {{"task/recent_loss", "task/recent_steps"}};

TEST(CorruptCheckpoints, EveryMissingOrReshapedArrayIsNamedAndChangesNothing) {
  // Consistent files (valid checksum) whose content does not fit: each array in turn removed,
  // given one element more, or given another type. The load names that array and changes nothing.
  SmallCheckpoint checkpoint;
  Training<SnAp<GRU<float>>> target({.n = 2}, {.batch = 2}, 44);
  CopyTask task({.seed = 9});
  target.run(0, 2);
  const NpzArchive before = checkpointArrays(target.trainer, &task);
  const std::uint64_t maskVersion = target.cell.maskVersion();
  auto expectRefusal = [&](const NpzArchive& arrays, const std::string& name, const char* what) {
    try {
      restoreCheckpoint(arrays, target.trainer, &task);
      ADD_FAILURE() << "accepted with " << name << " " << what;
    } catch (const FormatError& error) {
      const std::string message = error.what();
      const bool named = message.find("array '" + name + "'") != std::string::npos ||
                         (partner.count(name) != 0 && message.find("array '" + partner.at(name) + "'") != std::string::npos);
      EXPECT_TRUE(named) << what << " " << name << ": " << message;
    }
    EXPECT_TRUE(sameArchive(checkpointArrays(target.trainer, &task), before)) << what << " " << name;
    EXPECT_EQ(target.cell.maskVersion(), maskVersion);
  };
  for (const auto& [name, array] : checkpoint.arrays) {
    if (name == "format" || name == "version" || name == "checksum" || informational.count(name) != 0) continue;
    NpzArchive missing = checkpoint.arrays;
    missing.erase(name);
    expectRefusal(missing, name, "without");
    NpzArchive longer = checkpoint.arrays;
    NpyArray& grown = longer.at(name);
    const std::size_t element = grown.bytes.size() / static_cast<std::size_t>(std::max<std::int64_t>(grown.size(), 1));
    grown.shape = {grown.size() + 1};
    grown.bytes.resize(grown.bytes.size() + std::max<std::size_t>(element, 1));
    expectRefusal(longer, name, "one element longer:");
    NpzArchive retyped = checkpoint.arrays;
    NpyArray& other = retyped.at(name);
    other.type = other.type == "|u1" ? "<i8" : "|u1";
    other.bytes.assign(static_cast<std::size_t>(other.size()) * (other.type == "|u1" ? 1 : 8), 0);
    expectRefusal(retyped, name, "of another type:");
  }
}

TEST(CorruptCheckpoints, ValuesThatDoNotFitAreNamed) {
  SmallCheckpoint checkpoint;
  Training<SnAp<GRU<float>>> target({.n = 2}, {.batch = 2}, 45);
  CopyTask task({.seed = 9});
  const NpzArchive before = checkpointArrays(target.trainer, &task);
  auto expectNamed = [&](const std::string& name, auto&& change) {
    NpzArchive arrays = checkpoint.arrays;
    change(arrays.at(name).bytes);
    try {
      restoreCheckpoint(arrays, target.trainer, &task);
      ADD_FAILURE() << "accepted a bad " << name;
    } catch (const FormatError& error) {
      EXPECT_NE(std::string(error.what()).find("array '" + name + "'"), std::string::npos) << error.what();
    }
    EXPECT_TRUE(sameArchive(checkpointArrays(target.trainer, &task), before)) << name;
  };
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto putFloat = [](std::vector<std::uint8_t>& bytes, std::size_t index, float value) {
    std::memcpy(bytes.data() + 4 * index, &value, 4);
  };
  expectNamed("trainer/cell/mask_hh", [](auto& bytes) { bytes[3] = 2; });
  expectNamed("trainer/cell/weight_ih", [&](auto& bytes) { putFloat(bytes, 0, nan); });
  expectNamed("trainer/engine/state", [&](auto& bytes) { putFloat(bytes, 6 + 2, nan); });  // stream 1 (k = 6)
  expectNamed("trainer/readout/weight", [&](auto& bytes) { putFloat(bytes, 1, std::numeric_limits<float>::infinity()); });
  expectNamed("trainer/optimizer/cell/second", [&](auto& bytes) { putFloat(bytes, 0, -1.0f); });
  expectNamed("trainer/engine/pending", [](auto& bytes) { bytes[0] = 2; });
  expectNamed("trainer/engine/steps", [](auto& bytes) { bytes[7] = 0x80; });
  expectNamed("trainer/pending_steps", [](auto& bytes) { bytes[7] = 0xFF; });
  expectNamed("task/random", [](auto& bytes) { bytes[0] = 'x'; });
  expectNamed("task/random", [](auto& bytes) { bytes.pop_back(); });
  expectNamed("task/length", [](auto& bytes) { std::fill(bytes.begin(), bytes.end(), 0); });
  expectNamed("task/recent_steps", [](auto& bytes) { std::fill(bytes.begin(), bytes.end(), 0); });
  expectNamed("task/recent_loss", [](auto& bytes) { std::fill(bytes.begin(), bytes.end(), 0xFF); });
  // A weight at a masked position: the cell's own check, reported against the array.
  const auto& mask = checkpoint.arrays.at("trainer/cell/mask_hh").bytes;
  const auto masked = static_cast<std::size_t>(std::find(mask.begin(), mask.end(), 0) - mask.begin());
  ASSERT_LT(masked, mask.size());
  expectNamed("trainer/cell/weight_hh", [&](auto& bytes) { putFloat(bytes, masked, 0.5f); });
}

}  // namespace
}  // namespace snap::test
