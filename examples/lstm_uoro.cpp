// An LSTM trained online with UORO (docs/math.md §5), next to SnAp-1 on the same copy-task data. UORO
// keeps a rank-one estimate of the influence matrix, k + p numbers; SnAp-1 keeps the influence
// on each parameter's home unit only, about 2p numbers for an LSTM (docs/math.md §4). The paper finds
// SnAp-1 learns faster at equal cost.
//
//   lstm_uoro --hidden 32 --steps 300000

#include <snap/snap.hpp>

#include <cstdio>

#include "common/command_line.hpp"
#include "common/copy_task_loop.hpp"

namespace {

/// Trains a fresh LSTM (same seeds for every engine) and returns the curriculum length reached.
template <class Engine>
snap::Index train(const char* name, snap::Index hidden, long long steps, const typename Engine::Options& options) {
  snap::CopyTask task({.seed = 1});
  snap::LSTM<float> cell(task.inputSize(), hidden, {.seed = 1});
  snap::Readout<float> readout(hidden, task.outputSize(), 2);
  snap::Trainer<Engine> trainer(cell, readout, snap::Adam{.learningRate = 0.003}, {.clipNorm = 1.0}, options);
  std::printf("%s: k = %ld, p = %ld, engine memory %.1f KiB\n", name, static_cast<long>(cell.stateSize()),
              static_cast<long>(cell.parameterCount()), static_cast<double>(trainer.engine().bytes()) / 1024.0);
  return snap::examples::trainCopyTask(trainer, task, steps, 5);
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line("lstm_uoro", "An LSTM learns the copy task online with UORO, then with SnAp-1.");
  line.flag("hidden", "32", "hidden units H");
  line.flag("steps", "300000", "data time per engine: input steps to train on");
  try {
    if (!line.parse(argc, argv)) return 0;
    const snap::Index hidden = line.integer("hidden", 1, 4096);
    const long long steps = line.integer("steps", 1, 1LL << 40);
    const snap::Index uoro = train<snap::UORO<snap::LSTM<float>>>("UORO", hidden, steps, {.seed = 3});
    const snap::Index snap1 = train<snap::SnAp<snap::LSTM<float>>>("SnAp-1", hidden, steps, {.n = 1});
    std::printf("after %lld steps of data: UORO reached L = %ld, SnAp-1 L = %ld\n", steps, static_cast<long>(uoro),
                static_cast<long>(snap1));
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "lstm_uoro: %s\n", error.message.c_str());
    return 2;
  }
  return 0;
}
