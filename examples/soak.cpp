// Soak run (docs/reliability.md, "Soak"): 10⁶ online steps of SnAp-1 and of UORO on a GRU,
// trained with Adam on the copy task, reporting that resident memory (/proc/self/statm) stays
// flat and that every value stays finite. Ten times along the way the whole training state is
// saved with saveState() and every array checked, and a checkpoint is written and loaded back
// (which must change nothing), so that the I/O path soaks too. Not a test: run it by hand.
//
//   soak --hidden 128 --steps 1000000

#include <snap/snap.hpp>

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "common/command_line.hpp"

namespace {

using snap::Index;

/// Resident memory in KiB, from /proc/self/statm (second field, in pages), after glibc has
/// returned its free heap memory to the system: what is live, not what the allocator keeps.
long residentKiB() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
  std::ifstream statm("/proc/self/statm");
  long size = 0, resident = 0;
  statm >> size >> resident;
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/// True when every floating-point value of every array is finite.
bool allFinite(const snap::NpzArchive& archive, std::string& first) {
  for (const auto& [name, array] : archive) {
    bool finite = true;
    if (array.type == "<f4")
      for (float value : array.values<float>(name)) finite = finite && std::isfinite(value);
    else if (array.type == "<f8")
      for (double value : array.values<double>(name)) finite = finite && std::isfinite(value);
    if (!finite) {
      first = name;
      return false;
    }
  }
  return true;
}

struct Options {
  Index hidden = 128;
  double density = 0.25;
  long long steps = 1000000;
  std::string checkpoint;
};

/// One engine's soak; returns true when memory stayed flat (from 10 % of the steps on: the first
/// samples include the allocator's and the checkpoint path's first use) and every value finite.
template <class Engine>
bool soak(const char* name, const Options& options, const typename Engine::Options& engineOptions) {
  using Cell = typename Engine::CellType;
  snap::CopyTask task({.seed = 1});
  Cell cell(task.inputSize(), options.hidden,
            {.recurrentDensity = options.density, .maskSharing = snap::MaskSharing::Shared, .seed = 1});
  snap::Readout<float> readout(options.hidden, task.outputSize(), 2);
  snap::Trainer<Engine> trainer(cell, readout, snap::Adam{.learningRate = 0.003},
                                {.clipNorm = 1.0, .nonFinite = snap::NonFinitePolicy::Skip}, engineOptions);
  std::printf("%s: GRU H = %ld, recurrent density %g, %ld parameters, %lld online steps\n", name,
              static_cast<long>(options.hidden), options.density, static_cast<long>(cell.parameterCount()),
              options.steps);
  std::printf("  %9s %4s %10s %9s %8s\n", "step", "L", "loss bits", "RSS KiB", "finite");

  snap::Vector<float> input(task.inputSize());
  snap::CopySequence sequence = task.next();
  Index t = 0;
  double lossBits = 0;
  bool finite = true;
  long warmResident = 0, largest = 0;
  const auto start = std::chrono::steady_clock::now();
  for (long long step = 1; step <= options.steps; ++step) {
    sequence.input(t, input);
    lossBits += snap::Readout<float>::bits(trainer.step(input, sequence.target(t)));
    if (++t == sequence.steps()) {
      trainer.resetStream(0);
      task.record(sequence, lossBits);
      sequence = task.next();
      t = 0;
      lossBits = 0;
    }
    if (step == options.steps / 100 || step % (options.steps / 10) == 0) {
      const long resident = residentKiB();
      if (step == options.steps / 10) warmResident = resident;
      if (step > options.steps / 10) largest = std::max(largest, resident);
      std::string where;
      const bool ok = allFinite(snap::checkpointArrays(trainer, &task), where);
      finite = finite && ok;
      // A checkpoint written and loaded back: the run goes on from the same state.
      snap::saveCheckpoint(options.checkpoint, trainer, &task);
      snap::loadCheckpoint(options.checkpoint, trainer, &task);
      std::printf("  %9lld %4ld %10.3f %9ld %8s\n", step, static_cast<long>(task.length()),
                  task.curriculum().recentLoss(), resident, ok ? "yes" : ("NO: " + where).c_str());
      std::fflush(stdout);
    }
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const long growth = largest - warmResident;
  const bool flat = growth <= 256;  // KiB: allocator noise (the copy task's sequences grow with L), no leak
  std::printf("  %s: %lld steps in %.1f s (%.1f us/step); RSS %ld KiB after 10%% of the steps, at most %ld KiB "
              "after (growth %ld KiB: %s); every value finite: %s; non-finite skips: %lld\n",
              name, options.steps, seconds, 1e6 * seconds / static_cast<double>(options.steps), warmResident, largest,
              growth, flat ? "flat" : "GROWING", finite ? "yes" : "NO", trainer.skipped());
  return flat && finite && trainer.skipped() == 0;
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line("soak",
                                   "10^6 online steps of SnAp-1 and of UORO on a GRU (copy task, Adam): resident memory\n"
                                   "stays flat and every value finite (docs/reliability.md).");
  line.flag("hidden", "128", "hidden units H");
  line.flag("density", "0.25", "recurrent weight density, in (0, 1]");
  line.flag("steps", "1000000", "online steps per engine (at least 100)");
  line.flag("checkpoint", "/tmp/snap_soak.npz", "where the checkpoints along the way are written");
  try {
    if (!line.parse(argc, argv)) return 0;
    Options options;
    options.hidden = line.integer("hidden", 1, 100000);
    options.density = line.number("density", 1e-9, 1.0);
    options.steps = line.integer("steps", 100, 1000000000000LL);
    options.checkpoint = line.text("checkpoint");
    const bool snap1 = soak<snap::SnAp<snap::GRU<float>>>("SnAp-1", options, {.n = 1});
    const bool uoro = soak<snap::UORO<snap::GRU<float>>>("UORO", options, {.seed = 3});
    std::remove(options.checkpoint.c_str());
    std::printf("soak: %s\n", snap1 && uoro ? "passed (memory flat, every value finite)" : "FAILED");
    return snap1 && uoro ? 0 : 1;
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "soak: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "soak: %s\n", error.what());
    return 1;
  }
}
