#pragma once
/// @file
/// Drives an engine over B streams that share one cell and one readout (MATH §6): online
/// updates every K steps with the influence carried across updates, or one update per
/// sequence; truncated BPTT(T) updates once per window with K = T.

#include <cstddef>
#include <span>
#include <variant>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/engines/engine_concept.hpp"
#include "snap/train/optimizers.hpp"
#include "snap/train/readout.hpp"

namespace snap {

/// When the trainer applies an update.
enum class UpdateSchedule {
  Online,       ///< every `updateEvery` steps; the influence carries on across updates
  PerSequence,  ///< once, at endSequence()
};

/// Options of a Trainer.
struct TrainerOptions {
  Index batch = 1;                                 ///< B streams sharing the weights
  UpdateSchedule schedule = UpdateSchedule::Online;
  Index updateEvery = 1;                           ///< K, for the online schedule
  double clipNorm = 0;                             ///< clip the global gradient norm to this; ≤ 0: off
};

/// Online or per-sequence training of a cell and a readout with any engine. Each of the B
/// streams has its own state and engine state; an update uses the gradient summed over the
/// steps since the last update and averaged over the streams.
template <Engine EngineType>
class Trainer {
public:
  using CellType = typename EngineType::CellType;
  using Scalar = typename EngineType::Scalar;

  Trainer(CellType& cell, Readout<Scalar>& readout, AnyOptimizer optimizer, const TrainerOptions& options = {},
          const typename EngineType::Options& engineOptions = {})
      : m_cell(&cell), m_readout(&readout), m_optimizer(optimizer), m_options(options),
        m_cellState(makeState(cell.parameterCount())), m_readoutState(makeState(readout.parameters().size())) {
    std::visit([](const auto& o) { o.validate(); }, m_optimizer);
    if (options.batch < 1) detail::fail<ValueError>("TrainerOptions::batch", "at least 1 stream", options.batch);
    if (options.updateEvery < 1)
      detail::fail<ValueError>("TrainerOptions::updateEvery", "at least 1 step", options.updateEvery);
    if (readout.hiddenSize() != cell.hiddenSize())
      detail::fail<ShapeError>("readout", "hidden size " + detail::describe(cell.hiddenSize()),
                               readout.hiddenSize());
    m_engines.reserve(static_cast<std::size_t>(options.batch));
    for (Index b = 0; b < options.batch; ++b) m_engines.emplace_back(cell, engineOptions);
    m_parameters = cell.parameters();
    m_cellGradient = Vector<Scalar>::Zero(cell.parameterCount());
    m_readoutGradient = Vector<Scalar>::Zero(readout.parameters().size());
    m_stateGradient = Vector<Scalar>::Zero(cell.stateSize());
  }

  Index batch() const { return m_options.batch; }
  const TrainerOptions& options() const { return m_options; }
  EngineType& engine(Index stream) { return m_engines[checkedStream(stream)]; }
  const EngineType& engine(Index stream) const { return m_engines[checkedStream(stream)]; }
  /// Updates applied so far.
  long long updates() const { return m_updates; }
  /// Steps taken since the last update (of the whole batch).
  Index pendingSteps() const { return m_pendingSteps; }
  /// The global gradient norm of the last update, before clipping.
  double lastGradientNorm() const { return m_lastNorm; }

  /// One step of stream b: feeds x, scores the readout against `target` (−1: unscored), and
  /// gives δ to the engine. Returns the loss in nats (0 when unscored).
  Scalar observe(Index stream, const VectorView<Scalar>& input, Index target) {
    EngineType& engine = m_engines[checkedStream(stream)];
    const Vector<Scalar>& state = engine.step(input);
    if (target < 0) return Scalar(0);
    const Scalar loss = m_readout->loss(state, target, m_stateGradient);
    engine.accumulate(m_stateGradient);
    return loss;
  }

  /// Ends a step of the whole batch (after observe() on each stream); on the online schedule,
  /// updates when K steps have passed. Returns true when it updated.
  bool endStep() {
    ++m_pendingSteps;
    if (m_options.schedule == UpdateSchedule::Online && m_pendingSteps >= m_options.updateEvery) {
      update();
      return true;
    }
    return false;
  }

  /// B = 1 shorthand: observe() then endStep(). Returns the loss in nats.
  Scalar step(const VectorView<Scalar>& input, Index target) {
    const Scalar loss = observe(0, input, target);
    endStep();
    return loss;
  }

  /// Starts a new sequence on stream b: zero state, zero influence (MATH §6).
  void resetStream(Index stream) { m_engines[checkedStream(stream)].resetState(); }

  /// Ends the sequence of every stream: on the per-sequence schedule, updates; then resets.
  void endSequence() {
    if (m_options.schedule == UpdateSchedule::PerSequence && m_pendingSteps > 0) update();
    for (EngineType& engine : m_engines) engine.resetState();
  }

  /// Applies the mean gradient over the streams with the optimizer, then clears it.
  void update() {
    if (m_cell->parameterCount() != m_parameters.size())
      detail::fail<UsageError>("cell", "the masks the trainer was built with (" + detail::describe(m_parameters.size()) +
                                           " parameters)", m_cell->parameterCount());
    const auto streams = static_cast<Scalar>(m_engines.size());
    m_cellGradient = m_engines.front().gradient();
    for (std::size_t b = 1; b < m_engines.size(); ++b) m_cellGradient += m_engines[b].gradient();
    if (m_engines.size() > 1) m_cellGradient /= streams;
    m_readoutGradient = m_readout->gradient() / streams;
    m_lastNorm = clipGlobalNorm<Scalar>(m_options.clipNorm, {&m_cellGradient, &m_readoutGradient});
    m_cell->layout().flattenInto(m_cell->tensors(), m_parameters);
    std::visit(
        [&](const auto& optimizer) {
          using Optimizer = std::decay_t<decltype(optimizer)>;
          optimizer.template update<Scalar>(std::get<typename Optimizer::template State<Scalar>>(m_cellState), m_parameters,
                           m_cellGradient);
          optimizer.template update<Scalar>(std::get<typename Optimizer::template State<Scalar>>(m_readoutState),
                           m_readout->parameters(), m_readoutGradient);
        },
        m_optimizer);
    m_cell->setParameters(m_parameters);
    for (EngineType& engine : m_engines) engine.resetGradient();
    m_readout->resetGradient();
    m_pendingSteps = 0;
    ++m_updates;
  }

private:
  using OptimizerState = std::variant<SGD::State<Scalar>, Adam::State<Scalar>>;

  std::size_t checkedStream(Index stream) const {
    if (stream < 0 || stream >= static_cast<Index>(m_engines.size()))
      detail::fail<ShapeError>("stream", "an index in [0, " + detail::describe(m_engines.size()) + ")", stream);
    return static_cast<std::size_t>(stream);
  }
  OptimizerState makeState(Index size) const {
    return std::visit(
        [size](const auto& optimizer) -> OptimizerState {
          using Optimizer = std::decay_t<decltype(optimizer)>;
          return typename Optimizer::template State<Scalar>(size);
        },
        m_optimizer);
  }

  CellType* m_cell;
  Readout<Scalar>* m_readout;
  AnyOptimizer m_optimizer;
  TrainerOptions m_options;
  OptimizerState m_cellState, m_readoutState;
  std::vector<EngineType> m_engines;
  Vector<Scalar> m_parameters, m_cellGradient, m_readoutGradient, m_stateGradient;
  Index m_pendingSteps = 0;
  long long m_updates = 0;
  double m_lastNorm = 0;
};

}  // namespace snap
