#pragma once
/// @file
/// Real-time recurrent learning with the full influence matrix (docs/math.md §3).

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "snap/cells/cell_concept.hpp"
#include "snap/engines/engine_core.hpp"
#include "snap/pattern/kernels.hpp"

namespace snap {

/// Options of the RTRL engine.
struct RTRLOptions {
  /// D_t is applied as a dense matrix when the dynamics graph has at least this density,
  /// as a sparse one below it. Both are exact; this only chooses the faster kernel.
  double denseDynamicsAbove = 0.25;
};

/// Exact RTRL: J_t = I_t + D_t J_{t−1}, g = Σ_t J_tᵀ δ_t (docs/math.md §3). Memory k·p per
/// stream (twice that on the sparse path, which writes the update into a second matrix), time
/// nnz(D)·p per step and stream. Stream b's influence J_b is rows [b·k, (b+1)·k) of one
/// B·k × p matrix. The update and the gradient Σ_b J_bᵀ δ_b run in fixed tiles of parameters
/// (columns of J), each tile for all streams in stream order, so the results are the same for
/// every thread count.
template <class CellType_>
class RTRL {
  static_assert(detail::checkCell<CellType_>());

public:
  using CellType = CellType_;                ///< the cell type the engine trains
  using Scalar = typename CellType::Scalar;  ///< the cell's scalar, float or double
  using Options = RTRLOptions;               ///< the engine's options

  /// Binds to `cell`, which must outlive the engine and stay at the same address.
  /// `batch` gives the streams B advanced together and the threads that share the work.
  explicit RTRL(const CellType& cell, const Options& options = {}, const Batch& batch = {})
      : m_core(cell, batch), m_options(options) {
    if (std::isnan(options.denseDynamicsAbove))
      detail::fail<ValueError>("RTRLOptions::denseDynamicsAbove", "a density threshold (a number)", options.denseDynamicsAbove);
    build();
  }

  /// Advances the states with the inputs x_t (m × B; a vector for one stream) and returns s_t
  /// (k × B). After a mask change of the cell, the engine first rebuilds for the new masks
  /// (zero influence and gradient, states kept). Every argument is checked before anything
  /// changes.
  const Matrix<Scalar>& step(const MatrixView<Scalar>& inputs) {
    prepareStep(inputs);
    commitStep();
    return m_core.state();
  }

  /// y_t of the step prepareStep() computed (o × B), before commitStep() takes it.
  const Matrix<Scalar>& preparedOutputs() const { return m_core.stagedOutputs(); }

  /// The first half of step(): checks x_t (and that the cell keeps its sizes) and computes
  /// s_t from the current state, which it returns without changing anything else; commitStep()
  /// then takes the step. What a trainer calls to score s_t before the engine moves.
  const Matrix<Scalar>& prepareStep(const MatrixView<Scalar>& inputs) {
    m_core.requireSameSizes();
    return m_core.stage(inputs);
  }

  /// The second half of step(): rebuilds after a mask change, performs the pending influence
  /// update and makes the prepared step current.
  /// @throws UsageError without a prepareStep() since the last step or reset
  void commitStep() {
    m_core.requireStaged("commitStep");
    if (m_core.cellChanged()) {
      RTRL engine = rebuilt();
      engine.m_core.takeStaged(m_core);
      *this = std::move(engine);
    }
    if (m_pending) updateInfluence(nullptr);
    m_core.commitStaged();
    m_pending = true;
  }

  /// Adds Σ_b J_bᵀ δ_b to the gradient, for the loss gradients of the last step: over the
  /// outputs y_t (o × B), or over the states s_t (k × B) for a cell whose output is the head of
  /// its state; a pending influence update runs in the same pass over J.
  void accumulate(const MatrixView<Scalar>& lossGradients) {
    m_core.checkStateGradient(lossGradients);
    const MatrixView<Scalar> stateGradients = m_core.toStateGradients(lossGradients);
    m_core.addOutputTerm(m_core.m_gradient);
    if (m_pending) {
      updateInfluence(&stateGradients);
    } else {
      runTiles(false, &stateGradients);
    }
  }

  /// The accumulated gradient, θ-ordered (cell().unflatten() gives the PyTorch tensors).
  const Vector<Scalar>& gradient() const { return m_core.m_gradient; }
  /// Sets the accumulated gradient to zero; the state and the influence J carry on.
  void resetGradient() { m_core.m_gradient.setZero(); }

  /// Zero states and zero influence (new sequences on every stream). resetState(S0) starts
  /// from the columns of S0.
  void resetState() {
    m_core.resetState();
    clearInfluence();
  }
  /// New sequences from the states `initial` (k × B), with zero influence.
  /// @throws ShapeError unless `initial` is k × B
  /// @throws NonFiniteError if `initial` holds a NaN or an infinity (nothing changes then)
  void resetState(const MatrixView<Scalar>& initial) {
    m_core.resetState(initial);
    clearInfluence();
  }
  /// A new sequence on stream b alone: zero state and zero influence J_b; the other streams go
  /// on (a pending update is performed first, so that theirs is kept).
  /// @throws ShapeError unless 0 ≤ stream < B
  void resetStream(Index stream) {
    m_core.checkedStream(stream);
    // Under changed masks or sizes the pending step is never consumed (step() rebuilds or refuses).
    if (m_pending && m_core.sameCell()) updateInfluence(nullptr);
    m_core.resetStream(stream);
    const Index k = m_core.m_stateSize;
    m_influence.middleRows(stream * k, k).setZero();
  }

  /// Performs the lazy influence update of the last step now (it otherwise runs at the next
  /// accumulate() or step()); afterwards influence() needs no update.
  void flush() {
    if (!m_pending) return;
    m_core.requireUnchangedCell("flush");
    updateInfluence(nullptr);
  }

  /// Writes the engine's state under `prefix` (docs/reliability.md): the states, J (B × k × p),
  /// the gradient, and the last step's factors with the flag saying whether J still has to take
  /// that step (saved as is rather than flushed, so that a resumed run takes the same path).
  void saveState(NpzArchive& archive, const std::string& prefix) const {
    if (m_core.cellChanged()) return rebuilt().saveState(archive, prefix);  // new masks: what step() resumes from
    m_core.save(archive, prefix, "RTRL");
    archive[prefix + "influence"] =
        NpyArray::of(m_influence.data(), {m_core.streams(), m_core.m_stateSize, m_influence.cols()});
    putArray(archive, prefix + "gradient", m_core.m_gradient);
    putScalar<std::int64_t>(archive, prefix + "pending", m_pending ? 1 : 0);
    m_core.saveStep(archive, prefix + "step/", m_pending);
  }
  /// Restores what saveState wrote, checked against the bound cell and B (FormatError naming
  /// the array otherwise), with any thread count; on any error the engine is left as it was.
  void loadState(const NpzArchive& archive, const std::string& prefix) {
    RTRL loaded(cell(), m_options, batch());
    loaded.m_core.load(archive, prefix, "RTRL");
    const Index k = loaded.m_core.m_stateSize, p = loaded.m_influence.cols(), streams = loaded.streams();
    const std::vector<Scalar> influence = readValues<Scalar>(archive, prefix + "influence", {streams, k, p});
    loaded.m_influence = Eigen::Map<const RowMatrix<Scalar>>(influence.data(), streams * k, p);
    loaded.m_core.m_gradient = readVector<Scalar>(archive, prefix + "gradient", p);
    // A step is pending only after one was taken.
    loaded.m_pending = readScalar<std::int64_t>(archive, prefix + "pending", 0, loaded.steps() > 0 ? 1 : 0) == 1;
    loaded.m_core.loadStep(archive, prefix + "step/");
    *this = std::move(loaded);
  }

  /// s_t of every stream, k × B (k values per column; [h; c] for an LSTM).
  const Matrix<Scalar>& state() const { return m_core.state(); }
  /// y_t of every stream, o × B (h for the gated cells).
  const Matrix<Scalar>& outputs() const { return m_core.outputs(); }
  /// The cell the engine is bound to.
  const CellType& cell() const { return m_core.cell(); }
  /// Batch steps since construction or the last resetState().
  Index steps() const { return m_core.steps(); }
  /// B, the streams advanced together.
  Index streams() const { return m_core.streams(); }
  /// The streams and threads the engine was built with.
  Batch batch() const { return {m_core.streams(), m_core.threads()}; }
  /// The influence matrices J_t of the B streams (B·k × p: stream b's J_b is rows [b·k, (b+1)·k)),
  /// after the pending update.
  const RowMatrix<Scalar>& influence() {
    if (m_pending) {
      m_core.requireUnchangedCell("influence");
      updateInfluence(nullptr);
    }
    return m_influence;
  }
  /// Bytes of the influence matrices (k·p values per stream), the state carried from step to step.
  std::size_t bytes() const { return static_cast<std::size_t>(m_influence.size()) * sizeof(Scalar); }
  /// Bytes of the per-step scratch: each stream's D_t, and on the dense path each thread's tile
  /// of the product and its packing, on the sparse path the second B·k × p matrix.
  std::size_t workspaceBytes() const {
    const Index values = m_next.size() + m_tiles.size() + m_denseDynamics.size() + static_cast<Index>(m_values.size()) +
                         static_cast<Index>(m_factorValues.size());
    std::size_t bytes = static_cast<std::size_t>(values) * sizeof(Scalar) + m_entryOrder.size() * sizeof(StorageIndex);
    for (const auto& gemm : m_gemms) bytes += gemm.bytes();
    return bytes;
  }
  /// The options the engine was built with.
  const Options& options() const { return m_options; }

  /// Parameters (columns of J) of one unit of the update: a fixed split, the same for every T.
  static constexpr Index columnTile = 384;

private:
  /// The engine as step() continues it after a mask change: built afresh for the cell's masks
  /// (zero influence and gradient, nothing pending) with the states and step counts kept. Built
  /// apart, so that a refusal (an influence over snap::maxArrayBytes) changes nothing.
  RTRL rebuilt() const {
    RTRL engine(cell(), m_options, batch());
    engine.m_core.keepFrom(m_core);
    return engine;
  }

  void build() {
    const CellType& cell = m_core.cell();
    const Index k = cell.stateSize(), p = cell.parameterCount(), streams = m_core.streams();
    detail::requireArray<Scalar>("cell", k, p, "RTRL influence (k x p)");
    const SparsityPattern& graph = cell.dynamicsGraph();
    const Index nonZeros = graph.nonZeros();
    m_dense = static_cast<double>(nonZeros) >= m_options.denseDynamicsAbove * static_cast<double>(k * k);
    detail::requireArray<Scalar>("Batch::streams", streams, (m_dense ? 1 : 2) * k * p,
                                 m_dense ? "RTRL influences (B x k x p)" : "RTRL influences and update (2 x B x k x p)");
    m_core.resize();
    m_influence = RowMatrix<Scalar>::Zero(streams * k, p);
    m_next = RowMatrix<Scalar>::Zero(m_dense ? 0 : streams * k, m_dense ? 0 : p);
    m_values.assign(static_cast<std::size_t>(streams * nonZeros), Scalar(0));
    m_factorValues.assign(static_cast<std::size_t>(streams * cell.factorPattern().nonZeros()), Scalar(0));
    m_entryOrder.resize(static_cast<std::size_t>(nonZeros));
    for (std::size_t e = 0; e < m_entryOrder.size(); ++e) m_entryOrder[e] = static_cast<StorageIndex>(e);
    m_denseDynamics = RowMatrix<Scalar>::Zero(m_dense ? streams * k : 0, m_dense ? k : 0);
    const Index tile = std::min(columnTile, p), threads = m_core.threads();
    m_tiles = Vector<Scalar>::Zero(m_dense ? threads * k * tile : 0);
    m_gemms.clear();
    if (m_dense)
      for (Index t = 0; t < threads; ++t) m_gemms.emplace_back(tile, k, k);
    m_pending = false;
  }

  void clearInfluence() {
    m_influence.setZero();
    m_pending = false;
  }

  /// J_b ← D_t^b J_b + I_t^b for every stream b with its last step's factors, and, given state
  /// gradients, the gradient's Σ_b J_bᵀ δ_b in the same pass.
  void updateInfluence(const MatrixView<Scalar>* stateGradients) {
    const CellType& cell = m_core.cell();
    const SparsityPattern& graph = cell.dynamicsGraph();
    const Index k = m_core.m_stateSize, nonZeros = graph.nonZeros();
    // D_t of each stream: work per stream, shared among the threads by streams.
    m_core.workers().run([&](int t) {
      const detail::Range streams = detail::partOf(m_core.streams(), t, m_core.threads());
      for (Index b = streams.begin; b < streams.end; ++b) {
        Scalar* values = m_values.data() + b * nonZeros;
        const StepCache<Scalar>& cache = m_core.m_caches[static_cast<std::size_t>(b)];
        cell.dynamicsJacobian(cache, std::span<Scalar>(values, static_cast<std::size_t>(nonZeros)));
        const auto factors = static_cast<std::size_t>(cell.factorPattern().nonZeros());
        cell.immediateFactors(cache, std::span<Scalar>(m_factorValues.data() + static_cast<std::size_t>(b) * factors, factors));
        if (m_dense)
          for (Index e = 0; e < nonZeros; ++e) m_denseDynamics(b * k + graph.entryRow(e), graph.column(e)) = values[e];
      }
    });
    runTiles(true, stateGradients);
    if (!m_dense) std::swap(m_influence, m_next);
    m_pending = false;
  }

  /// Every tile of columns of J, spread over the threads: with `update`, J_b[:, tile] ←
  /// D_t^b J_b[:, tile] + I_t^b[:, tile]; given state gradients, g[tile] += J_b[:, tile]ᵀ δ_b
  /// with the updated J_b; both for b = 0 … B − 1 in that order. The dense product runs into
  /// the thread's buffer, which stays in cache, and is copied back into J; the sparse one, a
  /// few multiply-adds per value read, writes into the second matrix (m_next, swapped in once
  /// all tiles are done), where a copy would cost more than it saves.
  void runTiles(bool update, const MatrixView<Scalar>* stateGradients) {
    const Index k = m_core.m_stateSize, p = m_influence.cols(), streams = m_core.streams();
    const Index tiles = (p + columnTile - 1) / columnTile;
    using Block = Eigen::Map<RowMatrix<Scalar>, 0, Eigen::OuterStride<>>;
    m_core.workers().run([&](int t) {
      const detail::Range part = detail::partOf(tiles, t, m_core.threads());
      Scalar* buffer = m_dense ? m_tiles.data() + t * k * std::min(columnTile, p) : nullptr;
      for (Index tile = part.begin; tile < part.end; ++tile) {
        const Index j0 = tile * columnTile, width = std::min(columnTile, p - j0);
        for (Index b = 0; b < streams; ++b) {
          Scalar* influence = m_influence.data() + b * k * p + j0;  // J_b[:, tile], rows p apart
          Scalar* updated = influence;                              // where J_b[:, tile] is after the update
          if (update && m_dense) {
            productTile(t, b, width, influence, buffer, width);
            addImmediate(b, j0, width, buffer, width);
            Block(influence, k, width, Eigen::OuterStride<>(p)) = Eigen::Map<const RowMatrix<Scalar>>(buffer, k, width);
          } else if (update) {
            updated = m_next.data() + b * k * p + j0;
            productTile(t, b, width, influence, updated, p);
            addImmediate(b, j0, width, updated, p);
          }
          if (stateGradients)
            m_core.m_gradient.segment(j0, width).noalias() +=
                Block(updated, k, width, Eigen::OuterStride<>(p)).transpose() * stateGradients->col(b);
        }
      }
    });
  }

  /// out = D_t^b · in for in = J_b[:, tile] (k × width, rows p apart) and out k × width (rows
  /// outStride apart), on thread t.
  void productTile(int t, Index b, Index width, const Scalar* in, Scalar* out, Index outStride) {
    const Index k = m_core.m_stateSize, p = m_influence.cols();
    if (m_dense) {
      Eigen::Map<RowMatrix<Scalar>, 0, Eigen::OuterStride<>>(out, k, width, Eigen::OuterStride<>(outStride)).setZero();
      // outᵀ (width × k, col-major) = inᵀ (width × k, col-major, ld p) · D_bᵀ (k × k, col-major).
      m_gemms[static_cast<std::size_t>(t)].template accumulate<Eigen::ColMajor, Eigen::ColMajor>(
          width, k, k, in, p, m_denseDynamics.data() + b * k * k, k, out, outStride);
    } else {
      const SparsityPattern& graph = m_core.cell().dynamicsGraph();
      detail::sparseRowProduct(k, width, p, outStride, graph.rowStarts().data(), graph.columns().data(),
                               m_entryOrder.data(), m_values.data() + b * graph.nonZeros(), in, out);
    }
  }

  /// out += I_t^b[:, j0 … j0 + width) (k × width, rows outStride apart), column by column from
  /// stream b's factored form: F_t[:, factor(j)] · z[source(j)] (docs/math.md §2).
  void addImmediate(Index b, Index j0, Index width, Scalar* out, Index outStride) const {
    const CellType& cell = m_core.cell();
    const ParameterLayout& layout = cell.layout();
    const SparsityPattern& factorRows = cell.factorPattern();
    const Scalar* factors = m_factorValues.data() + b * factorRows.nonZeros();
    const Scalar* z = m_core.m_sources.col(b).data();
    for (Index c = 0; c < width; ++c) {
      const Index j = j0 + c, f = layout.factor(j);
      const Scalar source = z[layout.source(j)];
      for (Index e = factorRows.rowStart(f); e < factorRows.rowStart(f + 1); ++e)
        out[factorRows.column(e) * outStride + c] += factors[e] * source;
    }
  }

  detail::EngineCore<CellType> m_core;
  Options m_options;
  RowMatrix<Scalar> m_influence;      ///< J_b of stream b in rows [b·k, (b+1)·k), B·k × p
  RowMatrix<Scalar> m_next;           ///< the sparse path's updated J (B·k × p; empty when dense)
  RowMatrix<Scalar> m_denseDynamics;  ///< D_t^b in rows [b·k, (b+1)·k) on the dense path
  Vector<Scalar> m_tiles;             ///< one k × tile buffer per thread on the dense path
  std::vector<Scalar> m_values;       ///< D_t^b's values on the dynamics graph, nnz per stream
  std::vector<Scalar> m_factorValues; ///< F_t^b's values on the factor pattern, nnz per stream
  std::vector<StorageIndex> m_entryOrder;  ///< 0, 1, …: the sparse kernel reads values in graph order
  std::vector<detail::GemmWorkspace<Scalar>> m_gemms;  ///< one per thread on the dense path
  bool m_dense = true;
  bool m_pending = false;
};

}  // namespace snap
