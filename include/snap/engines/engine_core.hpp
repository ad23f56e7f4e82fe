#pragma once
/// @file
/// What every engine keeps the same way: the bound cell, the current state, the step's cache
/// and sources, the θ-ordered gradient, and the checks on what the user passes in.

#include <cstdint>
#include <string_view>
#include <utility>

#include "snap/cells/cell_concept.hpp"
#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

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

  /// Runs the cell's forward step from the current state: fills the cache and the sources
  /// z = [x; 1; h_{t−1}; 1], then makes the new state current.
  void forward(const VectorView<Scalar>& input, StepCache<Scalar>& cache, VectorSpan<Scalar> sources) {
    requireLength("input", input.size(), m_inputSize);
    m_cell->sources(input, m_state, sources);
    m_cell->forward(input, m_state, m_next, cache);
    std::swap(m_state, m_next);
    ++m_steps;
  }
  void forward(const VectorView<Scalar>& input) { forward(input, m_cache, m_sources); }

  /// Throws unless δ has the state's length and a step has been taken since the last reset,
  /// under the cell's current sizes and masks.
  void checkStateGradient(const VectorView<Scalar>& stateGradient) const {
    requireSameSizes();
    requireLength("state gradient", stateGradient.size(), m_stateSize);
    if (m_steps == 0)
      fail<UsageError>("accumulate", "a step() since the last resetState()", "no step");
    requireUnchangedCell("accumulate");
  }

  /// Sets the state to zero, or to `initial` (checked).
  void resetState() {
    m_state.setZero();
    m_steps = 0;
  }
  void resetState(const VectorView<Scalar>& initial) {
    requireLength("initial state", initial.size(), m_stateSize);
    m_state = initial;
    m_steps = 0;
  }

  const CellType* m_cell;
  Index m_stateSize = 0, m_inputSize = 0, m_hiddenSize = 0;
  std::uint64_t m_maskVersion = 0;
  Index m_steps = 0;
  Vector<Scalar> m_state, m_next, m_sources, m_gradient;
  StepCache<Scalar> m_cache;
};

}  // namespace snap::detail
