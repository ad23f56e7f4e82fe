/// @file
/// The batch and the threads (issue 11, docs/performance.md "Batches and threads"): one online
/// step of B streams, `engine.step(X); engine.accumulate(Δ);`, for every engine at B = 1, 16
/// and 64 on one and two threads, with the time per step per stream and its fraction of this
/// machine's limit: the measured GEMM rate for the compute-bound kernels (RTRL, SnAp-2, BPTT's
/// products), the measured memory bandwidth (a STREAM triad, in this binary) for the
/// bandwidth-bound ones (SnAp-1, UORO).
///
///     bench_batched [--quick] [Google Benchmark flags]
///
/// --quick runs B = 1 and 16 on one thread, GRU H = 128 only (about a minute).

#include <benchmark/benchmark.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cstdio>
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

constexpr Index kInputSize = 32;
constexpr Index kWindow = 128;  // BPTT's window; its gradient is read once per window

/// The machine's limits, measured once before the engines run.
struct Limits {
  double gemmFlops = 0;       ///< float GEMM, 512³, one thread (Eigen)
  double triadBytesPerSecond = 0;  ///< a[i] = b[i] + s·c[i] over 3 × 64 MiB, one thread
};
Limits g_limits;

double secondsOf(auto&& run, int repetitions) {
  std::vector<double> times;
  for (int r = 0; r < repetitions; ++r) {
    const auto start = std::chrono::steady_clock::now();
    run();
    times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  std::nth_element(times.begin(), times.begin() + static_cast<long>(times.size() / 2), times.end());
  return times[times.size() / 2];
}

Limits measureLimits() {
  Limits limits;
  const Index n = 512;
  const Matrix a = Matrix::Random(n, n), b = Matrix::Random(n, n);
  Matrix c(n, n);
  c.noalias() = a * b;
  limits.gemmFlops = 2.0 * static_cast<double>(n * n * n) / secondsOf([&] {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
  }, 11);
  const std::size_t size = std::size_t{16} << 20;  // 16 Mi floats = 64 MiB per array
  std::vector<Scalar> x(size, 1.0f), y(size, 2.0f), z(size, 0.0f);
  const Scalar s = 0.5f;
  auto triad = [&] {
    Scalar* __restrict out = z.data();
    const Scalar* __restrict u = x.data();
    const Scalar* __restrict v = y.data();
    for (std::size_t i = 0; i < size; ++i) out[i] = u[i] + s * v[i];
    benchmark::DoNotOptimize(out);
  };
  triad();
  limits.triadBytesPerSecond = 3.0 * static_cast<double>(size * sizeof(Scalar)) / secondsOf(triad, 7);
  return limits;
}

enum class EngineKind { BPTT, RTRL, UORO, SnAp1, SnAp2 };
const char* engineName(EngineKind engine) {
  switch (engine) {
    case EngineKind::BPTT: return "BPTT-128";
    case EngineKind::RTRL: return "RTRL";
    case EngineKind::UORO: return "UORO";
    case EngineKind::SnAp1: return "SnAp-1";
    case EngineKind::SnAp2: return "SnAp-2";
  }
  return "?";
}
/// Which limit the kernel is read against.
bool computeBound(EngineKind engine) { return engine == EngineKind::BPTT || engine == EngineKind::RTRL || engine == EngineKind::SnAp2; }

struct Case {
  EngineKind engine;
  Index hidden;
  double density;
  Index streams;
  int threads;
};

std::string caseName(const Case& c) {
  char text[128];
  std::snprintf(text, sizeof text, "GRU/d%g/H%ld/%s/B%ld/T%d", c.density, static_cast<long>(c.hidden),
                engineName(c.engine), static_cast<long>(c.streams), c.threads);
  return text;
}

/// Multiply-adds per batch step (forward + engine) and the bytes the engine must move per batch
/// step: the work and traffic the algorithm needs, counted from the structure.
struct Cost {
  double madds = 0;
  double bytes = 0;
};

template <class Cell>
Cost costOf(const Cell& cell, const Case& c) {
  const double k = static_cast<double>(cell.stateSize()), p = static_cast<double>(cell.parameterCount());
  const double rows = static_cast<double>(cell.gateRows()), hidden = static_cast<double>(cell.hiddenSize());
  const double inputs = static_cast<double>(cell.inputSize());
  const double nnz = static_cast<double>(cell.dynamicsGraph().nonZeros()), streams = static_cast<double>(c.streams);
  const double forward = rows * (inputs + hidden);
  constexpr double bytes = sizeof(Scalar);
  Cost cost;
  switch (c.engine) {
    case EngineKind::BPTT:  // forward, Wᵀ·E backward, and the parameter gradient e zᵀ
      cost.madds = streams * (forward + rows * hidden + rows * (inputs + hidden));
      break;
    case EngineKind::RTRL: {
      const bool dense = nnz >= snap::RTRLOptions{}.denseDynamicsAbove * k * k;
      cost.madds = streams * (forward + (dense ? k * k * p : nnz * p) + k * p);
      cost.bytes = streams * 2 * k * p * bytes;
      break;
    }
    case EngineKind::UORO:  // θ̃ read and written by the update, read by the gradient; g once
      cost.madds = streams * (forward + nnz + 3 * p + k);
      cost.bytes = streams * 3 * p * bytes + 2 * p * bytes;
      break;
    case EngineKind::SnAp1:
    case EngineKind::SnAp2: {
      const auto pattern = snap::SnApPattern::of(cell, c.engine == EngineKind::SnAp1 ? 1 : 2);
      const double kept = static_cast<double>(pattern.keptEntries());
      double update = 0;  // Σ_groups nnz(D[R, R]) · p_g
      std::vector<std::uint8_t> inRows(static_cast<std::size_t>(cell.stateSize()), 0);
      for (const auto& group : pattern.groups()) {
        for (auto r : group.rows) inRows[static_cast<std::size_t>(r)] = 1;
        double entries = 0;
        for (auto r : group.rows)
          for (auto col : cell.dynamicsGraph().row(r)) entries += inRows[static_cast<std::size_t>(col)];
        for (auto r : group.rows) inRows[static_cast<std::size_t>(r)] = 0;
        update += entries * static_cast<double>(group.columns.size());
      }
      cost.madds = streams * (forward + update + 2 * kept);
      cost.bytes = streams * 2 * kept * bytes + 2 * p * bytes;  // Ĵ read and written; g once
      break;
    }
  }
  return cost;
}

template <class Engine, class Cell>
Engine makeEngine(const Cell& cell, const Case& c) {
  const snap::Batch batch{.streams = c.streams, .threads = c.threads};
  if constexpr (std::is_same_v<Engine, snap::BPTT<Cell>>)
    return Engine(cell, {.window = kWindow}, batch);
  else if constexpr (std::is_same_v<Engine, snap::UORO<Cell>>)
    return Engine(cell, {.seed = 1}, batch);
  else if constexpr (std::is_same_v<Engine, snap::SnAp<Cell>>)
    return Engine(cell, {.n = c.engine == EngineKind::SnAp1 ? 1 : 2}, batch);
  else
    return Engine(cell, {}, batch);
}

template <class Engine>
void onlineStep(benchmark::State& state, const Case& c) {
  using Cell = typename Engine::CellType;
  const Cell cell(kInputSize, c.hidden, {.recurrentDensity = c.density, .maskSharing = snap::MaskSharing::Shared, .seed = 1});
  Engine engine = makeEngine<Engine>(cell, c);
  snap::Random random(2);
  constexpr Index columns = 8;  // distinct batch inputs cycled through
  std::vector<Matrix> inputs(columns, Matrix(kInputSize, c.streams));
  for (auto& x : inputs)
    for (Index i = 0; i < x.size(); ++i) x.data()[i] = static_cast<Scalar>(random.uniform(-1, 1));
  Matrix delta = Matrix::Zero(cell.stateSize(), c.streams);  // δ of a readout of h
  for (Index i = 0; i < delta.size(); ++i) delta.data()[i] = static_cast<Scalar>(random.uniform(-1, 1));
  Index column = 0, stepsInWindow = 0;
  constexpr bool windowed = std::is_same_v<Engine, snap::BPTT<Cell>>;
  for (auto _ : state) {
    benchmark::DoNotOptimize(engine.step(inputs[static_cast<std::size_t>(column)]).data());
    engine.accumulate(delta);
    column = (column + 1) % columns;
    if constexpr (windowed) {
      if (++stepsInWindow == kWindow) {
        benchmark::DoNotOptimize(engine.gradient().data());
        engine.resetGradient();
        stepsInWindow = 0;
      }
    }
  }
  benchmark::ClobberMemory();
  const Cost cost = costOf(cell, c);
  const double streams = static_cast<double>(c.streams);
  using benchmark::Counter;
  state.counters["us_per_stream"] = Counter(streams * 1e-6, Counter::kIsIterationInvariantRate | Counter::kInvert);
  state.counters["gflops"] = Counter(2 * cost.madds * 1e-9, Counter::kIsIterationInvariantRate);
  state.counters["limit_fraction"] =
      computeBound(c.engine)
          ? Counter(2 * cost.madds / (g_limits.gemmFlops * c.threads), Counter::kIsIterationInvariantRate)
          : Counter(cost.bytes / (g_limits.triadBytesPerSecond * c.threads), Counter::kIsIterationInvariantRate);
  state.counters["bytes_per_step"] = Counter(cost.bytes, Counter::kDefaults, Counter::kIs1024);
}

void registerCase(const Case& c) {
  using Cell = snap::GRU<Scalar>;
  auto add = [&](auto run) {
    benchmark::RegisterBenchmark(caseName(c).c_str(), [c, run](benchmark::State& state) { run(state, c); })
        ->Unit(benchmark::kMicrosecond)
        ->MinTime(0.2);
  };
  switch (c.engine) {
    case EngineKind::BPTT: add(onlineStep<snap::BPTT<Cell>>); break;
    case EngineKind::RTRL: add(onlineStep<snap::RTRL<Cell>>); break;
    case EngineKind::UORO: add(onlineStep<snap::UORO<Cell>>); break;
    case EngineKind::SnAp1:
    case EngineKind::SnAp2: add(onlineStep<snap::SnAp<Cell>>); break;
  }
}

bool takeQuick(int& argc, char** argv) {
  bool quick = false;
  int kept = 0;
  for (int i = 0; i < argc; ++i) {
    if (i > 0 && std::strcmp(argv[i], "--quick") == 0)
      quick = true;
    else
      argv[kept++] = argv[i];
  }
  argc = kept;
  argv[argc] = nullptr;
  return quick;
}

}  // namespace

int main(int argc, char** argv) {
  const bool quick = takeQuick(argc, argv);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  Eigen::setNbThreads(1);
#ifndef NDEBUG
  std::fprintf(stderr, "WARNING: built without NDEBUG: Eigen's assertions are on and timings are meaningless.\n");
#endif
  g_limits = measureLimits();
  std::fprintf(stderr, "limits of this machine, one thread: float GEMM %.1f GFLOP/s, triad %.1f GB/s\n",
               g_limits.gemmFlops * 1e-9, g_limits.triadBytesPerSecond * 1e-9);
  benchmark::AddCustomContext("snap_gemm_gflops", std::to_string(g_limits.gemmFlops * 1e-9));
  benchmark::AddCustomContext("snap_triad_gbps", std::to_string(g_limits.triadBytesPerSecond * 1e-9));

  const std::vector<Index> batches = quick ? std::vector<Index>{1, 16} : std::vector<Index>{1, 16, 64};
  const std::vector<int> threadCounts = quick ? std::vector<int>{1} : std::vector<int>{1, 2};
  const std::vector<Index> hiddens = quick ? std::vector<Index>{128} : std::vector<Index>{128, 256};
  for (int threads : threadCounts)
    for (Index streams : batches) {
      for (Index hidden : hiddens) {
        for (EngineKind engine : {EngineKind::BPTT, EngineKind::UORO, EngineKind::SnAp1, EngineKind::SnAp2})
          registerCase({engine, hidden, 0.1, streams, threads});
        registerCase({EngineKind::BPTT, hidden, 1.0, streams, threads});
      }
      // Dense RTRL: k·p·B values (H = 64: 1.2 M per stream; H = 128: 8 M, not at B = 64).
      registerCase({EngineKind::RTRL, 64, 1.0, streams, threads});
      if (!quick && streams <= 16) registerCase({EngineKind::RTRL, 128, 1.0, streams, threads});
    }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
