#pragma once
/// @file
/// Drives an engine over B streams that share one cell and one readout (docs/math.md §6): online
/// updates every K steps with the influence carried across updates, or one update per
/// sequence; truncated BPTT(T) updates once per window with K = T. The readout is a Readout
/// (classes) by default, or a RegressionReadout (real targets), or any TrainableReadout.

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <span>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/types.hpp"
#include "snap/engines/engine_concept.hpp"
#include "snap/archive/arrays.hpp"
#include "snap/cells/cell_archive.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/train/optimizers.hpp"
#include "snap/train/readout.hpp"
#include "snap/train/readout_concept.hpp"

namespace snap {

/// When the trainer applies an update.
enum class UpdateSchedule {
  Online,       ///< every `updateEvery` steps; the influence carries on across updates
  PerSequence,  ///< once, at endSequence()
};

/// What the trainer does with a NaN or an infinity where values enter training
/// (docs/reliability.md, "Non-finite values").
enum class NonFinitePolicy {
  /// Throw snap::NonFiniteError; the call changes nothing (new parameters that overflow from
  /// a finite gradient, a learning rate so large that η·g overflows, included: the optimizer
  /// writes its new state apart, kept only when the update is).
  Throw,
  /// Skip and count (Trainer::skipped()): a non-finite input skips the stream's step before
  /// the engine sees it; a next state or loss that is not finite skips the step's
  /// contribution; a non-finite gradient at update time skips the update and clears the
  /// accumulated gradients. Parameters and the optimizer's state are left untouched.
  Skip,
};

/// Options of a Trainer.
struct TrainerOptions {
  Index batch = 1;                                 ///< B streams sharing the weights, stepped together
  int threads = 1;                                 ///< T threads sharing the engine's work (same results for every T)
  UpdateSchedule schedule = UpdateSchedule::Online;  ///< every K steps, or once per sequence
  Index updateEvery = 1;                           ///< K, for the online schedule
  double clipNorm = 0;                             ///< clip the global gradient norm to this; ≤ 0: off
  NonFinitePolicy nonFinite = NonFinitePolicy::Throw;  ///< on a NaN or infinity: throw, or skip and count
};

/// Online or per-sequence training of a cell and a readout with any engine. One engine advances
/// the B streams together (snap::Batch), each stream with its own state and influence; an update
/// uses the gradient summed over the steps since the last update and averaged over the streams.
/// The readout (ReadoutType, a TrainableReadout of the engine's scalar) scores the cell's
/// outputs: a Readout against a class per stream (observe(inputs, targets) with −1 for
/// unscored), a RegressionReadout against a vector of real values per stream
/// (observe(inputs, targets, scored), targets outputs × B).
template <Engine EngineType, class ReadoutType_ = Readout<typename EngineType::Scalar>>
class Trainer {
  static_assert(requirement::ReadoutHasScalar<ReadoutType_> && requirement::ReadoutHasSizes<ReadoutType_>,
                "snap: a Trainer's readout needs `using Scalar`, hiddenSize() and outputs() (see snap::Readout)");
  static_assert(std::is_same_v<typename ReadoutType_::Scalar, typename EngineType::Scalar>,
                "snap: a Trainer's readout needs the engine's Scalar");
  static_assert(requirement::ReadoutHasParameters<ReadoutType_>,
                "snap: a Trainer's readout needs parameters() (const and writable), gradient() and resetGradient()");
  static_assert(requirement::ReadoutHasTwoPhaseLoss<ReadoutType_>,
                "snap: a Trainer's readout needs commitLoss() and discardLosses() (see snap::Readout::evaluateLoss)");
  static_assert(requirement::ReadoutOfClasses<ReadoutType_> || requirement::ReadoutOfValues<ReadoutType_>,
                "snap: a Trainer's readout needs evaluateLoss(output, target, outputGradient, slot) with a class "
                "(Index) or a vector of real values as the target");
  static_assert(requirement::ReadoutHasState<ReadoutType_>,
                "snap: a Trainer's readout needs saveState(archive, prefix) and loadState(archive, prefix)");
  static_assert(std::copyable<ReadoutType_>, "snap: a Trainer's readout needs to be copyable (loadState checks a copy)");

public:
  using CellType = typename EngineType::CellType;  ///< the engine's cell type
  using Scalar = typename EngineType::Scalar;      ///< the engine's scalar, float or double
  using ReadoutType = ReadoutType_;                ///< the readout's type, a TrainableReadout

  /// Trains `cell` and `readout` (which must outlive the trainer and stay at the same
  /// addresses) with `optimizer`: one engine of B = options.batch streams and T = options.threads
  /// threads, built on `cell` with `engineOptions`. The trainer trains the masks the cell has now (or that a loadState()
  /// gives it): after a setMasks() on the cell, observe(), update() and saveState() throw
  /// UsageError naming `cell`, so that no gradient of the old masks is ever applied to the new
  /// ones; build a new Trainer for new masks.
  /// @throws ValueError for an invalid optimizer, TrainerOptions (batch or updateEvery < 1,
  ///         threads outside [1, 256], clipNorm NaN, an unknown policy) or engine options, each
  ///         checked in Scalar (a learning rate that is 0 in float is refused for a float cell),
  ///         or a batch whose engine state would exceed snap::maxArrayBytes
  /// @throws ShapeError unless the readout's hidden size is the cell's
  /// @throws UsageError for untruncated BPTT (no BPTTOptions::window) on the online schedule
  Trainer(CellType& cell, ReadoutType& readout, AnyOptimizer optimizer, const TrainerOptions& options = {},
          const typename EngineType::Options& engineOptions = {})
      : m_cell(&cell), m_readout(&readout), m_optimizer(optimizer), m_options(options), m_engineOptions(engineOptions),
        m_cellState(makeState(cell.parameterCount())), m_readoutState(makeState(readout.parameters().size())),
        m_cellStateWork(m_cellState), m_readoutStateWork(m_readoutState),
        m_engine(checkedEngine(cell, options, engineOptions)) {
    std::visit([](const auto& o) { o.template validate<Scalar>(); }, m_optimizer);
    if (options.updateEvery < 1)
      detail::fail<ValueError>("TrainerOptions::updateEvery", "at least 1 step", options.updateEvery);
    if (std::isnan(options.clipNorm))
      detail::fail<ValueError>("TrainerOptions::clipNorm", "a norm (<= 0 or infinite: no clipping)", options.clipNorm);
    if (options.clipNorm > 0 && std::isfinite(options.clipNorm))
      detail::positiveOptionIn<Scalar>("TrainerOptions::clipNorm", options.clipNorm,
                                       "a norm (<= 0 or infinite: no clipping)");
    if (options.nonFinite != NonFinitePolicy::Throw && options.nonFinite != NonFinitePolicy::Skip)
      detail::fail<ValueError>("TrainerOptions::nonFinite", "NonFinitePolicy::Throw or Skip",
                               static_cast<int>(options.nonFinite));
    if (readout.hiddenSize() != cell.outputSize())
      detail::fail<ShapeError>("readout", "the cell's output size " + detail::describe(cell.outputSize()),
                               readout.hiddenSize());
    // An engine with an optional window (BPTT) and none keeps the whole sequence: every online
    // update would backpropagate all of it, a cost per step that grows with the sequence.
    if constexpr (requires { engineOptions.window.has_value(); })
      if (options.schedule == UpdateSchedule::Online && !engineOptions.window.has_value())
        detail::fail<UsageError>(
            "BPTTOptions::window",
            "a window T for online updates ({.updateEvery = T} with {.window = T}), or "
            "{.schedule = snap::UpdateSchedule::PerSequence} for untruncated BPTT",
            "none: untruncated BPTT updated online, whose cost per update grows with the sequence");
    m_parameters = cell.parameters();
    m_cellGradient = Vector<Scalar>::Zero(cell.parameterCount());
    m_readoutGradient = Vector<Scalar>::Zero(readout.parameters().size());
    m_readoutParameters = readout.parameters();
    m_outputGradients = Matrix<Scalar>::Zero(cell.outputSize(), options.batch);
    m_nextStates = Matrix<Scalar>::Zero(cell.stateSize(), options.batch);
    m_nextOutputs = Matrix<Scalar>::Zero(cell.outputSize(), options.batch);
    m_nextCache = cell.makeCache();
    m_losses = Vector<Scalar>::Zero(options.batch);
    m_maskVersion = cell.maskVersion();
  }

  /// B, the number of streams.
  Index batch() const { return m_options.batch; }
  /// The options the trainer was built with.
  const TrainerOptions& options() const { return m_options; }
  /// The engine of the B streams (stream b is column b of its states).
  EngineType& engine() { return m_engine; }
  /// The engine of the B streams (read only).
  const EngineType& engine() const { return m_engine; }
  /// The loss of each stream at the last observe() (0 where unscored or skipped): nats for a
  /// Readout, ½ ‖ŷ − target‖² for a RegressionReadout.
  const Vector<Scalar>& losses() const { return m_losses; }
  /// Updates applied so far.
  long long updates() const { return m_updates; }
  /// Steps taken since the last update (of the whole batch).
  Index pendingSteps() const { return m_pendingSteps; }
  /// The global gradient norm of the last update, before clipping.
  double lastGradientNorm() const { return m_lastNorm; }
  /// With NonFinitePolicy::Skip: stream steps skipped for a non-finite input, next state or
  /// loss; updates skipped for a non-finite gradient or parameter; and both together.
  long long skippedSteps() const { return m_skippedSteps; }
  /// Updates skipped (NonFinitePolicy::Skip) for a non-finite gradient or parameter.
  long long skippedUpdates() const { return m_skippedUpdates; }
  /// skippedSteps() + skippedUpdates().
  long long skipped() const { return m_skippedSteps + m_skippedUpdates; }

  /// One step of the B streams scored by a Readout: feeds the inputs (m × B, stream b in column
  /// b), scores stream b's output against the class targets[b] (−1: unscored), and gives the
  /// output gradients to the engine. Returns the summed loss in nats (losses() has each
  /// stream's; 0 when unscored or skipped). A NaN or an infinity in the inputs is caught before
  /// the engine sees them; one in a next state or a loss before the output gradients reach the
  /// engine (TrainerOptions::nonFinite says what happens then: with NonFinitePolicy::Skip, a
  /// non-finite input or next state skips the batch step, a non-finite loss the contribution of
  /// that stream). With NonFinitePolicy::Throw a refused call changes nothing: a scored step has
  /// the engine prepare the step, scores its next outputs, and lets the engine take it only once
  /// the states and the losses are finite.
  Scalar observe(const MatrixView<Scalar>& inputs, std::span<const Index> targets)
    requires requirement::ReadoutOfClasses<ReadoutType>
  {
    if (m_options.nonFinite == NonFinitePolicy::Skip) detail::requireCounterRoom("skipped steps", m_skippedSteps);
    detail::requireColumns("input", inputs.rows(), inputs.cols(), m_cell->inputSize(), m_options.batch);
    detail::requireLength("targets", static_cast<Index>(targets.size()), m_options.batch);
    bool scored = false;
    for (std::size_t b = 0; b < targets.size(); ++b) {
      if (targets[b] < -1 || targets[b] >= m_readout->outputs())
        detail::fail<ValueError>(m_options.batch == 1 ? std::string("target") : "targets[" + detail::describe(b) + "]",
                                 "a class in [0, " + detail::describe(m_readout->outputs()) + ") or -1 (unscored)",
                                 targets[b]);
      scored = scored || targets[b] >= 0;
    }
    requireTrainedMasks();
    return observeStreams(
        inputs, scored, [&](Index b) { return targets[static_cast<std::size_t>(b)] >= 0; },
        [&](Index b, const VectorView<Scalar>& output, VectorSpan<Scalar> outputGradient) {
          return m_readout->evaluateLoss(output, targets[static_cast<std::size_t>(b)], outputGradient, b);
        });
  }

  /// B = 1 shorthand: one stream's input and target class (−1: unscored).
  Scalar observe(const VectorView<Scalar>& input, Index target)
    requires requirement::ReadoutOfClasses<ReadoutType>
  {
    return observe(MatrixView<Scalar>(input), {&target, 1});
  }

  /// One step of the B streams scored by a RegressionReadout: as observe(inputs, targets) of a
  /// Readout, with stream b's output scored against the real values of column b of `targets`
  /// (outputs × B; for B = 1 a vector of outputs() values) where scored[b] is true. The columns
  /// of unscored streams are not read (they may hold anything, a NaN included). A NaN or an
  /// infinity in a scored target is refused like one in a loss: NonFiniteError naming
  /// `target` (B = 1) or `targets[b]` before anything changes, or with NonFinitePolicy::Skip
  /// the skipped contribution of that stream.
  Scalar observe(const MatrixView<Scalar>& inputs, const MatrixView<Scalar>& targets, std::span<const bool> scored)
    requires requirement::ReadoutOfValues<ReadoutType>
  {
    return observeValues(inputs, targets, static_cast<Index>(scored.size()),
                         [&](Index b) { return scored[static_cast<std::size_t>(b)]; });
  }
  /// observe(inputs, targets, scored) with the flags in a std::vector<bool> (which no span can view).
  Scalar observe(const MatrixView<Scalar>& inputs, const MatrixView<Scalar>& targets, const std::vector<bool>& scored)
    requires requirement::ReadoutOfValues<ReadoutType>
  {
    return observeValues(inputs, targets, static_cast<Index>(scored.size()),
                         [&](Index b) { return static_cast<bool>(scored[static_cast<std::size_t>(b)]); });
  }
  /// observe(inputs, targets, scored) with every stream scored. For B = 1, `inputs` and
  /// `targets` may be vectors (one column each).
  Scalar observe(const MatrixView<Scalar>& inputs, const MatrixView<Scalar>& targets)
    requires requirement::ReadoutOfValues<ReadoutType>
  {
    return observeValues(inputs, targets, m_options.batch, [](Index) { return true; });
  }

  /// One step of the B streams that scores none (any readout): what observe() with every
  /// target −1, or every stream unscored, does. Returns 0.
  Scalar observe(const MatrixView<Scalar>& inputs) {
    if (m_options.nonFinite == NonFinitePolicy::Skip) detail::requireCounterRoom("skipped steps", m_skippedSteps);
    detail::requireColumns("input", inputs.rows(), inputs.cols(), m_cell->inputSize(), m_options.batch);
    requireTrainedMasks();
    return observeStreams(
        inputs, false, [](Index) { return false; },
        [](Index, const VectorView<Scalar>&, VectorSpan<Scalar>) { return Scalar(0); });
  }

  /// Ends a step of the batch (after observe()); on the online schedule, updates when K steps
  /// have passed. Returns true when it applied an update. A batch step that observe() skipped
  /// (NonFinitePolicy::Skip) does not count: it is as if it had not been taken.
  /// An update refused with NonFinitePolicy::Throw leaves the step open, as if endStep() had
  /// not been called.
  bool endStep() {
    detail::requireCounterRoom("pending steps", m_pendingSteps);
    bool updated = false;
    if (!(m_stepSkipped && !m_stepObserved)) {
      ++m_pendingSteps;
      if (m_options.schedule == UpdateSchedule::Online && m_pendingSteps >= m_options.updateEvery) {
        try {
          updated = update();
        } catch (const Error&) {
          --m_pendingSteps;
          throw;
        }
      }
    }
    m_stepSkipped = m_stepObserved = false;
    return updated;
  }

  /// observe() then endStep(). Returns the summed loss in nats. (Two calls: an update refused
  /// in endStep() leaves the observation made and the step open.)
  Scalar step(const MatrixView<Scalar>& inputs, std::span<const Index> targets)
    requires requirement::ReadoutOfClasses<ReadoutType>
  {
    const Scalar loss = observe(inputs, targets);
    endStep();
    return loss;
  }
  /// B = 1 shorthand: one stream's input and target.
  Scalar step(const VectorView<Scalar>& input, Index target)
    requires requirement::ReadoutOfClasses<ReadoutType>
  {
    return step(MatrixView<Scalar>(input), {&target, 1});
  }
  /// observe(inputs, targets, scored) then endStep(), for a RegressionReadout. Returns the
  /// summed loss.
  Scalar step(const MatrixView<Scalar>& inputs, const MatrixView<Scalar>& targets, std::span<const bool> scored)
    requires requirement::ReadoutOfValues<ReadoutType>
  {
    const Scalar loss = observe(inputs, targets, scored);
    endStep();
    return loss;
  }
  /// observe(inputs, targets, scored) then endStep(), the flags in a std::vector<bool>.
  Scalar step(const MatrixView<Scalar>& inputs, const MatrixView<Scalar>& targets, const std::vector<bool>& scored)
    requires requirement::ReadoutOfValues<ReadoutType>
  {
    const Scalar loss = observe(inputs, targets, scored);
    endStep();
    return loss;
  }
  /// observe(inputs, targets) then endStep(), every stream scored, for a RegressionReadout.
  Scalar step(const MatrixView<Scalar>& inputs, const MatrixView<Scalar>& targets)
    requires requirement::ReadoutOfValues<ReadoutType>
  {
    const Scalar loss = observe(inputs, targets);
    endStep();
    return loss;
  }
  /// observe(inputs), unscored, then endStep(). Returns 0.
  Scalar step(const MatrixView<Scalar>& inputs) {
    const Scalar loss = observe(inputs);
    endStep();
    return loss;
  }

  /// Starts a new sequence on stream b: zero state, zero influence (docs/math.md §6); the other
  /// streams go on.
  /// @throws ShapeError unless 0 ≤ stream < B
  void resetStream(Index stream) { m_engine.resetStream(stream); }

  /// Ends the sequence of every stream: on the per-sequence schedule, updates; then resets.
  void endSequence() {
    if (m_options.schedule == UpdateSchedule::PerSequence && m_pendingSteps > 0) update();
    m_engine.resetState();
  }

  /// Applies the mean gradient over the streams with the optimizer, then clears it. Returns
  /// false when a non-finite gradient or parameter made it skip the update (NonFinitePolicy::Skip);
  /// with NonFinitePolicy::Throw that throws NonFiniteError and changes nothing.
  bool update() {
    requireTrainedMasks();
    requireUpdateRoom();
    const auto streams = static_cast<Scalar>(m_options.batch);
    m_cellGradient = m_engine.gradient();  // summed over the streams
    if (m_options.batch > 1) m_cellGradient /= streams;
    m_readoutGradient = m_readout->gradient() / streams;
    // The update enters here: a NaN or infinity, or a gradient whose square overflows (which
    // would put an infinity into Adam's second moment), is refused before anything changes.
    const bool cellFinite = detail::allFinite(m_cellGradient.array().square());
    if (!cellFinite || !detail::allFinite(m_readoutGradient.array().square()))
      return refuseUpdate(cellFinite ? "readout gradient" : "cell gradient",
                          cellFinite ? m_readoutGradient : m_cellGradient);
    const double norm = clipGlobalNorm<Scalar>(m_options.clipNorm, {&m_cellGradient, &m_readoutGradient});
    m_cell->parametersInto(m_parameters);
    m_readoutParameters = m_readout->parameters();
    // The optimizer writes its new states into the second ones (no copy), kept below.
    std::visit(
        [&](const auto& optimizer) {
          using State = typename std::decay_t<decltype(optimizer)>::template State<Scalar>;
          optimizer.template update<Scalar>(std::get<State>(m_cellState), std::get<State>(m_cellStateWork),
                                            m_parameters, m_cellGradient);
          optimizer.template update<Scalar>(std::get<State>(m_readoutState), std::get<State>(m_readoutStateWork),
                                            m_readoutParameters, m_readoutGradient);
        },
        m_optimizer);
    // A finite gradient can still overflow a parameter (a huge learning rate): refused, and
    // the cell, the readout and the optimizer's states keep theirs.
    const bool parametersFinite = detail::allFinite(m_parameters);
    if (!parametersFinite || !detail::allFinite(m_readoutParameters))
      return refuseUpdate(parametersFinite ? "readout parameters" : "parameters",
                          parametersFinite ? m_readoutParameters : m_parameters);
    m_cellState.swap(m_cellStateWork);
    m_readoutState.swap(m_readoutStateWork);
    m_lastNorm = norm;
    m_cell->setParameters(m_parameters);
    m_readout->parameters() = m_readoutParameters;
    clearGradients();
    ++m_updates;
    return true;
  }

  /// @name Saving and loading (docs/reliability.md)
  /// Everything training needs to go on exactly: the cell's tensors and masks, the readout,
  /// the optimizer's state, the engine's state of the B streams and the trainer's counters.
  /// @{

  /// Writes the state under `prefix`: `cell/…`, `readout/…`, `optimizer/…`, `engine/…` (the B
  /// streams), the counters `batch`, `pending_steps`, `updates`, `skipped_steps`,
  /// `skipped_updates` and `last_gradient_norm`, and the flags of the batch step in progress,
  /// `step_observed` and `step_skipped` (a save between observe() and endStep()). The thread
  /// count is not saved: a checkpoint resumes bit-identically with any TrainerOptions::threads.
  void saveState(NpzArchive& archive, const std::string& prefix = "") const
    requires requires(const EngineType& engine, NpzArchive& out) { engine.saveState(out, std::string()); }
  {
    requireTrainedMasks();  // a trainer that cannot go on is not saved either
    detail::saveCell(archive, prefix + "cell/", *m_cell);
    m_readout->saveState(archive, prefix + "readout/");
    std::visit(
        [&](const auto& optimizer) {
          using Optimizer = std::decay_t<decltype(optimizer)>;
          putText(archive, prefix + "optimizer/kind", optimizerName<Optimizer>());
          putScalar<double>(archive, prefix + "optimizer/learning_rate", optimizer.learningRate);
          std::get<typename Optimizer::template State<Scalar>>(m_cellState).saveState(archive, prefix + "optimizer/cell/");
          std::get<typename Optimizer::template State<Scalar>>(m_readoutState)
              .saveState(archive, prefix + "optimizer/readout/");
        },
        m_optimizer);
    putScalar<std::int64_t>(archive, prefix + "batch", m_options.batch);
    putScalar<std::int64_t>(archive, prefix + "pending_steps", m_pendingSteps);
    putScalar<std::int64_t>(archive, prefix + "updates", m_updates);
    putScalar<std::int64_t>(archive, prefix + "skipped_steps", m_skippedSteps);
    putScalar<std::int64_t>(archive, prefix + "skipped_updates", m_skippedUpdates);
    putScalar<double>(archive, prefix + "last_gradient_norm", m_lastNorm);
    putScalar<std::int64_t>(archive, prefix + "step_observed", m_stepObserved ? 1 : 0);
    putScalar<std::int64_t>(archive, prefix + "step_skipped", m_stepSkipped ? 1 : 0);
    m_engine.saveState(archive, prefix + "engine/");
  }

  /// Restores what saveState wrote. Everything is read and checked first (sizes against the
  /// cell, the readout, the batch, the optimizer kind and each engine's configuration;
  /// FormatError naming the first array that does not fit), then committed: on any error the
  /// trainer, the cell and the readout are left exactly as they were. The configuration that
  /// does not shape the state (learning rate, clipping, schedule) is the trainer's own.
  void loadState(const NpzArchive& archive, const std::string& prefix = "")
    requires requires(EngineType& engine, const NpzArchive& in) { engine.loadState(in, std::string()); }
  {
    const auto counter = [&](const char* name) { return readCounter(archive, prefix + name); };
    readScalar<std::int64_t>(archive, prefix + "batch", m_options.batch, m_options.batch);
    const std::int64_t pendingSteps = counter("pending_steps"), updates = counter("updates");
    const std::int64_t skippedSteps = counter("skipped_steps"), skippedUpdates = counter("skipped_updates");
    const double lastNorm = readScalar<double>(archive, prefix + "last_gradient_norm", 0.0,
                                                       std::numeric_limits<double>::infinity());
    const bool stepObserved = readScalar<std::int64_t>(archive, prefix + "step_observed", 0, 1) == 1;
    const bool stepSkipped = readScalar<std::int64_t>(archive, prefix + "step_skipped", 0, 1) == 1;
    CellType cell = *m_cell;
    detail::loadCell(archive, prefix + "cell/", cell);
    const bool sameMasks = cell.maskVersion() == m_cell->maskVersion();  // loadCell sets only masks that differ
    ReadoutType readout = *m_readout;
    readout.loadState(archive, prefix + "readout/");
    OptimizerState cellState = makeState(cell.parameterCount()), readoutState = makeState(readout.parameters().size());
    std::visit(
        [&](const auto& optimizer) {
          using Optimizer = std::decay_t<decltype(optimizer)>;
          detail::requireText(archive, prefix + "optimizer/kind", optimizerName<Optimizer>(), "the state of optimizer");
          std::get<typename Optimizer::template State<Scalar>>(cellState).loadState(archive, prefix + "optimizer/cell/");
          std::get<typename Optimizer::template State<Scalar>>(readoutState)
              .loadState(archive, prefix + "optimizer/readout/");
        },
        m_optimizer);
    // The engine is read against a cell with the stored masks: this one when they are the
    // same (the loaded engine then replaces the trainer's), else the copy, to check only.
    {
      EngineType engine(sameMasks ? *m_cell : cell, m_engineOptions, batchOf(m_options));
      engine.loadState(archive, prefix + "engine/");
      if (sameMasks) {
        *m_cell = std::move(cell);
        m_engine = std::move(engine);
      }
    }
    // Commit.
    if (!sameMasks) {
      *m_cell = std::move(cell);
      m_engine.loadState(archive, prefix + "engine/");
    }
    *m_readout = std::move(readout);
    m_cellState = std::move(cellState);
    m_readoutState = std::move(readoutState);
    m_parameters = m_cell->parameters();
    m_cellGradient = Vector<Scalar>::Zero(m_parameters.size());
    m_pendingSteps = static_cast<Index>(pendingSteps);
    m_updates = updates;
    m_skippedSteps = skippedSteps;
    m_skippedUpdates = skippedUpdates;
    m_lastNorm = lastNorm;
    m_stepObserved = stepObserved;
    m_stepSkipped = stepSkipped;
    m_maskVersion = m_cell->maskVersion();  // the loaded masks are the ones trained from now on
  }
  /// @}

private:
  using OptimizerState = std::variant<SGD::State<Scalar>, Adam::State<Scalar>>;

  static Batch batchOf(const TrainerOptions& options) { return {options.batch, options.threads}; }
  /// The engine of B streams and T threads, after the checks that name TrainerOptions (a batch
  /// whose engine state would exceed snap::maxArrayBytes is refused from one stream's bytes,
  /// before anything of its size is allocated).
  static EngineType checkedEngine(const CellType& cell, const TrainerOptions& options,
                                  const typename EngineType::Options& engineOptions) {
    if (options.batch < 1) detail::fail<ValueError>("TrainerOptions::batch", "at least 1 stream", options.batch);
    if (options.threads < 1 || options.threads > 256)
      detail::fail<ValueError>("TrainerOptions::threads", "a thread count in [1, 256]", options.threads);
    if (options.batch > 1) {
      const EngineType one(cell, engineOptions);
      detail::requireArray<std::uint8_t>("TrainerOptions::batch", options.batch, static_cast<Index>(one.bytes()) + 1,
                                         "engine state (B x one stream's bytes)");
    }
    return EngineType(cell, engineOptions, batchOf(options));
  }
  OptimizerState makeState(Index size) const {
    return std::visit(
        [size](const auto& optimizer) -> OptimizerState {
          using Optimizer = std::decay_t<decltype(optimizer)>;
          return typename Optimizer::template State<Scalar>(size);
        },
        m_optimizer);
  }
  template <class Optimizer>
  static const char* optimizerName() {
    return std::is_same_v<Optimizer, Adam> ? "Adam" : "SGD";
  }

  /// Throws UsageError unless every counter an update advances can advance (the updates, the
  /// skipped updates, the optimizer's steps): checked before anything changes.
  void requireUpdateRoom() const {
    detail::requireCounterRoom("updates", m_updates);
    detail::requireCounterRoom("skipped updates", m_skippedUpdates);
    std::visit(
        [&](const auto& optimizer) {
          using State = typename std::decay_t<decltype(optimizer)>::template State<Scalar>;
          std::get<State>(m_cellState).requireRoom();
          std::get<State>(m_readoutState).requireRoom();
        },
        m_optimizer);
  }

  /// Throws UsageError unless the cell still has the masks the trainer was built with (or loaded).
  void requireTrainedMasks() const {
    if (m_cell->maskVersion() != m_maskVersion)
      detail::fail<UsageError>("cell", "the masks the trainer was built with (build a new Trainer after setMasks)",
                               "masks changed by setMasks since");
  }

  /// A batch step of real-valued targets (RegressionReadout): the checks of observe(inputs,
  /// targets, scored), then observeStreams(). `isScored(b)` reads the flags, of `flags` entries.
  template <class IsScored>
  Scalar observeValues(const MatrixView<Scalar>& inputs, const MatrixView<Scalar>& targets, Index flags,
                       const IsScored& isScored) {
    if (m_options.nonFinite == NonFinitePolicy::Skip) detail::requireCounterRoom("skipped steps", m_skippedSteps);
    detail::requireColumns("input", inputs.rows(), inputs.cols(), m_cell->inputSize(), m_options.batch);
    detail::requireColumns("target", targets.rows(), targets.cols(), m_readout->outputs(), m_options.batch);
    detail::requireLength("scored", flags, m_options.batch);
    bool scored = false;
    for (Index b = 0; b < m_options.batch; ++b) {
      if (!isScored(b)) continue;
      scored = true;
      // The name is built only for the message: no allocation per step.
      if (m_options.nonFinite == NonFinitePolicy::Throw && !detail::allFinite(targets.col(b)))
        detail::requireFinite(m_options.batch == 1 ? std::string("target") : "targets[" + detail::describe(b) + "]",
                              targets.col(b));
    }
    requireTrainedMasks();
    return observeStreams(inputs, scored, isScored,
                          [&](Index b, const VectorView<Scalar>& output, VectorSpan<Scalar> outputGradient) {
                            return m_readout->evaluateLoss(output, targets.col(b), outputGradient, b);
                          });
  }

  /// The batch step once its arguments are checked: `scored` when isScored(b) for some stream
  /// b, whose loss `evaluate(b, output, outputGradient)` gives (writing ∂L/∂y into the gradient).
  template <class IsScored, class Evaluate>
  Scalar observeStreams(const MatrixView<Scalar>& inputs, bool scored, const IsScored& isScored,
                        const Evaluate& evaluate) {
    try {
      detail::requireFinite(detail::batchName("input", m_options.batch), inputs);
      if (scored && m_options.nonFinite == NonFinitePolicy::Throw) return observeScored(inputs, isScored, evaluate);
      m_engine.step(inputs);
      const Matrix<Scalar>& outputs = engineOutputs();
      m_stepObserved = true;
      m_losses.setZero();
      if (!scored) return Scalar(0);
      bool evaluated = false;
      for (Index b = 0; b < m_options.batch; ++b) {
        auto outputGradient = m_outputGradients.col(b);
        outputGradient.setZero();
        if (!isScored(b)) continue;
        try {
          m_losses[b] = evaluate(b, outputs.col(b), outputGradient);
          evaluated = true;
        } catch (const NonFiniteError&) {  // NonFinitePolicy::Skip: this stream's contribution
          outputGradient.setZero();
          ++m_skippedSteps;
        }
      }
      if (evaluated) m_readout->commitLoss();
      m_engine.accumulate(m_outputGradients);
      return m_losses.sum();
    } catch (const NonFiniteError&) {
      if (m_options.nonFinite == NonFinitePolicy::Throw) throw;
      ++m_skippedSteps;
      m_stepSkipped = true;
      m_losses.setZero();
      return Scalar(0);
    }
  }

  /// A scored batch step under NonFinitePolicy::Throw, all or nothing: the next states and
  /// their losses are computed first, from the engine's current states, and the engine steps
  /// only when all are finite (an engine computes the same next states from the same cell step).
  /// Engines with prepareStep() and commitStep() (the built-in ones) compute the step once;
  /// others are stepped after the trainer has computed the step itself, stream by stream.
  template <class IsScored, class Evaluate>
  Scalar observeScored(const MatrixView<Scalar>& inputs, const IsScored& isScored, const Evaluate& evaluate) {
    auto evaluateAll = [&](const Matrix<Scalar>& next) {
      m_losses.setZero();
      try {
        for (Index b = 0; b < m_options.batch; ++b) {
          auto outputGradient = m_outputGradients.col(b);
          outputGradient.setZero();
          if (isScored(b)) m_losses[b] = evaluate(b, next.col(b), outputGradient);
        }
      } catch (const Error&) {
        m_readout->discardLosses();
        throw;
      }
    };
    if constexpr (requires(EngineType& e) { e.prepareStep(inputs); e.preparedOutputs(); e.commitStep(); }) {
      m_engine.prepareStep(inputs);
      evaluateAll(m_engine.preparedOutputs());
      m_engine.commitStep();
    } else {
      // The losses and δ are those of the cell's step from the engine's states, which are the
      // engine's next states: nothing is scored after the engine has stepped.
      for (Index b = 0; b < m_options.batch; ++b) {
        m_cell->forward(inputs.col(b), m_engine.state().col(b), m_nextStates.col(b), m_nextCache);
        m_cell->output(m_nextCache, m_nextStates.col(b), m_nextOutputs.col(b));
      }
      detail::requireFinite("next state", m_nextStates);
      evaluateAll(m_nextOutputs);
      m_engine.step(inputs);
    }
    m_stepObserved = true;
    m_readout->commitLoss();
    m_engine.accumulate(m_outputGradients);
    return m_losses.sum();
  }

  /// y_t of the B streams after the engine's step: its outputs(), or for an engine without them
  /// (one of your own) the head of its states, which a gated cell's output is.
  const Matrix<Scalar>& engineOutputs() {
    if constexpr (requires(const EngineType& e) { e.outputs(); }) {
      return m_engine.outputs();
    } else {
      static_assert(requirement::OutputIsStateHead<CellType>,
                    "snap: Trainer needs outputs() of an engine whose cell's output is not the head of its state");
      m_nextOutputs = m_engine.state().topRows(m_cell->outputSize());
      return m_nextOutputs;
    }
  }

  /// Forgets the gradients accumulated since the last update (engines and readout).
  void clearGradients() {
    m_engine.resetGradient();
    m_readout->resetGradient();
    m_pendingSteps = 0;
  }
  /// A non-finite update: throws (nothing changed), or skips it, clears the gradients and counts.
  bool refuseUpdate(const char* what, const Vector<Scalar>& values) {
    if (m_options.nonFinite == NonFinitePolicy::Throw) {
      detail::requireFinite(what, values);
      detail::fail<NonFiniteError>(what, "values whose squares are finite", "a value too large to square");
    }
    clearGradients();
    ++m_skippedUpdates;
    return false;
  }

  CellType* m_cell;
  ReadoutType* m_readout;
  AnyOptimizer m_optimizer;
  TrainerOptions m_options;
  typename EngineType::Options m_engineOptions;
  OptimizerState m_cellState, m_readoutState;
  OptimizerState m_cellStateWork, m_readoutStateWork;  ///< what update() steps the optimizer on
  EngineType m_engine;  ///< the B streams
  Vector<Scalar> m_parameters, m_cellGradient, m_readoutGradient, m_readoutParameters;
  Matrix<Scalar> m_outputGradients;  ///< ∂L/∂y of the B streams (o × B)
  Vector<Scalar> m_losses;          ///< each stream's loss at the last observe()
  Matrix<Scalar> m_nextStates;      ///< s_t computed before an engine without prepareStep() steps
  Matrix<Scalar> m_nextOutputs;     ///< y_t computed before an engine without prepareStep() steps
  StepCache<Scalar> m_nextCache;    ///< the factors of that step, discarded
  std::uint64_t m_maskVersion = 0;  ///< the cell's mask version the trainer trains
  Index m_pendingSteps = 0;
  long long m_updates = 0;
  long long m_skippedSteps = 0, m_skippedUpdates = 0;
  bool m_stepObserved = false, m_stepSkipped = false;  ///< in the batch step endStep() will end
  double m_lastNorm = 0;
};

}  // namespace snap
