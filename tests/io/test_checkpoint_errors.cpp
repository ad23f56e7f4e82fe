// Checkpoint misuse: files and paths that are not checkpoints, and checkpoints that do not fit
// the trainer loading them. Each throws FormatError naming the file or the array (or ValueError
// for the caller's own array names), and a refused load changes nothing.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <string>

#include "../support/archive.hpp"
#include "../support/expect_error.hpp"
#include "../support/reference.hpp"
#include "../support/training.hpp"

namespace snap::test {
namespace {

/// A GRU trainer on the copy task with a few steps taken, for the checkpoint misuse tests.
template <class Engine>
struct TrainingRun {
  GRU<float> cell;
  Readout<float> readout;
  Trainer<Engine> trainer;
  CopyTask task{{.seed = 4}};
  TrainingRun(Index hidden, const typename Engine::Options& options, Index batch = 1, AnyOptimizer optimizer = Adam{})
      : cell(3, hidden, {.recurrentDensity = 0.5, .seed = 2}), readout(hidden, 2, 3),
        trainer(cell, readout, optimizer, {.batch = batch}, options) {
    const Vector<float> x = Vector<float>::Ones(3);
    for (int t = 0; t < 5; ++t) {
      observeEach(trainer, [&](Index) { return x; }, [&](Index) { return Index(t % 3 - 1); });
      trainer.endStep();
    }
  }
  NpzArchive state() const { return checkpointArrays(trainer, &task); }
};

std::string temporaryPath(const char* name) {
  return (::testing::TempDir() + "snap_errors_" + std::to_string(::getpid()) + "_" + name);
}

TEST(CheckpointErrors, FilesAndPaths) {
  TrainingRun<SnAp<GRU<float>>> run(4, {.n = 1});
  const NpzArchive before = run.state();
  expectError<FormatError>([&] { loadCheckpoint(temporaryPath("missing.npz"), run.trainer, &run.task); },
                           "checkpoint path");
  expectError<FormatError>([&] { saveCheckpoint("/nonexistent-folder/x.npz", run.trainer); }, "checkpoint path");
  NpzArchive extra;
  putScalar<std::int64_t>(extra, "trainer/mine", 1);
  expectError<ValueError>([&] { saveCheckpoint(temporaryPath("extra.npz"), run.trainer, nullptr, extra); }, "extra");
  // An .npz that is not a checkpoint, another version, a corrupted one.
  const std::string plain = temporaryPath("plain.npz");
  saveNpz(plain, run.state());
  expectError<FormatError>([&] { loadCheckpoint(plain, run.trainer, &run.task); }, plain);
  NpzArchive future = run.state();
  putText(future, "format", detail::checkpointFormat);
  putScalar<std::int64_t>(future, "version", checkpointVersion + 1);
  putScalar<std::uint64_t>(future, "checksum", detail::checkpointChecksum(future));
  saveNpz(plain, future);
  expectError<FormatError>([&] { loadCheckpoint(plain, run.trainer, &run.task); }, "array 'version'");
  NpzArchive damaged = run.state();
  putText(damaged, "format", detail::checkpointFormat);
  putScalar<std::int64_t>(damaged, "version", checkpointVersion);
  putScalar<std::uint64_t>(damaged, "checksum", detail::checkpointChecksum(damaged) ^ 1U);
  saveNpz(plain, damaged);
  expectError<FormatError>([&] { loadCheckpoint(plain, run.trainer, &run.task); }, "array 'checksum'");
  EXPECT_TRUE(sameArchive(run.state(), before));
  std::remove(plain.c_str());
}

TEST(CheckpointErrors, StatesThatDoNotFitTheTrainer) {
  // Each load is refused with the array that does not fit named, and changes nothing.
  const std::string path = temporaryPath("fit.npz");
  auto refused = [&](auto& target, const char* array) {
    const NpzArchive before = target.state();
    expectError<FormatError>([&] { loadCheckpoint(path, target.trainer, &target.task); }, array);
    EXPECT_TRUE(sameArchive(target.state(), before)) << "after refusing a load at " << array;
  };
  TrainingRun<SnAp<GRU<float>>> source(4, {.n = 1});
  saveCheckpoint(path, source.trainer, &source.task);
  TrainingRun<RTRL<GRU<float>>> rtrl(4, {});
  refused(rtrl, "array 'trainer/engine/engine'");
  TrainingRun<SnAp<GRU<float>>> larger(5, {.n = 1});
  refused(larger, "array 'trainer/cell/mask_ih'");
  TrainingRun<SnAp<GRU<float>>> snap2(4, {.n = 2});
  refused(snap2, "array 'trainer/engine/n'");
  TrainingRun<SnAp<GRU<float>>> batch2(4, {.n = 1}, 2);
  refused(batch2, "array 'trainer/batch'");
  TrainingRun<SnAp<GRU<float>>> sgd(4, {.n = 1}, 1, SGD{});
  refused(sgd, "array 'trainer/optimizer/kind'");
  TrainingRun<BPTT<GRU<float>>> window3(4, {.window = 3});
  saveCheckpoint(path, window3.trainer, &window3.task);
  TrainingRun<BPTT<GRU<float>>> window4(4, {.window = 4});
  refused(window4, "array 'trainer/engine/window'");
  // Another scalar type, and a task with another alphabet.
  GRU<double> cell(3, 4, {.recurrentDensity = 0.5, .seed = 2});
  Readout<double> readout(4, 2, 3);
  Trainer<BPTT<GRU<double>>> doubles(cell, readout, Adam{}, {}, {.window = 3});
  expectError<FormatError>([&] { loadCheckpoint(path, doubles); }, "array 'trainer/cell/weight_ih'");
  CopyTask letters({.alphabet = 4});
  expectError<FormatError>([&] { loadCheckpoint(path, window3.trainer, &letters); }, "array 'task/alphabet'");
  std::remove(path.c_str());
}

}  // namespace
}  // namespace snap::test
