#pragma once
/// @file
/// What every engine keeps the same way: the bound cell, the current state, the step's cache
/// and sources, the θ-ordered gradient, the checks on what the user passes in, and the saving
/// and loading of that shared state (docs/reliability.md).

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "snap/cells/cell_concept.hpp"
#include "snap/core/error.hpp"
#include "snap/core/limits.hpp"
#include "snap/core/types.hpp"
#include "snap/io/state.hpp"

namespace snap::detail {

/// Shared state and argument checks of the engines. Not an interface: each engine is a
/// complete class that holds one of these.
template <class CellType>
class EngineCore {
public:
  using Scalar = typename CellType::Scalar;

  explicit EngineCore(const CellType& cell) : m_cell(&cell) { resize(); }

  const CellType& cell() const { return *m_cell; }
  const Vector<Scalar>& state() const { return m_state; }
  Vector<Scalar>& state() { return m_state; }
  Index steps() const { return m_steps; }

  /// Sizes everything for the bound cell (at construction and after a mask change, when the
  /// state is kept and the gradient restarts at zero with the new parameter count).
  void resize() {
    const CellType& cell = *m_cell;
    m_stateSize = cell.stateSize();
    m_inputSize = cell.inputSize();
    m_hiddenSize = cell.hiddenSize();
    m_maskVersion = cell.maskVersion();
    if (m_state.size() != m_stateSize) m_state = Vector<Scalar>::Zero(m_stateSize);
    m_next = Vector<Scalar>::Zero(m_stateSize);
    m_sources = Vector<Scalar>::Zero(cell.layout().sourceSize());
    m_cache = cell.makeCache();
    m_stagedSources = m_sources;
    m_stagedCache = m_cache;
    m_staged = false;
    m_gradient = Vector<Scalar>::Zero(cell.parameterCount());
  }

  /// Throws a ShapeError unless the bound cell still has the sizes the engine was built for.
  void requireSameSizes() const {
    const CellType& cell = *m_cell;
    if (cell.stateSize() != m_stateSize || cell.inputSize() != m_inputSize || cell.hiddenSize() != m_hiddenSize)
      fail<ShapeError>("cell", "the sizes the engine was built for (input " + describe(m_inputSize) + ", hidden " +
                                   describe(m_hiddenSize) + ")",
                       "input " + describe(cell.inputSize()) + ", hidden " + describe(cell.hiddenSize()));
  }

  /// Throws unless the bound cell still has the sizes the engine was built for; returns true
  /// when its masks changed since (the engine then rebuilds its structures).
  bool cellChanged() const {
    requireSameSizes();
    return m_cell->maskVersion() != m_maskVersion;
  }

  /// Throws unless the last step can still be consumed: a step taken under the old masks has
  /// a cache that does not fit the new structure (the next step() rebuilds instead).
  void requireUnchangedCell(std::string_view caller) const {
    if (cellChanged())
      fail<UsageError>(caller, "a step() since the cell's masks changed", "a mask change after the last step");
  }

  /// Throws unless x_t has the input length and is finite, and the step count can advance;
  /// called before anything changes.
  void checkInput(const VectorView<Scalar>& input) const {
    requireLength("input", input.size(), m_inputSize);
    requireFinite("input", input);
    requireCounterRoom("steps since the last resetState()", m_steps);
  }

  /// Takes the state and the step count of `other` (an engine rebuilt for new masks keeps them).
  void keepFrom(const EngineCore& other) {
    m_state = other.m_state;
    m_steps = other.m_steps;
  }

  /// Runs the cell's forward step of x_t from the current state into the staged cache, the
  /// staged sources z = [x; 1; h_{t−1}; 1] and the next state, and returns that next state;
  /// nothing else changes. A next state that is not finite (finite values that overflowed) is
  /// refused. commitStaged() then makes the step current.
  const Vector<Scalar>& stage(const VectorView<Scalar>& input) {
    checkInput(input);
    m_cell->sources(input, m_state, m_stagedSources);
    m_cell->forward(input, m_state, m_next, m_stagedCache);
    requireFinite("next state", m_next);
    m_staged = true;
    return m_next;
  }
  /// Throws UsageError unless a step is staged (`caller` names the call that needs it).
  void requireStaged(std::string_view caller) const {
    if (!m_staged) fail<UsageError>(caller, "a prepareStep() before", "no prepared step");
  }
  /// Makes the staged step the last one: its cache and sources become current (swapped, no
  /// allocation) and its next state the state.
  void commitStaged() {
    std::swap(m_cache, m_stagedCache);
    std::swap(m_sources, m_stagedSources);
    acceptStagedState();
  }
  /// The same, with the staged cache swapped into `cache` and the sources copied into `sources`.
  void commitStaged(StepCache<Scalar>& cache, VectorSpan<Scalar> sources) {
    std::swap(cache, m_stagedCache);
    sources = m_stagedSources;
    acceptStagedState();
  }
  /// The staged next state becomes the state, one more step.
  void acceptStagedState() {
    std::swap(m_state, m_next);
    ++m_steps;
    m_staged = false;
  }
  /// Takes the staged step of `other` (an engine rebuilt for new masks goes on with it).
  void takeStaged(EngineCore& other) {
    std::swap(m_stagedCache, other.m_stagedCache);
    std::swap(m_stagedSources, other.m_stagedSources);
    std::swap(m_next, other.m_next);
    m_staged = other.m_staged;
  }

  /// Throws unless δ has the state's length and a step has been taken since the last reset,
  /// under the cell's current sizes and masks.
  void checkStateGradient(const VectorView<Scalar>& stateGradient) const {
    requireSameSizes();
    requireLength("state gradient", stateGradient.size(), m_stateSize);
    requireFinite("state gradient", stateGradient);
    if (m_steps == 0)
      fail<UsageError>("accumulate", "a step() since the last resetState()", "no step");
    requireUnchangedCell("accumulate");
  }

  /// Sets the state to zero, or to `initial` (checked); a prepared step is dropped.
  void resetState() {
    m_state.setZero();
    m_steps = 0;
    m_staged = false;
  }
  void resetState(const VectorView<Scalar>& initial) {
    checkInitialState(initial);
    m_state = initial;
    m_steps = 0;
    m_staged = false;
  }
  void checkInitialState(const VectorView<Scalar>& initial) const {
    requireLength("initial state", initial.size(), m_stateSize);
    requireFinite("initial state", initial);
  }

  /// @name Saving and loading (docs/reliability.md, "Checkpoint format")
  /// @{
  /// Writes `<prefix>engine` (the engine's name), `<prefix>state` and `<prefix>steps`.
  void save(NpzArchive& archive, const std::string& prefix, std::string_view engine) const {
    putText(archive, prefix + "engine", engine);
    putArray(archive, prefix + "state", m_state);
    putScalar<std::int64_t>(archive, prefix + "steps", m_steps);
  }
  /// Reads what save() wrote, checked against the bound cell (the state finite, the steps a
  /// counter). Called on a freshly built engine that replaces the loading one only once
  /// everything has been read.
  void load(const NpzArchive& archive, const std::string& prefix, std::string_view engine) {
    requireText(archive, prefix + "engine", engine, "the state of engine");
    Vector<Scalar> state = readVector<Scalar>(archive, prefix + "state", m_stateSize);
    m_steps = readCounter(archive, prefix + "steps");
    m_state = std::move(state);
  }
  /// The last step's Jacobian factors and sources z, what a pending influence update consumes
  /// (zeros when nothing is pending: the values are then never read, and equal states save
  /// equal arrays).
  void saveStep(NpzArchive& archive, const std::string& prefix, bool pending) const {
    if (pending) {
      saveCache(archive, prefix, m_cache);
      putArray(archive, prefix + "sources", m_sources);
    } else {
      StepCache<Scalar> zero = m_cache;
      zero.immediateIh.setZero();
      zero.immediateHh.setZero();
      zero.direct.setZero();
      zero.preactivations.setZero();
      saveCache(archive, prefix, zero);
      putArray(archive, prefix + "sources", Vector<Scalar>::Zero(m_sources.size()));
    }
  }
  void loadStep(const NpzArchive& archive, const std::string& prefix) {
    loadCache(archive, prefix, m_cache);
    m_sources = readVector<Scalar>(archive, prefix + "sources", m_sources.size());
  }
  /// A step cache as `<prefix>immediate_ih`, `immediate_hh`, `direct` and `preactivations`.
  static void saveCache(NpzArchive& archive, const std::string& prefix, const StepCache<Scalar>& cache) {
    putArray(archive, prefix + "immediate_ih", cache.immediateIh);
    putArray(archive, prefix + "immediate_hh", cache.immediateHh);
    putArray(archive, prefix + "direct", cache.direct);
    putArray(archive, prefix + "preactivations", cache.preactivations);
  }
  /// Reads a cache saved by saveCache into `cache`, whose sizes are the expected shapes.
  static void loadCache(const NpzArchive& archive, const std::string& prefix, StepCache<Scalar>& cache) {
    auto read = [&](const char* name, Matrix<Scalar>& target) {
      target = readMatrix<Matrix<Scalar>>(archive, prefix + name, target.rows(), target.cols());
    };
    read("immediate_ih", cache.immediateIh);
    read("immediate_hh", cache.immediateHh);
    read("direct", cache.direct);
    cache.preactivations = readVector<Scalar>(archive, prefix + "preactivations", cache.preactivations.size());
  }
  /// @}

  const CellType* m_cell;
  Index m_stateSize = 0, m_inputSize = 0, m_hiddenSize = 0;
  std::uint64_t m_maskVersion = 0;
  Index m_steps = 0;
  Vector<Scalar> m_state, m_next, m_sources, m_gradient;
  StepCache<Scalar> m_cache;
  StepCache<Scalar> m_stagedCache;  ///< the factors of a prepared step (stage())
  Vector<Scalar> m_stagedSources;   ///< its sources; m_next holds its next state
  bool m_staged = false;            ///< a step is prepared and not yet committed
};

}  // namespace snap::detail
