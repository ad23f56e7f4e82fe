/// @file
/// Per-step cost of one online step, `engine.step(x); engine.accumulate(δ);`, for every cell ×
/// engine × hidden size × recurrent density × mask sharing, with counters that relate the time
/// to the structure (parameters, influence size, multiply-adds) and a dense GEMM reference.
///
///     bench_engines [--quick] [Google Benchmark flags]
///
/// --quick runs GRU/shared/d0.1/H128 with every engine plus the GEMM reference (< 1 minute).
/// --max_step_seconds=S changes the skip limit of the estimated time per step (default 1).

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "snap/snap.hpp"

namespace {

using snap::Index;
using Scalar = float;
using Vector = snap::Vector<Scalar>;
using Matrix = snap::Matrix<Scalar>;

enum class CellKind { RNN, GRU, LSTM };
enum class EngineKind { BPTT, RTRL, UORO, SnAp1, SnAp2, SnAp3 };

constexpr Index kInputSize = 32;
constexpr Index kWindow = 128;          // BPTT window; its gradient is read once per window
constexpr Index kInputColumns = 64;     // distinct inputs cycled through by the timed loop
constexpr double kMemoryLimitBytes = 8.0 * 1024 * 1024 * 1024;
// About the slowest rate measured here for RTRL and SnAp-n (sparse blocks, docs/performance.md).
// Dense RTRL runs 5-8x faster, so a few dense combinations are skipped that would take less than
// a second; --max_step_seconds raises the limit.
constexpr double kAssumedFlopsPerSecond = 10e9;
double g_maxSecondsPerStep = 1.0;  // --max_step_seconds

constexpr CellKind kCells[] = {CellKind::RNN, CellKind::GRU, CellKind::LSTM};
constexpr EngineKind kEngines[] = {EngineKind::BPTT,  EngineKind::RTRL,  EngineKind::UORO,
                                   EngineKind::SnAp1, EngineKind::SnAp2, EngineKind::SnAp3};
constexpr Index kHiddenSizes[] = {64, 128, 256, 512};
constexpr double kDensities[] = {1.0, 0.25, 0.1};

/// One benchmarked combination.
struct Case {
  CellKind cell;
  snap::MaskSharing sharing;
  double density;
  Index hidden;
  EngineKind engine;
};

/// What the structure says a step costs: the counters and the skip test.
struct Cost {
  Index parameters = 0;
  double madds = 0;        ///< multiply-adds per online step (forward + engine)
  double memoryBytes = 0;  ///< what the engine allocates for its influence or history
};

const char* cellName(CellKind cell) {
  switch (cell) {
    case CellKind::RNN: return "RNN";
    case CellKind::GRU: return "GRU";
    case CellKind::LSTM: return "LSTM";
  }
  return "?";
}

const char* engineName(EngineKind engine) {
  switch (engine) {
    case EngineKind::BPTT: return "BPTT-128";
    case EngineKind::RTRL: return "RTRL";
    case EngineKind::UORO: return "UORO";
    case EngineKind::SnAp1: return "SnAp-1";
    case EngineKind::SnAp2: return "SnAp-2";
    case EngineKind::SnAp3: return "SnAp-3";
  }
  return "?";
}

int snapSteps(EngineKind engine) {
  return engine == EngineKind::SnAp1 ? 1 : engine == EngineKind::SnAp2 ? 2 : 3;
}

std::string densityName(double density) {
  char text[32];
  std::snprintf(text, sizeof text, "d%g", density);
  return text;
}

/// `GRU/shared/d0.1/H256/SnAp-2`; the RNN has one gate, so no mask-sharing field.
std::string caseName(const Case& c) {
  std::string name = cellName(c.cell);
  if (c.cell != CellKind::RNN) name += c.sharing == snap::MaskSharing::Shared ? "/shared" : "/pergate";
  return name + "/" + densityName(c.density) + "/H" + std::to_string(c.hidden) + "/" + engineName(c.engine);
}

snap::CellOptions cellOptions(const Case& c) {
  return {.inputDensity = 1.0, .recurrentDensity = c.density, .maskSharing = c.sharing, .seed = 1};
}

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

/// The cost model of the brief: forward = G·H·(m + H) (dense matvecs, as implemented), plus
/// the engine's own work counted from the masks.
template <class Cell>
Cost costOf(const Cell& cell, EngineKind engine) {
  const auto& graph = cell.dynamicsGraph();
  const double k = static_cast<double>(cell.stateSize()), p = static_cast<double>(cell.parameterCount());
  const double rows = static_cast<double>(cell.gateRows()), hidden = static_cast<double>(cell.hiddenSize());
  const double inputs = static_cast<double>(cell.inputSize()), nnz = static_cast<double>(graph.nonZeros());
  const double forward = rows * (inputs + hidden);
  constexpr double bytes = sizeof(Scalar);
  Cost cost;
  cost.parameters = cell.parameterCount();
  switch (engine) {
    case EngineKind::BPTT: {
      cost.madds = forward + rows * hidden + rows * (inputs + hidden);
      // Per stored step: the cache (2·U·G·H factors, U²·H direct, 2·G·H preactivations),
      // the sources (m + H + 1), δ (k) and the adjoints (2·G·H).
      const double units = static_cast<double>(cell.structure().unitStates);
      const double perStep = 2 * units * rows + units * units * hidden + 2 * rows + (inputs + hidden + 1) + k +
                             2 * rows;
      cost.memoryBytes = perStep * kWindow * bytes;
      break;
    }
    case EngineKind::RTRL: {
      const bool dense = nnz >= snap::RTRLOptions{}.denseDynamicsAbove * k * k;
      cost.madds = forward + (dense ? k * k * p : nnz * p) + p + k * p;
      cost.memoryBytes = 2 * k * p * bytes + (dense ? k * k * bytes : 0);  // J_t and J_{t+1}
      break;
    }
    case EngineKind::UORO:
      cost.madds = forward + nnz + 3 * p + k;
      cost.memoryBytes = (k + p) * bytes;
      break;
    case EngineKind::SnAp1:
    case EngineKind::SnAp2:
    case EngineKind::SnAp3: {
      const auto pattern = snap::SnApPattern::of(cell, snapSteps(engine));
      const double kept = static_cast<double>(pattern.keptEntries());
      cost.madds = forward + snapUpdateMadds(graph, pattern) + 2 * kept;
      cost.memoryBytes = kept * bytes;
      break;
    }
  }
  return cost;
}

/// Why a combination is not run (every reason that applies), or empty.
std::string skipReason(const Cost& cost) {
  std::string reason;
  char text[160];
  const double seconds = 2 * cost.madds / kAssumedFlopsPerSecond;
  if (seconds > g_maxSecondsPerStep) {
    std::snprintf(text, sizeof text, "~%.1f s/step estimated (%.2g multiply-adds at %.0f GFLOP/s; limit %g s)",
                  seconds, cost.madds, kAssumedFlopsPerSecond * 1e-9, g_maxSecondsPerStep);
    reason = text;
  }
  if (cost.memoryBytes > kMemoryLimitBytes) {
    std::snprintf(text, sizeof text, "needs %.1f GiB for the influence (limit %.0f GiB)",
                  cost.memoryBytes / (1024.0 * 1024 * 1024), kMemoryLimitBytes / (1024.0 * 1024 * 1024));
    reason += (reason.empty() ? "" : "; ") + std::string(text);
  }
  return reason;
}

/// The cell, engine and data of the benchmark running now. Kept across the repeated calls that
/// Google Benchmark makes for one benchmark (so large engines are built once), and released
/// when the next benchmark starts (so only one influence matrix lives at a time).
struct Workload {
  virtual ~Workload() = default;
};

template <class Cell, class Engine>
struct EngineWorkload final : Workload {
  std::unique_ptr<Cell> cell;  // the engine keeps a pointer: the cell must not move
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
  else if constexpr (std::is_same_v<Engine, snap::UORO<Cell>>)
    return std::make_unique<Engine>(cell, snap::UOROOptions{.seed = 1});
  else if constexpr (std::is_same_v<Engine, snap::SnAp<Cell>>)
    return std::make_unique<Engine>(cell, snap::SnApOptions{.n = snapSteps(kind)});
  else
    return std::make_unique<Engine>(cell);
}

template <class Cell, class Engine>
EngineWorkload<Cell, Engine>& workloadFor(const Case& c, const std::string& name) {
  using Work = EngineWorkload<Cell, Engine>;
  if (g_workloadName != name || g_workload == nullptr) {
    g_workload.reset();  // free the previous engine before building this one
    auto work = std::make_unique<Work>();
    work->cell = std::make_unique<Cell>(kInputSize, c.hidden, cellOptions(c));
    work->engine = makeEngine<Engine>(*work->cell, c.engine);
    snap::Random random(2);
    work->inputs = Matrix(kInputSize, kInputColumns);
    for (Index i = 0; i < work->inputs.size(); ++i) work->inputs.data()[i] = static_cast<Scalar>(random.uniform(-1, 1));
    // δ_t of a readout of h: for the LSTM, the c half is 0 (docs/math.md §3).
    work->delta = Vector::Zero(work->cell->stateSize());
    for (Index i = 0; i < work->cell->hiddenSize(); ++i) work->delta[i] = static_cast<Scalar>(random.uniform(-1, 1));
    g_workload = std::move(work);
    g_workloadName = name;
  }
  return static_cast<Work&>(*g_workload);
}

/// Influence entries as the brief counts them: RTRL k·p, SnAp |M_n|, UORO k + p, BPTT the
/// stored history values.
template <class Cell, class Engine>
double influenceEntries(const Cell& cell, const Engine& engine) {
  if constexpr (std::is_same_v<Engine, snap::RTRL<Cell>>)
    return static_cast<double>(cell.stateSize()) * static_cast<double>(cell.parameterCount());
  else if constexpr (std::is_same_v<Engine, snap::SnAp<Cell>>)
    return static_cast<double>(engine.pattern().keptEntries());
  else if constexpr (std::is_same_v<Engine, snap::UORO<Cell>>)
    return static_cast<double>(cell.stateSize() + cell.parameterCount());
  else
    return static_cast<double>(engine.bytes() / sizeof(Scalar));
}

/// The timed loop: one online step per iteration. BPTT reads and resets its gradient once per
/// window of 128 steps, inside the loop, so its backward pass is amortised into the per-step time.
template <class Cell, class Engine>
void onlineStep(benchmark::State& state, const Case& c, const Cost& cost, const std::string& name) {
  auto& work = workloadFor<Cell, Engine>(c, name);
  Engine& engine = *work.engine;
  constexpr bool windowed = std::is_same_v<Engine, snap::BPTT<Cell>>;
  for (auto _ : state) {
    const Matrix& next = engine.step(work.inputs.col(work.column));
    benchmark::DoNotOptimize(next.data());
    engine.accumulate(work.delta);
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
  const Cell& cell = *work.cell;
  state.counters["parameters"] = benchmark::Counter(static_cast<double>(cell.parameterCount()));
  state.counters["influence_entries"] = benchmark::Counter(influenceEntries(cell, engine));
  state.counters["influence_bytes"] = benchmark::Counter(static_cast<double>(engine.bytes()),
                                                         benchmark::Counter::kDefaults, benchmark::Counter::kIs1024);
  state.counters["madds_per_step"] = benchmark::Counter(cost.madds);
  state.counters["gflops"] = benchmark::Counter(2 * cost.madds * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

template <class Cell>
void registerCase(const Case& c, const Cost& cost) {
  const std::string name = caseName(c);
  auto add = [&](auto run) {
    benchmark::RegisterBenchmark(name.c_str(), [c, cost, name, run](benchmark::State& state) {
      run(state, c, cost, name);
    })->Unit(benchmark::kMicrosecond);
  };
  switch (c.engine) {
    case EngineKind::BPTT: add(onlineStep<Cell, snap::BPTT<Cell>>); break;
    case EngineKind::RTRL: add(onlineStep<Cell, snap::RTRL<Cell>>); break;
    case EngineKind::UORO: add(onlineStep<Cell, snap::UORO<Cell>>); break;
    case EngineKind::SnAp1:
    case EngineKind::SnAp2:
    case EngineKind::SnAp3: add(onlineStep<Cell, snap::SnAp<Cell>>); break;
  }
}

/// Registers every engine for one cell configuration, or lists it as skipped.
template <class Cell>
void registerConfiguration(CellKind kind, snap::MaskSharing sharing, double density, Index hidden,
                           std::vector<std::string>& skipped) {
  const Cell cell(kInputSize, hidden, cellOptions({kind, sharing, density, hidden, EngineKind::BPTT}));
  for (EngineKind engine : kEngines) {
    const Case c{kind, sharing, density, hidden, engine};
    const Cost cost = costOf(cell, engine);
    const std::string reason = skipReason(cost);
    if (reason.empty())
      registerCase<Cell>(c, cost);
    else
      skipped.push_back(caseName(c) + ": " + reason);
  }
}

void registerConfiguration(CellKind kind, snap::MaskSharing sharing, double density, Index hidden,
                           std::vector<std::string>& skipped) {
  switch (kind) {
    case CellKind::RNN: registerConfiguration<snap::RNN<Scalar>>(kind, sharing, density, hidden, skipped); break;
    case CellKind::GRU: registerConfiguration<snap::GRU<Scalar>>(kind, sharing, density, hidden, skipped); break;
    case CellKind::LSTM: registerConfiguration<snap::LSTM<Scalar>>(kind, sharing, density, hidden, skipped); break;
  }
}

/// C = A B with A of M × K and B of K × N: the dense reference the engines are read against.
void registerGemm(Index m, Index k, Index n) {
  const std::string name = "GEMM/M" + std::to_string(m) + "_K" + std::to_string(k) + "_N" + std::to_string(n);
  benchmark::RegisterBenchmark(name.c_str(), [m, k, n](benchmark::State& state) {
    const Matrix a = Matrix::Random(m, k), b = Matrix::Random(k, n);
    Matrix c = Matrix::Zero(m, n);
    for (auto _ : state) {
      c.noalias() = a * b;
      benchmark::DoNotOptimize(c.data());
      benchmark::ClobberMemory();
    }
    const double madds = static_cast<double>(m) * static_cast<double>(k) * static_cast<double>(n);
    state.counters["madds_per_step"] = benchmark::Counter(madds);
    state.counters["gflops"] = benchmark::Counter(2 * madds * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  })->Unit(benchmark::kMicrosecond);
}

/// Removes snap's own flags (--quick, --max_step_seconds=S) from argv before Google Benchmark
/// sees it; returns whether --quick was there.
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
        std::fprintf(stderr, "bench_engines: %s wants a positive number of seconds\n", argv[i]);
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

  std::vector<std::string> skipped;
  if (quick) {
    registerConfiguration(CellKind::GRU, snap::MaskSharing::Shared, 0.1, 128, skipped);
  } else {
    for (CellKind cell : kCells)
      for (auto sharing : {snap::MaskSharing::PerGate, snap::MaskSharing::Shared}) {
        if (cell == CellKind::RNN && sharing == snap::MaskSharing::Shared) continue;  // G = 1: one mode
        for (double density : kDensities)
          for (Index hidden : kHiddenSizes) registerConfiguration(cell, sharing, density, hidden, skipped);
      }
  }
  registerGemm(512, 512, 512);
  registerGemm(256, 256, 4096);

  std::fprintf(stderr, "snap engine benchmarks%s: input %ld, float, batch 1, one thread.\n", quick ? " (--quick)" : "",
               static_cast<long>(kInputSize));
  std::fprintf(stderr, "Skipped %zu combinations (over %.0f GiB, or over %g s/step at an assumed %.0f GFLOP/s):\n",
               skipped.size(), kMemoryLimitBytes / (1024.0 * 1024 * 1024), g_maxSecondsPerStep,
               kAssumedFlopsPerSecond * 1e-9);
  for (const auto& line : skipped) std::fprintf(stderr, "  skipped %s\n", line.c_str());
  std::fflush(stderr);
  benchmark::AddCustomContext("snap_skipped_combinations", std::to_string(skipped.size()));
  benchmark::AddCustomContext("snap_quick", quick ? "true" : "false");

  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  g_workload.reset();
  return 0;
}
