#pragma once
// The copy-task training loop the gallery examples share (docs/math.md §7, docs/copy-task.md): one
// stream, one sequence at a time, the trainer's schedule deciding when to update.

#include <snap/snap.hpp>

#include <cstdio>

namespace snap::examples {

/// Trains on copy-task sequences until `dataTime` input steps have been consumed, printing the
/// curriculum length L and the recent loss about `reports` times. Returns L reached.
// snippet-begin: loop
template <class TrainerType>
Index trainCopyTask(TrainerType& trainer, CopyTask& task, long long dataTime, int reports = 10) {
  using Scalar = typename TrainerType::Scalar;
  Vector<Scalar> input(task.inputSize());
  long long nextReport = 0;
  while (task.dataTime() < dataTime) {
    const CopySequence sequence = task.next();
    double lossBits = 0;  // summed over the recall steps
    for (Index t = 0; t < sequence.steps(); ++t) {
      sequence.input(t, input);
      lossBits += Readout<Scalar>::bits(trainer.step(input, sequence.target(t)));  // target −1: unscored
    }
    trainer.endSequence();  // per-sequence schedule: update; always: reset state and influence
    task.record(sequence, lossBits);
    if (task.dataTime() >= nextReport) {
      std::printf("data time %8lld  L %3ld  recent loss %.3f bits/step\n", task.dataTime(),
                  static_cast<long>(task.length()), task.curriculum().recentLoss());
      nextReport += dataTime / reports;
    }
  }
  return task.length();
}
// snippet-end: loop

}  // namespace snap::examples
