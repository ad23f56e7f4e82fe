// libFuzzer target for the checkpoint loader (docs/reliability.md, "Fuzzing"): any bytes are
// parsed as an .npz (loadNpz), checked as a checkpoint (format, version and, for half of the
// inputs, the checksum, so that mutated files also reach the checks behind it), then restored
// into trainers of every engine and a copy task. Only snap::FormatError may come out; anything
// else (another exception, a sanitizer finding, a crash) is a bug. A refused load must leave
// the trainer exactly as it was; an accepted one must hold only finite values and counters
// within 2^62, and the trainer must then train on (any snap::Error is allowed there).
//
// Mutations are structure-aware (LLVMFuzzerCustomMutator): three inputs in four are parsed as
// an archive, one to three of its arrays are changed (values set to NaN, ±∞, huge, negative or
// extreme integers; extents zeroed, grown, shrunk or made huge; the type changed; an array
// removed or another's content copied in), and the archive is written back with its CRC-32s
// and its checkpoint checksum recomputed, so that the fuzzer explores contents, not checksums.
// The fourth input gets libFuzzer's own byte-level mutations (all of them with SNAP_FUZZ_RAW=1
// set, to compare); an input that does not parse gets them too, or half of the time is replaced
// by a mutated valid checkpoint of one of the six trainers. At exit it prints how far the
// inputs got.
//
// Built and run by tests/fuzz/run.sh with clang++ -fsanitize=fuzzer,address,undefined. With
// SNAP_FUZZ_SEEDS=folder set, it first writes its seed corpus (valid checkpoints) there.

#include <snap/snap.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace {

using snap::Index;

/// How far the inputs got: parsed as an archive, verified as a checkpoint (they reach the
/// restore), and the restores accepted (of six per verified input).
struct Progress {
  std::uint64_t inputs = 0, archives = 0, verified = 0, accepted = 0;
} progress;

/// SNAP_FUZZ_RAW is set: libFuzzer's byte-level mutations only.
bool rawMutations = false;

/// A small trainer of one engine on the copy task, with a few steps taken (pending steps,
/// open BPTT windows, nonzero moments).
template <class Engine>
struct Target {
  using Cell = typename Engine::CellType;
  snap::CopyTask task{{.seed = 3}};
  Cell cell;
  snap::Readout<float> readout;
  snap::Trainer<Engine> trainer;
  Target(const typename Engine::Options& options, snap::TrainerOptions trainerOptions, snap::AnyOptimizer optimizer)
      : cell(task.inputSize(), 3, {.recurrentDensity = 0.5, .seed = 1}), readout(3, task.outputSize(), 2),
        trainer(cell, readout, optimizer, trainerOptions, options) {
    snap::Matrix<float> x(task.inputSize(), trainer.batch());
    std::vector<Index> targets(static_cast<std::size_t>(trainer.batch()));
    for (Index t = 0; t < 7; ++t) {
      x.setZero();
      for (Index b = 0; b < trainer.batch(); ++b) {
        x((t + b) % x.rows(), b) = 1;
        targets[static_cast<std::size_t>(b)] = t % 3 == 0 ? -1 : (t + b) % 2;
      }
      trainer.observe(x, targets);
      trainer.endStep();
    }
    task.record(task.next(), 0.5);
  }

  /// Restores `archive`; a refusal must be a FormatError that changed nothing, an accepted
  /// state must be in its domain and train on.
  void restore(const snap::NpzArchive& archive) {
    const snap::NpzArchive before = snap::checkpointArrays(trainer, &task);
    try {
      snap::restoreCheckpoint(archive, trainer, &task);
    } catch (const snap::FormatError&) {
      if (!same(snap::checkpointArrays(trainer, &task), before)) {
        std::fprintf(stderr, "fuzz_checkpoint: a refused load changed the trainer\n");
        std::abort();
      }
      return;
    }
    ++progress.accepted;
    requireInDomain(snap::checkpointArrays(trainer, &task));
    try {
      snap::Matrix<float> x = snap::Matrix<float>::Zero(task.inputSize(), trainer.batch());
      std::vector<Index> targets(static_cast<std::size_t>(trainer.batch()));
      for (Index b = 0; b < trainer.batch(); ++b) {
        x(b % x.rows(), b) = 1;
        targets[static_cast<std::size_t>(b)] = b % 2;
      }
      trainer.observe(x, targets);
      trainer.endStep();
      task.record(task.next(), 0.25);
    } catch (const snap::Error&) {
    }
  }

  /// Aborts unless every floating value of an accepted state is finite (the norm of the last
  /// update may be +∞) and every counter is within [0, 2^62].
  static void requireInDomain(const snap::NpzArchive& state) {
    static const char* const counters[] = {"pending_steps", "updates", "skipped_steps", "skipped_updates", "steps",
                                           "data_time", "sequences"};
    for (const auto& [name, array] : state) {
      bool bad = false;
      if (array.type == "<f4") {
        for (float v : array.values<float>(name)) bad = bad || !std::isfinite(v);
      } else if (array.type == "<f8") {
        for (double v : array.values<double>(name))
          bad = bad || std::isnan(v) || (std::isinf(v) && name != "trainer/last_gradient_norm");
      } else if (array.type == "<i8" && array.shape.empty()) {
        const std::string leaf = name.substr(name.find_last_of('/') + 1);
        const std::int64_t v = array.values<std::int64_t>(name)[0];
        for (const char* counter : counters) bad = bad || (leaf == counter && (v < 0 || v > snap::counterLimit));
      }
      if (bad) {
        std::fprintf(stderr, "fuzz_checkpoint: an accepted load holds %s out of its domain\n", name.c_str());
        std::abort();
      }
    }
  }
  /// The trainer's and the task's state as a checkpoint, in memory.
  snap::NpzArchive checkpoint() const {
    snap::NpzArchive archive = snap::checkpointArrays(trainer, &task);
    snap::putText(archive, "format", snap::detail::checkpointFormat);
    snap::putScalar<std::int64_t>(archive, "version", snap::checkpointVersion);
    snap::putScalar<std::uint64_t>(archive, "checksum", snap::detail::checkpointChecksum(archive));
    return archive;
  }
  void seed(const std::string& folder, const char* name) const {
    snap::saveCheckpoint(folder + "/" + name + ".npz", trainer, &task);
  }

  static bool same(const snap::NpzArchive& a, const snap::NpzArchive& b) {
    if (a.size() != b.size()) return false;
    for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j)
      if (i->first != j->first || i->second.type != j->second.type || i->second.shape != j->second.shape ||
          i->second.bytes != j->second.bytes)
        return false;
    return true;
  }
};

struct Targets {
  Target<snap::SnAp<snap::GRU<float>>> snap2{{.n = 2}, {.batch = 2}, snap::Adam{}};
  Target<snap::SnAp<snap::LSTM<float>>> snap1{{.n = 1}, {}, snap::Adam{}};
  Target<snap::RTRL<snap::GRU<float>>> rtrl{{}, {}, snap::SGD{}};
  Target<snap::UORO<snap::GRU<float>>> uoro{{.seed = 4}, {}, snap::Adam{}};
  Target<snap::BPTT<snap::GRU<float>>> window{{.window = 3}, {.updateEvery = 3}, snap::Adam{}};
  Target<snap::BPTT<snap::RNN<float>>> untruncated{{}, {.schedule = snap::UpdateSchedule::PerSequence}, snap::Adam{}};

  void restore(const snap::NpzArchive& archive) {
    snap2.restore(archive);
    snap1.restore(archive);
    rtrl.restore(archive);
    uoro.restore(archive);
    window.restore(archive);
    untruncated.restore(archive);
  }
  /// The six trainers' states as checkpoints, as they were built.
  const std::vector<snap::NpzArchive>& checkpoints() const {
    static const std::vector<snap::NpzArchive> initial = {snap2.checkpoint(), snap1.checkpoint(), rtrl.checkpoint(),
                                                          uoro.checkpoint(), window.checkpoint(),
                                                          untruncated.checkpoint()};
    return initial;
  }
  void seed(const std::string& folder) const {
    snap2.seed(folder, "snap2_gru");
    snap1.seed(folder, "snap1_lstm");
    rtrl.seed(folder, "rtrl_gru");
    uoro.seed(folder, "uoro_gru");
    window.seed(folder, "bptt3_gru");
    untruncated.seed(folder, "bptt_rnn");
  }
};

Targets& targets() {
  static Targets instance;
  return instance;
}

/// Changes the contents of one array of `archive` (values, shape, type), removes it, or copies
/// another array into it; the bytes always fit the shape, so that the array still decodes.
void mutateArchive(snap::NpzArchive& archive, std::minstd_rand& random) {
  auto pick = [&](std::size_t count) { return static_cast<std::size_t>(random() % std::max<std::size_t>(count, 1)); };
  auto it = std::next(archive.begin(), static_cast<std::ptrdiff_t>(pick(archive.size())));
  snap::NpyArray& array = it->second;
  const std::size_t element = array.type == "|u1" ? 1 : array.type == "<f4" || array.type == "<i4" ? 4 : 8;
  const auto count = static_cast<std::size_t>(array.size());
  // Sets the shape, the bytes following (zeros where new).
  auto reshape = [&](std::vector<std::int64_t> shape) {
    snap::NpyArray changed{array.type, std::move(shape), {}};
    if (changed.size() > (1 << 16)) return;
    changed.bytes = array.bytes;
    changed.bytes.resize(static_cast<std::size_t>(changed.size()) * element, 0);
    array = std::move(changed);
  };
  switch (random() % 8) {
    case 0:
    case 1:
    case 2: {  // one value, or all of them, set to an extreme
      if (count == 0) break;
      const bool all = random() % 4 == 0;
      const std::size_t first = all ? 0 : (random() % 2 == 0 ? count - 1 : pick(count)), last = all ? count : first + 1;
      const double floats[] = {std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                               -std::numeric_limits<double>::infinity(), 1e300, -1e300, 3.5e38, 1e-45, -1, -0.0, 0, 1,
                               2, 1 + 1e-9};
      const std::int64_t integers[] = {std::numeric_limits<std::int64_t>::max(), std::numeric_limits<std::int64_t>::min(),
                                       snap::counterLimit, snap::counterLimit + 1, snap::counterLimit - 1,
                                       std::numeric_limits<std::int32_t>::max(), std::int64_t{1} << 40, -1, 0, 1, 2, 3,
                                       255, 256};
      const double f = floats[pick(std::size(floats))];
      const std::int64_t n = integers[pick(std::size(integers))];
      for (std::size_t i = first; i < last; ++i) {
        std::uint8_t* at = array.bytes.data() + i * element;
        if (array.type == "<f8") std::memcpy(at, &f, 8);
        if (array.type == "<f4") {
          const auto narrow = static_cast<float>(f);
          std::memcpy(at, &narrow, 4);
        }
        if (array.type == "<i8" || array.type == "<u8") std::memcpy(at, &n, 8);
        if (array.type == "<i4") {
          const auto narrow = static_cast<std::int32_t>(n);
          std::memcpy(at, &narrow, 4);
        }
        if (array.type == "|u1") *at = static_cast<std::uint8_t>(n);
      }
      break;
    }
    case 3: {  // one extent zeroed, grown or shrunk by one, or made huge with another zeroed
      std::vector<std::int64_t> shape = array.shape;
      if (shape.empty()) {
        reshape({static_cast<std::int64_t>(random() % 3)});
        break;
      }
      const std::size_t axis = pick(shape.size());
      switch (random() % 4) {
        case 0: shape[axis] = 0; break;
        case 1: ++shape[axis]; break;
        case 2: shape[axis] = std::max<std::int64_t>(shape[axis] - 1, 0); break;
        default:
          shape[axis] = random() % 2 == 0 ? std::numeric_limits<std::int32_t>::max() : std::int64_t{1} << 40;
          if (shape.size() == 1) shape.push_back(0);
          shape[(axis + 1) % shape.size()] = 0;
      }
      reshape(std::move(shape));
      break;
    }
    case 4: {  // the same elements in another number of dimensions
      std::vector<std::int64_t> shape;
      switch (random() % 3) {
        case 0: shape = {}; break;
        case 1: shape = {static_cast<std::int64_t>(count)}; break;
        default: shape = {static_cast<std::int64_t>(count), 1};
      }
      if (shape.empty() && count != 1) shape = {1, static_cast<std::int64_t>(count)};
      reshape(std::move(shape));
      break;
    }
    case 5: {  // another type, the bytes cut or padded to fit
      const char* types[] = {"<f4", "<f8", "<i8", "<i4", "<u8", "|u1"};
      const std::string type = types[pick(std::size(types))];
      const std::size_t size = type == "|u1" ? 1 : type == "<f4" || type == "<i4" ? 4 : 8;
      array.type = type;
      array.bytes.resize(count * size, 0);
      break;
    }
    case 6:  // removed
      archive.erase(it);
      break;
    default: {  // another array's content under this name
      const auto& other = std::next(archive.begin(), static_cast<std::ptrdiff_t>(pick(archive.size())))->second;
      array = snap::NpyArray(other);
    }
  }
}

}  // namespace

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t maxSize);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t maxSize,
                                               unsigned int seed) {
  std::minstd_rand random(seed);
  if (rawMutations || random() % 4 == 0) return LLVMFuzzerMutate(data, size, maxSize);
  std::vector<std::uint8_t> bytes;
  try {
    snap::NpzArchive archive;
    try {
      archive = snap::loadNpz(data, size, "fuzz input");
    } catch (const snap::FormatError&) {
      if (random() % 2 == 0) return LLVMFuzzerMutate(data, size, maxSize);
      const auto& checkpoints = targets().checkpoints();
      archive = checkpoints[random() % checkpoints.size()];
    }
    if (archive.empty()) return LLVMFuzzerMutate(data, size, maxSize);
    for (unsigned changes = 1 + random() % 3; changes > 0 && !archive.empty(); --changes) mutateArchive(archive, random);
    if (archive.count("format") != 0) {
      archive.erase("checksum");
      snap::putScalar<std::uint64_t>(archive, "checksum", snap::detail::checkpointChecksum(archive));
    }
    bytes = snap::encodeNpz(archive);
  } catch (const snap::FormatError&) {
    return LLVMFuzzerMutate(data, size, maxSize);
  }
  if (bytes.size() > maxSize) return LLVMFuzzerMutate(data, size, maxSize);
  std::memcpy(data, bytes.data(), bytes.size());
  return bytes.size();
}

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* folder = std::getenv("SNAP_FUZZ_SEEDS")) targets().seed(folder);
  rawMutations = std::getenv("SNAP_FUZZ_RAW") != nullptr;
  std::atexit([] {
    using Count = unsigned long long;
    std::fprintf(stderr, "fuzz_checkpoint: %llu inputs, %llu archives, %llu verified checkpoints, %llu of %llu "
                 "restores accepted\n", Count{progress.inputs}, Count{progress.archives}, Count{progress.verified},
                 Count{progress.accepted}, Count{6 * progress.verified});
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  ++progress.inputs;
  try {
    const snap::NpzArchive archive = snap::loadNpz(data, size, "fuzz input");
    ++progress.archives;
    const bool checksum = size > 0 && (data[size - 1] & 1U) != 0;
    snap::detail::verifyCheckpoint(archive, "fuzz input", checksum);
    ++progress.verified;
    targets().restore(archive);
  } catch (const snap::FormatError&) {
  }
  return 0;
}
