// A sparse GRU trained online with SnAp-2 on the copy task (docs/math.md §4, §7). Nine tenths of the
// recurrent weights are masked, with one mask shared by the three gate blocks, so that the
// dynamics graph keeps density 0.1 and SnAp-2 keeps a small part of RTRL's influence matrix.
//
//   sparse_gru_snap2 --hidden 64 --steps 300000 --save model.npz

#include <snap/io/weights.hpp>
#include <snap/snap.hpp>

#include <cstdio>
#include <string>

#include "common/command_line.hpp"
#include "common/copy_task_loop.hpp"

int main(int argc, char** argv) {
  snap::examples::CommandLine line("sparse_gru_snap2", "A sparse GRU learns the copy task online with SnAp-2.");
  line.flag("hidden", "64", "hidden units H");
  line.flag("density", "0.1", "recurrent weight density");
  line.flag("steps", "300000", "data time: input steps to train on");
  line.flag("save", "", "save the trained cell and readout to this .npz file (snap::saveWeights)");
  try {
    if (!line.parse(argc, argv)) return 0;
    const snap::Index hidden = line.integer("hidden", 1, 4096);
    const double density = line.number("density", 1e-3, 1.0);

    snap::CopyTask task({.seed = 1});
    snap::GRU<float> cell(task.inputSize(), hidden,
                          {.recurrentDensity = density, .maskSharing = snap::MaskSharing::Shared, .seed = 1});
    snap::Readout<float> readout(hidden, task.outputSize(), 2);
    snap::Trainer<snap::SnAp<snap::GRU<float>>> trainer(cell, readout, snap::Adam{.learningRate = 0.003},
                                                        {.clipNorm = 1.0}, {.n = 2});

    const double rtrl = static_cast<double>(cell.stateSize()) * static_cast<double>(cell.parameterCount());
    const auto kept = static_cast<double>(trainer.engine().pattern().keptEntries());
    std::printf("GRU H = %ld, recurrent density %g (shared masks): p = %ld parameters\n", static_cast<long>(hidden),
                density, static_cast<long>(cell.parameterCount()));
    std::printf("SnAp-2 keeps %.0f influence entries, %.1f %% of RTRL's k·p = %.0f (%.0f KiB)\n", kept,
                100.0 * kept / rtrl, rtrl, static_cast<double>(trainer.engine().bytes()) / 1024.0);

    const snap::Index length = snap::examples::trainCopyTask(trainer, task, line.integer("steps", 1, 1LL << 40));
    std::printf("reached L = %ld with %lld updates\n", static_cast<long>(length), trainer.updates());
    if (const std::string path = line.text("save"); !path.empty()) {
      snap::saveWeights(path, cell, readout);  // PyTorch's layout: examples/pytorch/import_to_torch.py reads it
      std::printf("saved the trained GRU and readout to %s\n", path.c_str());
    }
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "sparse_gru_snap2: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "sparse_gru_snap2: %s\n", error.what());
    return 1;
  }
  return 0;
}
