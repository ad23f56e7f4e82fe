// A cell of your own (docs/custom-cell.md): the minimal gated unit of
// custom_cell/minimal_gated_unit.hpp, defined outside the library, works with every engine.
// First a check in double precision that RTRL and BPTT give it the same gradient (the
// exactness test of docs/math.md §3; tests/cells/test_custom_cell.cpp runs the full battery), then
// online training on the copy task with SnAp-2, and saving the trained cell in a weights file.
//
//   custom_cell --hidden 32 --steps 300000 --save unit.npz

#include <snap/io/weights.hpp>
#include <snap/snap.hpp>

#include <cstdio>
#include <string>
#include <string_view>

#include "common/command_line.hpp"
#include "common/copy_task_loop.hpp"
#include "custom_cell/minimal_gated_unit.hpp"

static_assert(snap::Cell<custom::MinimalGatedUnit<float>>);

// snippet-begin: name
namespace snap {
/// The name weights files store for the minimal gated unit (snap::saveWeights, loadWeights).
template <class Scalar>
struct CellTypeName<custom::MinimalGatedUnit<Scalar>> {
  static constexpr std::string_view value = "minimal_gated_unit";
};
}  // namespace snap
// snippet-end: name

namespace {

/// ‖g_RTRL − g_BPTT‖ / ‖g_BPTT‖ over 30 random steps of a sparse unit in double precision.
double rtrlVersusBptt() {
  const custom::MinimalGatedUnit<double> cell(3, 8, {.recurrentDensity = 0.25, .seed = 5});
  snap::RTRL<custom::MinimalGatedUnit<double>> rtrl(cell);
  snap::BPTT<custom::MinimalGatedUnit<double>> bptt(cell);
  snap::Random random(6);
  snap::Vector<double> input(3), delta(cell.stateSize());
  for (int t = 0; t < 30; ++t) {
    for (snap::Index i = 0; i < input.size(); ++i) input[i] = random.uniform(-1, 1);
    for (snap::Index i = 0; i < delta.size(); ++i) delta[i] = random.uniform(-1, 1);
    rtrl.step(input);
    bptt.step(input);
    rtrl.accumulate(delta);
    bptt.accumulate(delta);
  }
  return (rtrl.gradient() - bptt.gradient()).norm() / bptt.gradient().norm();
}

}  // namespace

int main(int argc, char** argv) {
  snap::examples::CommandLine line("custom_cell", "A user-defined gated cell, trained online with SnAp-2.");
  line.flag("hidden", "32", "hidden units H");
  line.flag("steps", "300000", "data time: input steps to train on");
  line.flag("save", "", "save the trained cell and readout to this .npz file, and load them back");
  try {
    if (!line.parse(argc, argv)) return 0;
    const double difference = rtrlVersusBptt();
    std::printf("minimal gated unit: RTRL vs BPTT gradient, relative difference %.1e\n", difference);
    if (!(difference < 1e-10)) return 1;

    const snap::Index hidden = line.integer("hidden", 1, 4096);
    snap::CopyTask task({.seed = 1});
    custom::MinimalGatedUnit<float> cell(task.inputSize(), hidden,
                                         {.recurrentDensity = 0.25, .maskSharing = snap::MaskSharing::Shared, .seed = 1});
    snap::Readout<float> readout(hidden, task.outputSize(), 2);
    snap::Trainer<snap::SnAp<custom::MinimalGatedUnit<float>>> trainer(cell, readout, snap::Adam{.learningRate = 0.003},
                                                                       {.clipNorm = 1.0}, {.n = 2});
    const snap::Index length = snap::examples::trainCopyTask(trainer, task, line.integer("steps", 1, 1LL << 40));
    std::printf("minimal gated unit, H = %ld, p = %ld: reached L = %ld\n", static_cast<long>(hidden),
                static_cast<long>(cell.parameterCount()), static_cast<long>(length));
    if (const std::string path = line.text("save"); !path.empty()) {
      snap::saveWeights(path, cell, readout);
      custom::MinimalGatedUnit<float> loaded(task.inputSize(), hidden);
      snap::Readout<float> loadedReadout(hidden, task.outputSize());
      snap::loadWeights(path, loaded, loadedReadout);
      const bool same = loaded.parameters() == cell.parameters() && loaded.mask_hh() == cell.mask_hh() &&
                        loadedReadout.parameters() == readout.parameters();
      std::printf("saved to %s and loaded back: %s\n", path.c_str(), same ? "identical" : "DIFFERENT");
      if (!same) return 1;
    }
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "custom_cell: %s\n", error.message.c_str());
    return 2;
  } catch (const snap::Error& error) {
    std::fprintf(stderr, "custom_cell: %s\n", error.what());
    return 1;
  }
  return 0;
}
