/// @file
/// BPTT over whole sequences, the counterpart of a PyTorch forward + backward (compare_pytorch.py).
///
///     bptt_sequence CELL H BATCH STEPS REPS [DENSITY [THREADS]]
///
/// CELL is RNN, GRU or LSTM; input size 32, float, one thread unless THREADS. Each repetition
/// runs one BPTT engine over BATCH streams (snap::Batch) of STEPS-step sequences, with the loss
/// Σ_t Σ_i h_t[i] over every stream (δ_t = 1 on h, 0 on an LSTM's c), and reads the gradient at
/// the end. Prints the median over REPS of the time per sequence step (all BATCH streams
/// together), in microseconds.

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "snap/snap.hpp"

namespace {

using snap::Index;
using Scalar = float;
using Matrix = snap::Matrix<Scalar>;

constexpr Index kInputSize = 32;

template <class Cell>
double medianMicrosecondsPerStep(Index hidden, Index batch, Index steps, int reps, double density, int threads) {
  const Cell cell(kInputSize, hidden, {.inputDensity = 1.0, .recurrentDensity = density, .seed = 1});
  snap::BPTT<Cell> engine(cell, snap::BPTTOptions{.window = steps}, snap::Batch{.streams = batch, .threads = threads});
  snap::Random random(2);
  std::vector<Matrix> inputs(static_cast<std::size_t>(steps), Matrix(kInputSize, batch));
  for (auto& step : inputs)
    for (Index i = 0; i < step.size(); ++i) step.data()[i] = static_cast<Scalar>(random.uniform(-1, 1));
  Matrix delta = Matrix::Zero(cell.stateSize(), batch);
  delta.topRows(hidden).setOnes();

  Scalar checksum = 0;
  std::vector<double> perStep;
  for (int rep = -1; rep < reps; ++rep) {  // rep −1 warms up
    const auto start = std::chrono::steady_clock::now();
    for (Index t = 0; t < steps; ++t) {
      engine.step(inputs[static_cast<std::size_t>(t)]);
      engine.accumulate(delta);
    }
    checksum += engine.gradient()[0];
    // This order keeps the window's backward pass done by gradient(): resetGradient() before
    // resetState() would make resetState() backpropagate the window a second time.
    engine.resetState();
    engine.resetGradient();
    const auto stop = std::chrono::steady_clock::now();
    if (rep >= 0)
      perStep.push_back(std::chrono::duration<double, std::micro>(stop - start).count() / static_cast<double>(steps));
  }
  if (!(checksum == checksum)) std::fprintf(stderr, "warning: non-finite gradient\n");
  std::nth_element(perStep.begin(), perStep.begin() + static_cast<long>(perStep.size() / 2), perStep.end());
  return perStep[perStep.size() / 2];
}

int usage(const char* program) {
  std::fprintf(stderr, "usage: %s CELL(RNN|GRU|LSTM) H BATCH STEPS REPS [DENSITY=1 [THREADS=1]]\n", program);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 6 || argc > 8) return usage(argv[0]);
  const std::string cell = argv[1];
  const Index hidden = std::atol(argv[2]), batch = std::atol(argv[3]), steps = std::atol(argv[4]);
  const int reps = std::atoi(argv[5]);
  const double density = argc >= 7 ? std::atof(argv[6]) : 1.0;
  const int threads = argc == 8 ? std::atoi(argv[7]) : 1;
  if (hidden < 1 || batch < 1 || steps < 1 || reps < 1 || !(density > 0 && density <= 1) || threads < 1)
    return usage(argv[0]);
  Eigen::setNbThreads(1);
  try {
    double microseconds = 0;
    if (cell == "RNN")
      microseconds = medianMicrosecondsPerStep<snap::RNN<Scalar>>(hidden, batch, steps, reps, density, threads);
    else if (cell == "GRU")
      microseconds = medianMicrosecondsPerStep<snap::GRU<Scalar>>(hidden, batch, steps, reps, density, threads);
    else if (cell == "LSTM")
      microseconds = medianMicrosecondsPerStep<snap::LSTM<Scalar>>(hidden, batch, steps, reps, density, threads);
    else
      return usage(argv[0]);
    std::printf("%.3f\n", microseconds);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "bptt_sequence: %s\n", error.what());
    return 1;
  }
  return 0;
}
