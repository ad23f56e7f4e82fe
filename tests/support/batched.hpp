#pragma once
// The batch as a dimension of every engine (docs/design.md, "Batches and threads"): one engine
// advancing B streams equals B single-stream engines on the same streams, and its results are
// bit-identical for every thread count. Each engine's test file instantiates these checks.

#include <gtest/gtest.h>

#include <snap/snap.hpp>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace snap::test::batched {

/// How a run drives the streams: which step each stream resets after, and which of its state
/// gradients are zero (an unscored step).
struct Schedule {
  int steps = 23;
  /// Stream b starts a new sequence after step t when this is true (b = 0 never, so the batch
  /// also runs one stream through the whole run).
  std::function<bool(Index stream, int step)> resets = [](Index stream, int step) {
    return stream > 0 && step % static_cast<int>(3 + 2 * stream) == static_cast<int>(stream);
  };
  /// The gradient is read, compared, and reset after this step (-1: never).
  int resetGradientAfter = 11;
};

/// What one batched run saw: the states after every step and the gradients read.
template <class Scalar>
struct Trace {
  std::vector<Matrix<Scalar>> states;
  std::vector<Vector<Scalar>> gradients;
};

/// The inputs and state gradients of step t (m × B and k × B), drawn from `seed` and t alone so
/// that every run sees the same streams; stream b's gradient is zero on every (b + 2)-th step.
template <class Scalar>
void drawStep(std::uint64_t seed, int step, Index inputs, Index states, Index streams, Matrix<Scalar>& x,
              Matrix<Scalar>& delta) {
  Random random(seed * 1000003u + static_cast<std::uint64_t>(step));
  x.resize(inputs, streams);
  delta.resize(states, streams);
  for (Index i = 0; i < x.size(); ++i) x(i) = static_cast<Scalar>(random.uniform(-1, 1));
  for (Index i = 0; i < delta.size(); ++i) delta(i) = static_cast<Scalar>(random.uniform(-1, 1));
  for (Index b = 0; b < streams; ++b)
    if ((step + 1) % static_cast<int>(b + 2) == 0) delta.col(b).setZero();
}

/// Runs one engine of B streams with `threads` threads through the schedule.
template <class EngineType>
Trace<typename EngineType::Scalar> runBatched(const typename EngineType::CellType& cell,
                                              const typename EngineType::Options& options, Index streams, int threads,
                                              const Schedule& schedule, std::uint64_t seed) {
  using Scalar = typename EngineType::Scalar;
  EngineType engine(cell, options, Batch{.streams = streams, .threads = threads});
  Trace<Scalar> trace;
  Matrix<Scalar> x, delta;
  for (int t = 0; t < schedule.steps; ++t) {
    drawStep(seed, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
    trace.states.push_back(engine.step(x));
    engine.accumulate(delta);
    if (t == schedule.resetGradientAfter) {
      trace.gradients.push_back(engine.gradient());
      engine.resetGradient();
    }
    for (Index b = 0; b < streams; ++b)
      if (schedule.resets(b, t)) engine.resetStream(b);
  }
  trace.gradients.push_back(engine.gradient());
  return trace;
}

/// The same streams through B single-stream engines (stream b with `optionsOf(b)`), resetting
/// stream b's engine where the batch resets stream b; the gradients are summed over streams.
template <class EngineType>
Trace<typename EngineType::Scalar> runSingles(const typename EngineType::CellType& cell,
                                              const std::function<typename EngineType::Options(Index)>& optionsOf,
                                              Index streams, const Schedule& schedule, std::uint64_t seed) {
  using Scalar = typename EngineType::Scalar;
  std::vector<EngineType> engines;
  for (Index b = 0; b < streams; ++b) engines.emplace_back(cell, optionsOf(b));
  Trace<Scalar> trace;
  Matrix<Scalar> x, delta;
  auto sum = [&] {
    Vector<Scalar> total = Vector<Scalar>::Zero(cell.parameterCount());
    for (EngineType& engine : engines) total += engine.gradient();
    return total;
  };
  for (int t = 0; t < schedule.steps; ++t) {
    drawStep(seed, t, cell.inputSize(), cell.stateSize(), streams, x, delta);
    Matrix<Scalar> states(cell.stateSize(), streams);
    for (Index b = 0; b < streams; ++b) {
      EngineType& engine = engines[static_cast<std::size_t>(b)];
      const Vector<Scalar> input = x.col(b);
      states.col(b) = engine.step(input);
      const Vector<Scalar> stateGradient = delta.col(b);
      engine.accumulate(stateGradient);
    }
    trace.states.push_back(states);
    if (t == schedule.resetGradientAfter) {
      trace.gradients.push_back(sum());
      for (EngineType& engine : engines) engine.resetGradient();
    }
    for (Index b = 0; b < streams; ++b)
      if (schedule.resets(b, t)) engines[static_cast<std::size_t>(b)].resetState();
  }
  trace.gradients.push_back(sum());
  return trace;
}

/// ‖a − b‖ / max(‖b‖, tiny), column by column for states.
template <class M>
double relativeDistance(const M& a, const M& b) {
  const double scale = std::max(static_cast<double>(b.norm()), 1e-300);
  return static_cast<double>((a - b).norm()) / scale;
}

/// Batched (B streams, 1 and 2 threads) against B single-stream engines: states after every
/// step and every gradient read within `tolerance` (relative), and the 2-thread run
/// bit-identical to the 1-thread one.
template <class EngineType>
void expectBatchedEqualsSingles(const typename EngineType::CellType& cell, const typename EngineType::Options& options,
                                const std::function<typename EngineType::Options(Index)>& optionsOf, Index streams,
                                double tolerance, const Schedule& schedule = {}, std::uint64_t seed = 7) {
  const auto batched = runBatched<EngineType>(cell, options, streams, 1, schedule, seed);
  const auto threaded = runBatched<EngineType>(cell, options, streams, 2, schedule, seed);
  const auto singles = runSingles<EngineType>(cell, optionsOf, streams, schedule, seed);
  ASSERT_EQ(batched.states.size(), singles.states.size());
  for (std::size_t t = 0; t < batched.states.size(); ++t)
    for (Index b = 0; b < streams; ++b)
      ASSERT_LE(relativeDistance(batched.states[t].col(b), singles.states[t].col(b)), tolerance)
          << "state of stream " << b << " after step " << t;
  ASSERT_EQ(batched.gradients.size(), singles.gradients.size());
  for (std::size_t i = 0; i < batched.gradients.size(); ++i) {
    ASSERT_GT(singles.gradients[i].norm(), 0.0) << "gradient read " << i << " is zero: the check could not fail";
    EXPECT_LE(relativeDistance(batched.gradients[i], singles.gradients[i]), tolerance) << "gradient read " << i;
  }
  for (std::size_t t = 0; t < batched.states.size(); ++t)
    ASSERT_TRUE(threaded.states[t] == batched.states[t]) << "2 threads: states after step " << t << " differ";
  for (std::size_t i = 0; i < batched.gradients.size(); ++i)
    EXPECT_TRUE(threaded.gradients[i] == batched.gradients[i]) << "2 threads: gradient read " << i << " differs";
}

/// The cells every batched check runs on: each built-in cell with per-gate and shared masks at
/// two recurrent densities.
template <class CellType>
std::vector<CellType> cellsToCheck(Index inputs, Index hidden) {
  std::vector<CellType> cells;
  std::uint64_t seed = 40;
  for (MaskSharing sharing : {MaskSharing::PerGate, MaskSharing::Shared})
    for (double density : {1.0, 0.4})
      cells.emplace_back(inputs, hidden,
                         CellOptions{.inputDensity = density, .recurrentDensity = density, .maskSharing = sharing,
                                     .seed = seed++});
  return cells;
}

inline std::string describeCell(MaskSharing sharing, double density) {
  return std::string(sharing == MaskSharing::Shared ? "shared" : "per-gate") + " masks, density " +
         std::to_string(density);
}

}  // namespace snap::test::batched
