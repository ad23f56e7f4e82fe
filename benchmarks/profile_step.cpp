/// Runs online steps of one engine on a dense or sparse cell (H = 512, input 32, float) for a
/// profiler: under callgrind, collect only the steps with --toggle-collect='*runSteps*'.
///
///   profile_step CELL ENGINE [DENSITY]     CELL: gru | lstm, ENGINE: snap1 | bptt
///
/// SnAp-1 runs 4 warm-up steps and 256 measured ones (260 collected); BPTT with windows of 128
/// reads its gradient once per window and runs one warm-up window and two measured ones (384
/// collected). docs/performance.md shows the counts per step and the command.
#include <snap/snap.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace {

using Scalar = float;
using Vector = snap::Vector<Scalar>;
constexpr snap::Index kWindow = 128;

/// The collected region: `steps` online steps; a windowed engine's gradient is read per window.
template <class Engine>
__attribute__((noinline)) void runSteps(Engine& engine, const Vector& x, const Vector& delta, int steps,
                                        bool windowed) {
  for (int t = 0; t < steps; ++t) {
    engine.step(x);
    engine.accumulate(delta);
    if (windowed && (t + 1) % kWindow == 0) {
      volatile Scalar first = engine.gradient()[0];
      (void)first;
      engine.resetGradient();
    }
  }
}

template <class Cell, class Engine, class Options>
void profile(const std::string& name, const Options& options, bool windowed, double density) {
  const Cell cell(32, 512, snap::CellOptions{.inputDensity = 1.0, .recurrentDensity = density,
                                             .maskSharing = snap::MaskSharing::Shared, .seed = 1});
  Engine engine(cell, options);
  snap::Random random(2);
  Vector x(cell.inputSize());
  Vector delta = Vector::Zero(cell.stateSize());
  for (snap::Index i = 0; i < x.size(); ++i) x[i] = static_cast<Scalar>(random.uniform(-1, 1));
  for (snap::Index i = 0; i < cell.hiddenSize(); ++i) delta[i] = static_cast<Scalar>(random.uniform(-1, 1));
  const int warmUp = windowed ? kWindow : 4;
  const int steps = 256;
  runSteps(engine, x, delta, warmUp, windowed);
  runSteps(engine, x, delta, steps, windowed);
  std::printf("%s: H = 512, density %g, p = %lld, %d steps collected\n", name.c_str(), density,
              static_cast<long long>(cell.parameterCount()), warmUp + steps);
}

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr, "profile_step: %s\nusage: profile_step gru|lstm snap1|bptt [density in (0, 1]]\n",
               problem.c_str());
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3 || argc > 4) usage("expected 2 or 3 arguments, got " + std::to_string(argc - 1));
  const std::string cell = argv[1];
  const std::string engine = argv[2];
  const double density = argc == 4 ? std::atof(argv[3]) : 1.0;
  if (!(density > 0 && density <= 1)) usage(std::string("density: expected a value in (0, 1], got ") + argv[3]);
  const snap::SnApOptions snap1{.n = 1};
  const snap::BPTTOptions bptt{.window = kWindow};
  const std::string name = cell + "/" + engine;
  if (cell == "gru" && engine == "snap1")
    profile<snap::GRU<Scalar>, snap::SnAp<snap::GRU<Scalar>>>(name, snap1, false, density);
  else if (cell == "gru" && engine == "bptt")
    profile<snap::GRU<Scalar>, snap::BPTT<snap::GRU<Scalar>>>(name, bptt, true, density);
  else if (cell == "lstm" && engine == "snap1")
    profile<snap::LSTM<Scalar>, snap::SnAp<snap::LSTM<Scalar>>>(name, snap1, false, density);
  else if (cell == "lstm" && engine == "bptt")
    profile<snap::LSTM<Scalar>, snap::BPTT<snap::LSTM<Scalar>>>(name, bptt, true, density);
  else
    usage("cell and engine: expected gru|lstm and snap1|bptt, got " + cell + " " + engine);
}
