// The C++ side of python/tools/overhead.py: the same training work as the Python calls it is
// compared with, timed in C++. Built by overhead.py with the module's flags (-O2, no -march).
//
//   overhead HIDDEN DENSITY N STEPS REPEATS
//
// Prints the median nanoseconds per step of Trainer::step and of SnAp::step + accumulate on a
// GRU (3 inputs, shared masks, seed 1) with SnAp-N, over STEPS steps, REPEATS times.

#include <snap/snap.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  return values[values.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: overhead HIDDEN DENSITY N STEPS REPEATS\n");
    return 2;
  }
  const snap::Index hidden = std::atol(argv[1]), steps = std::atol(argv[4]);
  const double density = std::atof(argv[2]);
  const int n = std::atoi(argv[3]), repeats = std::atoi(argv[5]);
  snap::RowMatrix<float> inputs(steps, 3);
  snap::Random random(5);
  for (snap::Index i = 0; i < inputs.size(); ++i) inputs.data()[i] = static_cast<float>(random.uniform(-1.0, 1.0));
  std::vector<double> trainerTimes, engineTimes;
  for (int repeat = 0; repeat < repeats; ++repeat) {
    snap::GRU<float> cell(3, hidden, {.recurrentDensity = density, .maskSharing = snap::MaskSharing::Shared, .seed = 1});
    snap::Readout<float> readout(hidden, 2, 2);
    snap::Trainer<snap::SnAp<snap::GRU<float>>> trainer(cell, readout, snap::Adam{.learningRate = 0.003},
                                                         {.clipNorm = 1.0}, {.n = n});
    auto start = Clock::now();
    for (snap::Index t = 0; t < steps; ++t) trainer.step(inputs.row(t).transpose(), t % 2);
    trainerTimes.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / steps);
    snap::SnAp<snap::GRU<float>> engine(cell, {.n = n});
    const snap::Vector<float> delta = snap::Vector<float>::Constant(cell.stateSize(), 0.01f);
    start = Clock::now();
    for (snap::Index t = 0; t < steps; ++t) {
      engine.step(inputs.row(t).transpose());
      engine.accumulate(delta);
    }
    engineTimes.push_back(std::chrono::duration<double, std::nano>(Clock::now() - start).count() / steps);
  }
  std::printf("%.1f %.1f\n", median(trainerTimes), median(engineTimes));
  return 0;
}
