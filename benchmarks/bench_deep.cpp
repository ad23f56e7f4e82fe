/// @file
/// Per-step cost of the deep and linear-recurrent pieces: stacks of layers (snap::Stack) under
/// every engine, SnAp's joint and per-layer modes, e-prop, rolling BPTT(L), the LRU alone and
/// stacked, and the leaky RNN with RFLO (docs/math.md §8–§9). One online step,
/// `engine.step(x); engine.accumulate(δ);` with δ over the output (o rows), float, batch 1, one
/// thread, with counters for p, the engine's bytes and the kept influence entries.
///
///     bench_deep [--quick] [--max_step_seconds=S] [Google Benchmark flags]
///
/// --quick runs a representative subset (under a minute); benchmarks/README.md ("bench_deep")
/// lists the cases, the counters and the measured medians.

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "snap/snap.hpp"

namespace {

using snap::Index;
using Scalar = float;
using Vector = snap::Vector<Scalar>;
using Matrix = snap::Matrix<Scalar>;
using GRU = snap::GRU<Scalar>;
using LSTM = snap::LSTM<Scalar>;
using RNN = snap::RNN<Scalar>;
using LRU = snap::LRU<Scalar>;
using Stack = snap::Stack<Scalar>;

enum class EngineKind { Forward, RTRL, BPTT, UORO, SnAp1, SnAp2, SnAp1PerLayer, SnAp2PerLayer, EProp, RFLO, Rolling };

constexpr Index kGruInput = 32;       // input of the GRU stacks and of the leaky RNN
constexpr Index kLruInput = 64;       // m of the LRUs
constexpr Index kWindow = 16;         // BPTT's window (gradient read once per window) and rolling BPTT's L
constexpr Index kInputColumns = 64;   // distinct inputs cycled through by the timed loop
constexpr double kMemoryLimitBytes = 2.0 * 1024 * 1024 * 1024;  // RTRL's k·p·4 or SnAp's kept·4
// Rates assumed by the skip rule (docs/performance.md: dense RTRL ran at 69–80 GFLOP/s, the sparse
// kernels of RTRL and SnAp-n at 10–35): a combination estimated over --max_step_seconds is skipped.
constexpr double kDenseFlopsPerSecond = 50e9;
constexpr double kSparseFlopsPerSecond = 10e9;
double g_maxSecondsPerStep = 1.0;

const char* engineName(EngineKind engine) {
  switch (engine) {
    case EngineKind::Forward: return "Forward";
    case EngineKind::RTRL: return "RTRL";
    case EngineKind::BPTT: return "BPTT-16";
    case EngineKind::UORO: return "UORO";
    case EngineKind::SnAp1: return "SnAp-1";
    case EngineKind::SnAp2: return "SnAp-2";
    case EngineKind::SnAp1PerLayer: return "SnAp-1-perlayer";
    case EngineKind::SnAp2PerLayer: return "SnAp-2-perlayer";
    case EngineKind::EProp: return "EProp";
    case EngineKind::RFLO: return "RFLO";
    case EngineKind::Rolling: return "RollingBPTT-16";
  }
  return "?";
}

bool isSnAp(EngineKind engine) {
  return engine == EngineKind::SnAp1 || engine == EngineKind::SnAp2 || engine == EngineKind::SnAp1PerLayer ||
         engine == EngineKind::SnAp2PerLayer;
}
int snapSteps(EngineKind engine) { return engine == EngineKind::SnAp1 || engine == EngineKind::SnAp1PerLayer ? 1 : 2; }
bool perLayer(EngineKind engine) { return engine == EngineKind::SnAp1PerLayer || engine == EngineKind::SnAp2PerLayer; }

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", value);
  return text;
}

/// The influence update's size from the structure alone: the skip test and the counters.
struct Estimate {
  double madds = 0;  ///< multiply-adds of the influence update per step (RTRL, SnAp-n), 0 otherwise
  double bytes = 0;  ///< RTRL k·p·4, SnAp kept·4
  double seconds = 0;
};

/// Σ over the pattern's groups of nnz(D[R, R]) · p_g: the SnAp update's multiply-adds (docs/math.md §4).
double snapUpdateMadds(const snap::SparsityPattern& graph, const snap::SnApPattern& pattern) {
  std::vector<std::uint8_t> inRows(static_cast<std::size_t>(graph.rows()), 0);
  double total = 0;
  for (const auto& group : pattern.groups()) {
    for (auto r : group.rows) inRows[static_cast<std::size_t>(r)] = 1;
    double entries = 0;
    for (auto r : group.rows)
      for (auto c : graph.row(r)) entries += inRows[static_cast<std::size_t>(c)];
    for (auto r : group.rows) inRows[static_cast<std::size_t>(r)] = 0;
    total += entries * static_cast<double>(group.columns.size());
  }
  return total;
}

/// SnAp-n's pattern of `cell`, joint or inside the layers of a stack.
template <class Cell>
snap::SnApPattern snapPatternOf(const Cell& cell, int n, bool layered) {
  snap::PatternBlocks blocks;
  if constexpr (snap::requirement::HasSpatialBackward<Cell>)
    if (layered && cell.layerCount() > 1) blocks = cell.layerBlocks();
  return snap::SnApPattern(cell.factorPattern(), cell.layout().factors(), cell.dynamicsGraph(), n, blocks);
}

template <class Cell>
Estimate estimateOf(const Cell& cell, EngineKind engine) {
  const double k = static_cast<double>(cell.stateSize()), p = static_cast<double>(cell.parameterCount());
  Estimate estimate;
  if (engine == EngineKind::RTRL) {
    const double nnz = static_cast<double>(cell.dynamicsGraph().nonZeros());
    const bool dense = nnz >= snap::RTRLOptions{}.denseDynamicsAbove * k * k;  // the engine's own choice
    estimate.madds = (dense ? k * k * p : nnz * p) + k * p;
    estimate.bytes = k * p * sizeof(Scalar);
    estimate.seconds = 2 * estimate.madds / (dense ? kDenseFlopsPerSecond : kSparseFlopsPerSecond);
  } else if (isSnAp(engine)) {
    const auto pattern = snapPatternOf(cell, snapSteps(engine), perLayer(engine));
    const double kept = static_cast<double>(pattern.keptEntries());
    estimate.madds = snapUpdateMadds(cell.dynamicsGraph(), pattern) + 2 * kept;
    estimate.bytes = kept * sizeof(Scalar);
    estimate.seconds = 2 * estimate.madds / kSparseFlopsPerSecond;
  }
  return estimate;
}

/// Why a combination is not run, or empty.
std::string skipReason(const Estimate& estimate) {
  std::string reason;
  char text[200];
  if (estimate.seconds > g_maxSecondsPerStep) {
    std::snprintf(text, sizeof text, "~%.1f s/step estimated (%.3g multiply-adds; limit %g s)", estimate.seconds,
                  estimate.madds, g_maxSecondsPerStep);
    reason = text;
  }
  if (estimate.bytes > kMemoryLimitBytes) {
    std::snprintf(text, sizeof text, "needs %.1f GiB for the influence (limit %.0f GiB)",
                  estimate.bytes / (1024.0 * 1024 * 1024), kMemoryLimitBytes / (1024.0 * 1024 * 1024));
    reason += (reason.empty() ? "" : "; ") + std::string(text);
  }
  return reason;
}

/// The engine (or the bare forward step) of the benchmark running now, kept across Google
/// Benchmark's repeated calls for one benchmark and released when the next one starts.
struct Workload {
  virtual ~Workload() = default;
};

/// A cell's forward step alone: what the per-layer mode's spatial pass is compared with.
template <class Cell>
struct ForwardStep {
  explicit ForwardStep(const Cell& cell)
      : m_cell(cell), m_cache(cell.makeCache()), m_state(Vector::Zero(cell.stateSize())), m_next(m_state) {}
  const Vector& step(const Eigen::Ref<const Vector>& x) {
    m_cell.forward(x, m_state, m_next, m_cache);
    std::swap(m_state, m_next);
    return m_state;
  }
  std::size_t bytes() const { return 0; }

private:
  const Cell& m_cell;
  snap::StepCache<Scalar> m_cache;
  Vector m_state, m_next;
};

template <class Cell, class Engine>
struct EngineWorkload final : Workload {
  std::shared_ptr<const Cell> cell;  // the engine keeps a pointer: shared, never moved
  std::unique_ptr<Engine> engine;
  Matrix inputs;
  Vector delta;
  Index stepsInWindow = 0;
  Index column = 0;
};

std::string g_workloadName;
std::unique_ptr<Workload> g_workload;

template <class Engine, class Cell>
std::unique_ptr<Engine> makeEngine(const Cell& cell, EngineKind kind) {
  if constexpr (std::is_same_v<Engine, snap::BPTT<Cell>>)
    return std::make_unique<Engine>(cell, snap::BPTTOptions{.window = kWindow});
  else if constexpr (std::is_same_v<Engine, snap::RollingBPTT<Cell>>)
    return std::make_unique<Engine>(cell, snap::RollingBPTTOptions{.window = kWindow});
  else if constexpr (std::is_same_v<Engine, snap::UORO<Cell>>)
    return std::make_unique<Engine>(cell, snap::UOROOptions{.seed = 1});
  else if constexpr (std::is_same_v<Engine, snap::SnAp<Cell>>)
    return std::make_unique<Engine>(cell, snap::SnApOptions{.n = snapSteps(kind), .perLayer = perLayer(kind)});
  else
    return std::make_unique<Engine>(cell);
}

template <class Cell, class Engine>
EngineWorkload<Cell, Engine>& workloadFor(const std::shared_ptr<const Cell>& cell, EngineKind kind,
                                          const std::string& name) {
  using Work = EngineWorkload<Cell, Engine>;
  if (g_workloadName != name || g_workload == nullptr) {
    g_workload.reset();  // free the previous engine before building this one
    auto work = std::make_unique<Work>();
    work->cell = cell;
    work->engine = makeEngine<Engine>(*cell, kind);
    snap::Random random(2);
    work->inputs = Matrix(cell->inputSize(), kInputColumns);
    for (Index i = 0; i < work->inputs.size(); ++i) work->inputs.data()[i] = static_cast<Scalar>(random.uniform(-1, 1));
    // δ_t = ∂L_t/∂y_t of a readout of the output y_t (o rows).
    work->delta = Vector(cell->outputSize());
    for (Index i = 0; i < work->delta.size(); ++i) work->delta[i] = static_cast<Scalar>(random.uniform(-1, 1));
    g_workload = std::move(work);
    g_workloadName = name;
  }
  return static_cast<Work&>(*g_workload);
}

/// The timed loop: one online step per iteration. BPTT reads and resets its gradient once per
/// window of 16 steps inside the loop, so its backward pass is amortised into the per-step time.
template <class Cell, class Engine>
void onlineStep(benchmark::State& state, const std::shared_ptr<const Cell>& cell, EngineKind kind,
                const Estimate& estimate, const std::string& name) {
  auto& work = workloadFor<Cell, Engine>(cell, kind, name);
  Engine& engine = *work.engine;
  constexpr bool windowed = std::is_same_v<Engine, snap::BPTT<Cell>>;
  constexpr bool forwardOnly = std::is_same_v<Engine, ForwardStep<Cell>>;
  for (auto _ : state) {
    const auto& next = engine.step(work.inputs.col(work.column));
    benchmark::DoNotOptimize(next.data());
    if constexpr (!forwardOnly) engine.accumulate(work.delta);
    if (++work.column == kInputColumns) work.column = 0;
    if constexpr (windowed) {
      if (++work.stepsInWindow == kWindow) {
        benchmark::DoNotOptimize(engine.gradient().data());
        engine.resetGradient();
        work.stepsInWindow = 0;
      }
    }
  }
  benchmark::ClobberMemory();
  state.counters["parameters"] = benchmark::Counter(static_cast<double>(cell->parameterCount()));
  state.counters["state_size"] = benchmark::Counter(static_cast<double>(cell->stateSize()));
  state.counters["bytes"] = benchmark::Counter(static_cast<double>(engine.bytes()), benchmark::Counter::kDefaults,
                                               benchmark::Counter::kIs1024);
  if constexpr (std::is_base_of_v<snap::SnAp<Cell>, Engine>)
    state.counters["kept_entries"] = benchmark::Counter(static_cast<double>(engine.pattern().keptEntries()));
  else if constexpr (std::is_same_v<Engine, snap::RTRL<Cell>>)
    state.counters["kept_entries"] =
        benchmark::Counter(static_cast<double>(cell->stateSize()) * static_cast<double>(cell->parameterCount()));
  if (estimate.madds > 0) state.counters["update_madds"] = benchmark::Counter(estimate.madds);
}

std::vector<std::string> g_skipped;

/// Registers `prefix/ENGINE` for each engine on `cell`, or lists it as skipped.
template <class Cell>
void registerEngines(const std::string& prefix, std::shared_ptr<const Cell> cell, std::vector<EngineKind> engines) {
  for (EngineKind kind : engines) {
    const std::string name = prefix + "/" + engineName(kind);
    const Estimate estimate = estimateOf(*cell, kind);
    if (const std::string reason = skipReason(estimate); !reason.empty()) {
      g_skipped.push_back(name + ": " + reason);
      continue;
    }
    auto add = [&](auto run) {
      benchmark::RegisterBenchmark(name.c_str(), [cell, kind, estimate, name, run](benchmark::State& state) {
        run(state, cell, kind, estimate, name);
      })->Unit(benchmark::kMicrosecond);
    };
    switch (kind) {
      case EngineKind::Forward: add(onlineStep<Cell, ForwardStep<Cell>>); break;
      case EngineKind::RTRL: add(onlineStep<Cell, snap::RTRL<Cell>>); break;
      case EngineKind::BPTT: add(onlineStep<Cell, snap::BPTT<Cell>>); break;
      case EngineKind::UORO: add(onlineStep<Cell, snap::UORO<Cell>>); break;
      case EngineKind::SnAp1:
      case EngineKind::SnAp2:
      case EngineKind::SnAp1PerLayer:
      case EngineKind::SnAp2PerLayer: add(onlineStep<Cell, snap::SnAp<Cell>>); break;
      case EngineKind::EProp: add(onlineStep<Cell, snap::EProp<Cell>>); break;
      case EngineKind::Rolling: add(onlineStep<Cell, snap::RollingBPTT<Cell>>); break;
      case EngineKind::RFLO:
        if constexpr (std::is_same_v<Cell, RNN>) add(onlineStep<Cell, snap::RFLO<Cell>>);
        break;
    }
  }
}

using enum EngineKind;
const std::vector<EngineKind> kStackEngines = {RTRL, BPTT, UORO, SnAp1, SnAp2, SnAp1PerLayer, SnAp2PerLayer, EProp, Rolling};
const std::vector<EngineKind> kCellEngines = {RTRL, BPTT, UORO, SnAp1, SnAp2, EProp, Rolling, Forward};
const std::vector<EngineKind> kLayerEngines = {SnAp1, SnAp2};

snap::CellOptions gatedOptions(double recurrentDensity, double inputDensity, std::uint64_t seed) {
  return {.inputDensity = inputDensity, .recurrentDensity = recurrentDensity, .maskSharing = snap::MaskSharing::Shared,
          .seed = seed};
}

/// H' of a one-layer GRU (input 32, the same densities) whose p is closest to `parameters`.
Index matchingHidden(Index parameters, double recurrentDensity, double inputDensity) {
  // p ≈ 3 (d H² + (i·m + 2) H), solved for H, then the neighbours built and counted.
  const double d = recurrentDensity, b = inputDensity * static_cast<double>(kGruInput) + 2;
  const double guess = (-b + std::sqrt(b * b + 4 * d * static_cast<double>(parameters) / 3)) / (2 * d);
  Index best = 1;
  Index bestDistance = -1;
  for (Index h = std::max<Index>(1, static_cast<Index>(guess) - 6); h <= static_cast<Index>(guess) + 6; ++h) {
    const GRU cell(kGruInput, h, gatedOptions(recurrentDensity, inputDensity, 1));
    const Index distance = std::abs(cell.parameterCount() - parameters);
    if (bestDistance < 0 || distance < bestDistance) best = h, bestDistance = distance;
  }
  return best;
}

/// Two GRU layers (input 32, H, shared masks at recurrent density d, input density i), each layer
/// alone, the stack's bare forward step, and a one-layer GRU of about the stack's p.
void registerGruStack(Index hidden, double recurrentDensity, double inputDensity, bool quick) {
  const std::string tail = "/d" + number(recurrentDensity) + "/in" + number(inputDensity);
  const std::string prefix = "Stack/GRUx2/H" + std::to_string(hidden) + tail;
  const auto bottom = std::make_shared<const GRU>(kGruInput, hidden, gatedOptions(recurrentDensity, inputDensity, 1));
  const auto top = std::make_shared<const GRU>(hidden, hidden, gatedOptions(recurrentDensity, inputDensity, 2));
  const auto stack = std::make_shared<const Stack>(*bottom, *top);
  registerEngines(prefix, stack, kStackEngines);
  if (quick) return;
  registerEngines(prefix, stack, {Forward});
  registerEngines(prefix + "/layer0", bottom, kLayerEngines);
  registerEngines(prefix + "/layer1", top, kLayerEngines);
  const Index single = matchingHidden(stack->parameterCount(), recurrentDensity, inputDensity);
  const auto reference = std::make_shared<const GRU>(kGruInput, single, gatedOptions(recurrentDensity, inputDensity, 1));
  registerEngines("GRU/H" + std::to_string(single) + tail, reference, kCellEngines);
}

/// GRU, LSTM, GRU at H = 64 (input 32, recurrent density 0.25 shared, dense inputs).
void registerMixedStack() {
  constexpr Index hidden = 64;
  const std::string prefix = "Stack/GRU-LSTM-GRU/H64/d0.25/in1";
  const auto first = std::make_shared<const GRU>(kGruInput, hidden, gatedOptions(0.25, 1.0, 1));
  const auto second = std::make_shared<const LSTM>(hidden, hidden, gatedOptions(0.25, 1.0, 2));
  const auto third = std::make_shared<const GRU>(hidden, hidden, gatedOptions(0.25, 1.0, 3));
  const auto stack = std::make_shared<const Stack>(*first, *second, *third);
  registerEngines(prefix, stack, kStackEngines);
  registerEngines(prefix, stack, {Forward});
  registerEngines(prefix + "/layer0", first, kLayerEngines);
  registerEngines(prefix + "/layer1", second, kLayerEngines);
  registerEngines(prefix + "/layer2", third, kLayerEngines);
}

snap::LRUOptions lruOptions(snap::LRUActivation activation, std::uint64_t seed) {
  return {.skip = true, .activation = activation, .seed = seed};
}

/// The LRU alone: m = 64, N units, skip on, linear output.
void registerLru(Index units) {
  const auto cell = std::make_shared<const LRU>(kLruInput, units, lruOptions(snap::LRUActivation::None, 1));
  registerEngines("LRU/N" + std::to_string(units), cell, {RTRL, SnAp1, SnAp2, EProp, BPTT, Rolling, UORO, Forward});
}

/// Three LRUs (m = 64, N = 128), GELU after the first two, linear top.
void registerLruStack() {
  constexpr Index units = 128;
  const std::string prefix = "Stack/LRUx3-GELU/N128";
  std::vector<std::shared_ptr<const LRU>> layers;
  for (std::uint64_t l = 0; l < 3; ++l)
    layers.push_back(std::make_shared<const LRU>(
        kLruInput, units, lruOptions(l < 2 ? snap::LRUActivation::GELU : snap::LRUActivation::None, l + 1)));
  const auto stack = std::make_shared<const Stack>(*layers[0], *layers[1], *layers[2]);
  registerEngines(prefix, stack, {BPTT, SnAp2PerLayer, EProp, SnAp2, Forward});
  for (std::size_t l = 0; l < layers.size(); ++l)
    registerEngines(prefix + "/layer" + std::to_string(l), layers[l], {SnAp2});
}

/// The leaky RNN (α = 0.1), input 32, H units at recurrent density d.
void registerLeakyRnn(Index hidden, double density, std::vector<EngineKind> engines) {
  const auto cell = std::make_shared<const RNN>(kGruInput, hidden, snap::CellOptions{.recurrentDensity = density, .seed = 1},
                                                snap::RNNOptions{.leak = 0.1});
  registerEngines("LeakyRNN/H" + std::to_string(hidden) + "/d" + number(density), cell, std::move(engines));
}

/// Removes snap's own flags (--quick, --max_step_seconds=S) from argv; returns whether --quick was there.
bool takeOwnFlags(int& argc, char** argv) {
  constexpr const char* secondsFlag = "--max_step_seconds=";
  bool quick = false;
  int kept = 0;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--quick") == 0) {
      quick = true;
    } else if (i > 0 && std::strncmp(argv[i], secondsFlag, std::strlen(secondsFlag)) == 0) {
      char* end = nullptr;
      const double seconds = std::strtod(argv[i] + std::strlen(secondsFlag), &end);
      if (end == argv[i] + std::strlen(secondsFlag) || *end != '\0' || !(seconds > 0)) {
        std::fprintf(stderr, "bench_deep: %s wants a positive number of seconds\n", argv[i]);
        std::exit(1);
      }
      g_maxSecondsPerStep = seconds;
    } else {
      argv[kept++] = argv[i];
    }
  }
  argc = kept;
  argv[argc] = nullptr;
  return quick;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = takeOwnFlags(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Eigen::setNbThreads(1);
#ifndef NDEBUG
  std::fprintf(stderr, "WARNING: built without NDEBUG: Eigen's assertions are on and timings are meaningless.\n");
#endif

  if (quick) {
    registerGruStack(64, 0.25, 1.0, true);
    registerLru(128);
    registerLeakyRnn(128, 0.25, {RFLO, EProp, SnAp1, BPTT});
  } else {
    for (Index hidden : {64, 128})
      for (double inputDensity : {1.0, 0.25}) registerGruStack(hidden, 0.25, inputDensity, false);
    registerMixedStack();
    for (Index units : {64, 128, 256}) registerLru(units);
    registerLruStack();
    for (Index hidden : {128, 256})
      for (double density : {1.0, 0.25}) registerLeakyRnn(hidden, density, {RFLO, EProp, SnAp1, RTRL, BPTT, Forward});
  }

  std::fprintf(stderr, "snap deep-network benchmarks%s: float, batch 1, one thread, δ over the output.\n",
               quick ? " (--quick)" : "");
  std::fprintf(stderr, "Skipped %zu combinations (influence over %.0f GiB, or over %g s/step estimated):\n",
               g_skipped.size(), kMemoryLimitBytes / (1024.0 * 1024 * 1024), g_maxSecondsPerStep);
  for (const auto& line : g_skipped) std::fprintf(stderr, "  skipped %s\n", line.c_str());
  std::fflush(stderr);
  benchmark::AddCustomContext("snap_skipped_combinations", std::to_string(g_skipped.size()));
  benchmark::AddCustomContext("snap_quick", quick ? "true" : "false");

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_workload.reset();
  return 0;
}
