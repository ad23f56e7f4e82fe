#pragma once
// A small deterministic training run shared by the checkpoint tests and the resume helper: a
// trainer over B streams with Adam, fed input(t, b) and target(t, b) that depend on the step
// only, with unscored steps and stream restarts, so that a run can be cut anywhere and resumed.

#include <snap/snap.hpp>

#include <cstdint>
#include <vector>

namespace snap::test {

/// One batch step of `trainer` from per-stream functions: input(b), a vector, and target(b).
/// Returns the summed loss.
template <class TrainerType, class Input, class Target>
typename TrainerType::Scalar observeEach(TrainerType& trainer, Input&& input, Target&& target) {
  using Scalar = typename TrainerType::Scalar;
  const Index batch = trainer.batch();
  Matrix<Scalar> inputs(trainer.engine().cell().inputSize(), batch);
  std::vector<Index> targets(static_cast<std::size_t>(batch));
  for (Index b = 0; b < batch; ++b) {
    inputs.col(b) = input(b);
    targets[static_cast<std::size_t>(b)] = target(b);
  }
  return trainer.observe(inputs, targets);
}

template <class Engine>
struct Training {
  using Cell = typename Engine::CellType;
  using Scalar = typename Engine::Scalar;
  Cell cell;
  Readout<Scalar> readout;
  Trainer<Engine> trainer;

  Training(const typename Engine::Options& options, const TrainerOptions& trainerOptions, std::uint64_t maskSeed = 31)
      : cell(3, 6, {.recurrentDensity = 0.5, .seed = maskSeed}), readout(6, 3, 32),
        trainer(cell, readout, Adam{.learningRate = 0.02}, trainerOptions, options) {}

  /// x_t of stream b: uniform in [−1, 1), a function of (t, b) only.
  static Vector<Scalar> input(Index t, Index b) {
    Random random(static_cast<std::uint64_t>(1000 * t + b));
    Vector<Scalar> x(3);
    for (Index i = 0; i < 3; ++i) x[i] = static_cast<Scalar>(random.uniform(-1.0, 1.0));
    return x;
  }
  /// The target of step t on stream b; −1 (unscored) every fourth step.
  static Index target(Index t, Index b) { return (t + b) % 4 == 0 ? -1 : (t * 7 + b) % 3; }

  /// Batch steps [from, to): stream b restarts every 7 + b steps; on the per-sequence schedule
  /// every stream's sequence ends every 10 steps.
  void run(Index from, Index to) {
    for (Index t = from; t < to; ++t) {
      observeEach(trainer, [&](Index b) { return input(t, b); }, [&](Index b) { return target(t, b); });
      for (Index b = 0; b < trainer.batch(); ++b)
        if ((t + 1) % (7 + b) == 0) trainer.resetStream(b);
      trainer.endStep();
      if (trainer.options().schedule == UpdateSchedule::PerSequence && t % 10 == 9) trainer.endSequence();
    }
  }
};

}  // namespace snap::test
