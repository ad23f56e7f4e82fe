// Truncated BPTT(T) driven by hand, without a Trainer: the engine, the readout and the
// optimizer as separate pieces (docs/math.md §3, §6). The state carries across windows of T steps; the
// gradient of each window is applied once the window is full. The same loop works for every
// engine (docs/design.md); the Trainer (docs/training.md) packages it.
//
//   truncated_bptt --window 16 --steps 300000

#include <snap/snap.hpp>

#include <cstdio>

#include "common/command_line.hpp"

int main(int argc, char** argv) {
  snap::examples::CommandLine line("truncated_bptt", "A GRU learns the copy task with truncated BPTT, by hand.");
  line.flag("window", "16", "T, the BPTT window and the update period");
  line.flag("hidden", "64", "hidden units H");
  line.flag("steps", "300000", "data time: input steps to train on");
  try {
    if (!line.parse(argc, argv)) return 0;
    const snap::Index window = line.integer("window", 1, 100000), hidden = line.integer("hidden", 1, 4096);
    const long long steps = line.integer("steps", 1, 1LL << 40);

    // snippet-begin: by-hand
    snap::CopyTask task({.seed = 1});
    snap::GRU<float> cell(task.inputSize(), hidden, {.recurrentDensity = 0.25, .seed = 1});
    snap::Readout<float> readout(hidden, task.outputSize(), 2);
    snap::BPTT<snap::GRU<float>> engine(cell, {.window = window});
    const snap::Adam adam{.learningRate = 0.003};
    snap::Adam::State<float> cellMoments(cell.parameterCount()), readoutMoments(readout.parameters().size());
    snap::Vector<float> input(task.inputSize()), delta(cell.stateSize()), theta(cell.parameterCount());
    snap::Vector<float> cellGradient, readoutGradient;
    snap::Index pending = 0;

    auto update = [&] {  // the window's gradient: clipped, then Adam on θ and on the readout
      cellGradient = engine.gradient();
      readoutGradient = readout.gradient();
      snap::clipGlobalNorm<float>(1.0, {&cellGradient, &readoutGradient});
      theta = cell.parameters();
      adam.update<float>(cellMoments, theta, cellGradient);
      cell.setParameters(theta);
      adam.update<float>(readoutMoments, readout.parameters(), readoutGradient);
      engine.resetGradient();
      readout.resetGradient();
      pending = 0;
    };

    while (task.dataTime() < steps) {
      const snap::CopySequence sequence = task.next();
      double lossBits = 0;
      for (snap::Index t = 0; t < sequence.steps(); ++t) {
        sequence.input(t, input);
        const snap::Vector<float>& state = engine.step(input);
        if (const int target = sequence.target(t); target >= 0) {
          lossBits += snap::Readout<float>::bits(readout.loss(state, target, delta));  // δ_t = ∂L_t/∂s_t
          engine.accumulate(delta);
        }
        if (++pending == window) update();
      }
      engine.resetState();  // a new sequence starts from s = 0 (the window closes)
      task.record(sequence, lossBits);
    }
    // snippet-end: by-hand
    std::printf("truncated BPTT(%ld): reached L = %ld after %lld steps of data (%lld sequences)\n",
                static_cast<long>(window), static_cast<long>(task.length()), task.dataTime(), task.sequences());
  } catch (const snap::examples::CommandLineError& error) {
    std::fprintf(stderr, "truncated_bptt: %s\n", error.message.c_str());
    return 2;
  }
  return 0;
}
