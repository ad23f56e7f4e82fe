// libFuzzer target for the checkpoint loader (docs/reliability.md, "Fuzzing"): any bytes are
// parsed as an .npz (loadNpz), checked as a checkpoint (format, version and, for half of the
// inputs, the checksum, so that mutated files also reach the checks behind it), then restored
// into trainers of every engine and a copy task. Only snap::FormatError may come out; anything
// else (another exception, a sanitizer finding, a crash) is a bug. A refused load must leave
// the trainer exactly as it was.
//
// Built and run by tests/fuzz/run.sh with clang++ -fsanitize=fuzzer,address,undefined. With
// SNAP_FUZZ_SEEDS=folder set, it first writes its seed corpus (valid checkpoints) there.

#include <snap/snap.hpp>

#include <cstdint>
#include <cstdlib>
#include <cstdio>
#include <memory>
#include <string>

namespace {

using snap::Index;

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
    snap::Vector<float> x(task.inputSize());
    for (Index t = 0; t < 7; ++t) {
      for (Index b = 0; b < trainer.batch(); ++b) {
        x.setZero();
        x[(t + b) % x.size()] = 1;
        trainer.observe(b, x, t % 3 == 0 ? -1 : (t + b) % 2);
      }
      trainer.endStep();
    }
    task.record(task.next(), 0.5);
  }

  /// Restores `archive`; a refusal must be a FormatError that changed nothing.
  void restore(const snap::NpzArchive& archive) {
    const snap::NpzArchive before = snap::checkpointArrays(trainer, &task);
    try {
      snap::restoreCheckpoint(archive, trainer, &task);
    } catch (const snap::FormatError&) {
      if (!same(snap::checkpointArrays(trainer, &task), before)) {
        std::fprintf(stderr, "fuzz_checkpoint: a refused load changed the trainer\n");
        std::abort();
      }
    }
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

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* folder = std::getenv("SNAP_FUZZ_SEEDS")) targets().seed(folder);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const snap::NpzArchive archive = snap::loadNpz(data, size, "fuzz input");
    const bool checksum = size > 0 && (data[size - 1] & 1U) != 0;
    snap::detail::verifyCheckpoint(archive, "fuzz input", checksum);
    targets().restore(archive);
  } catch (const snap::FormatError&) {
  }
  return 0;
}
