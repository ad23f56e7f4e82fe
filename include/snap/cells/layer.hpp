#pragma once
/// @file
/// snap::Layer: any cell that can be stacked (requirement::Stackable), held by value behind one
/// type, so that a snap::Stack holds layers of different cell types (docs/cells.md, "Stacks").

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

#include "snap/archive/arrays.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/pattern/sparsity_pattern.hpp"

namespace snap {
namespace detail {

/// The operations a stack needs of a layer, whatever its cell type.
template <class Scalar>
class LayerInterface {
public:
  virtual ~LayerInterface() = default;
  virtual std::unique_ptr<LayerInterface> clone() const = 0;
  virtual const std::type_info& type() const = 0;
  virtual const void* address() const = 0;
  virtual void* address() = 0;

  virtual Index inputSize() const = 0;
  virtual Index stateSize() const = 0;
  virtual Index outputSize() const = 0;
  virtual Index parameterCount() const = 0;
  virtual const ParameterLayout& layout() const = 0;
  virtual const SparsityPattern& dynamicsGraph() const = 0;
  virtual const SparsityPattern& factorPattern() const = 0;
  virtual const SparsityPattern* internalGraph() const = 0;
  virtual const SparsityPattern& inputGraph() const = 0;
  virtual const SparsityPattern& outputStateGraph() const = 0;
  virtual const SparsityPattern& outputInputGraph() const = 0;
  virtual const SparsityPattern& outputFactorPattern() const = 0;
  virtual std::uint64_t maskVersion() const = 0;

  virtual StepCache<Scalar> makeCache() const = 0;
  virtual void forward(const VectorView<Scalar>& input, const VectorView<Scalar>& state, VectorSpan<Scalar> next,
                       StepCache<Scalar>& cache) const = 0;
  virtual void sources(const StepCache<Scalar>& cache, const VectorView<Scalar>& input, const VectorView<Scalar>& state,
                       VectorSpan<Scalar> z) const = 0;
  virtual void output(const StepCache<Scalar>& cache, const VectorView<Scalar>& next, VectorSpan<Scalar> y) const = 0;
  virtual void outputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& outputGradient,
                              VectorSpan<Scalar> stateGradient, VectorSpan<Scalar> factorGradient) const = 0;
  virtual void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const = 0;
  virtual void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<const StorageIndex> entries,
                                std::span<Scalar> values) const = 0;
  virtual void internalJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const = 0;
  virtual void immediateFactors(const StepCache<Scalar>& cache, std::span<Scalar> values) const = 0;
  virtual void dynamicsProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> out) const = 0;
  virtual void factorGradient(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> e) const = 0;
  virtual void vectorJacobianProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v,
                                     VectorSpan<Scalar> previous, VectorSpan<Scalar> e) const = 0;
  virtual void inputJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const = 0;
  virtual void inputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& v,
                             VectorSpan<Scalar> inputGradient) const = 0;
  virtual void outputJacobian(const StepCache<Scalar>& cache, std::span<Scalar> stateValues, std::span<Scalar> inputValues,
                              std::span<Scalar> factorValues) const = 0;

  virtual std::string_view typeName() const = 0;
  virtual void saveConfiguration(NpzArchive& archive, const std::string& prefix) const = 0;
  virtual void checkConfiguration(const NpzArchive& archive, const std::string& prefix) const = 0;

  virtual void parametersInto(VectorSpan<Scalar> theta) const = 0;
  virtual void setParameters(const VectorView<Scalar>& theta) = 0;
  virtual ParameterTensors<Scalar> parameterTensors() const = 0;
  virtual void setParameterTensors(const ParameterTensors<Scalar>& tensors) = 0;
  virtual void setParameterMasks(const std::vector<RowMatrix<Scalar>>& masks) = 0;
};

/// A LayerInterface over a cell of type C, held by value.
template <class C>
class LayerModel final : public LayerInterface<typename C::Scalar> {
  using Scalar = typename C::Scalar;

public:
  explicit LayerModel(C cell) : m_cell(std::move(cell)) {}
  std::unique_ptr<LayerInterface<Scalar>> clone() const override { return std::make_unique<LayerModel>(m_cell); }
  const std::type_info& type() const override { return typeid(C); }
  const void* address() const override { return &m_cell; }
  void* address() override { return &m_cell; }

  Index inputSize() const override { return m_cell.inputSize(); }
  Index stateSize() const override { return m_cell.stateSize(); }
  Index outputSize() const override { return m_cell.outputSize(); }
  Index parameterCount() const override { return m_cell.parameterCount(); }
  const ParameterLayout& layout() const override { return m_cell.layout(); }
  const SparsityPattern& dynamicsGraph() const override { return m_cell.dynamicsGraph(); }
  const SparsityPattern& factorPattern() const override { return m_cell.factorPattern(); }
  const SparsityPattern* internalGraph() const override {
    if constexpr (requirement::HasInternalCouplings<C>)
      return &m_cell.internalGraph();
    else
      return nullptr;
  }
  const SparsityPattern& inputGraph() const override { return m_cell.inputGraph(); }
  const SparsityPattern& outputStateGraph() const override { return m_cell.outputStateGraph(); }
  const SparsityPattern& outputInputGraph() const override { return m_cell.outputInputGraph(); }
  const SparsityPattern& outputFactorPattern() const override { return m_cell.outputFactorPattern(); }
  std::uint64_t maskVersion() const override { return m_cell.maskVersion(); }

  StepCache<Scalar> makeCache() const override { return m_cell.makeCache(); }
  void forward(const VectorView<Scalar>& input, const VectorView<Scalar>& state, VectorSpan<Scalar> next,
               StepCache<Scalar>& cache) const override {
    m_cell.forward(input, state, next, cache);
  }
  void sources(const StepCache<Scalar>& cache, const VectorView<Scalar>& input, const VectorView<Scalar>& state,
               VectorSpan<Scalar> z) const override {
    m_cell.sources(cache, input, state, z);
  }
  void output(const StepCache<Scalar>& cache, const VectorView<Scalar>& next, VectorSpan<Scalar> y) const override {
    m_cell.output(cache, next, y);
  }
  void outputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& outputGradient,
                      VectorSpan<Scalar> stateGradient, VectorSpan<Scalar> factorGradient) const override {
    m_cell.outputBackward(cache, outputGradient, stateGradient, factorGradient);
  }
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const override {
    m_cell.dynamicsJacobian(cache, values);
  }
  void dynamicsJacobian(const StepCache<Scalar>& cache, std::span<const StorageIndex> entries,
                        std::span<Scalar> values) const override {
    m_cell.dynamicsJacobian(cache, entries, values);
  }
  void internalJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const override {
    if constexpr (requirement::HasInternalCouplings<C>) m_cell.internalJacobian(cache, values);
  }
  void immediateFactors(const StepCache<Scalar>& cache, std::span<Scalar> values) const override {
    m_cell.immediateFactors(cache, values);
  }
  void dynamicsProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> out) const override {
    m_cell.dynamicsProduct(cache, v, out);
  }
  void factorGradient(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> e) const override {
    m_cell.factorGradient(cache, v, e);
  }
  void vectorJacobianProduct(const StepCache<Scalar>& cache, const VectorView<Scalar>& v, VectorSpan<Scalar> previous,
                             VectorSpan<Scalar> e) const override {
    m_cell.vectorJacobianProduct(cache, v, previous, e);
  }
  void inputJacobian(const StepCache<Scalar>& cache, std::span<Scalar> values) const override {
    m_cell.inputJacobian(cache, values);
  }
  void inputBackward(const StepCache<Scalar>& cache, const VectorView<Scalar>& v,
                     VectorSpan<Scalar> inputGradient) const override {
    m_cell.inputBackward(cache, v, inputGradient);
  }
  void outputJacobian(const StepCache<Scalar>& cache, std::span<Scalar> stateValues, std::span<Scalar> inputValues,
                      std::span<Scalar> factorValues) const override {
    m_cell.outputJacobian(cache, stateValues, inputValues, factorValues);
  }

  std::string_view typeName() const override {
    if constexpr (requirement::HasTypeName<C>)
      return CellTypeName<C>::value;
    else
      return "custom";
  }
  void saveConfiguration(NpzArchive& archive, const std::string& prefix) const override {
    if constexpr (requires { m_cell.saveConfiguration(archive, prefix); }) m_cell.saveConfiguration(archive, prefix);
  }
  void checkConfiguration(const NpzArchive& archive, const std::string& prefix) const override {
    if constexpr (requires { m_cell.checkConfiguration(archive, prefix); }) m_cell.checkConfiguration(archive, prefix);
  }

  void parametersInto(VectorSpan<Scalar> theta) const override { m_cell.parametersInto(theta); }
  void setParameters(const VectorView<Scalar>& theta) override { m_cell.setParameters(theta); }
  ParameterTensors<Scalar> parameterTensors() const override { return m_cell.parameterTensors(); }
  void setParameterTensors(const ParameterTensors<Scalar>& tensors) override { m_cell.setParameterTensors(tensors); }
  void setParameterMasks(const std::vector<RowMatrix<Scalar>>& masks) override { m_cell.setParameterMasks(masks); }

private:
  C m_cell;
};

}  // namespace detail

namespace requirement {
/// A cell a Stack can hold: every engine's contract, the same-step Jacobians of Stackable, and
/// the parameter tensors by layout order (as weights files and checkpoints save them).
template <class C>
concept Layerable = Cell<C> && Stackable<C> && requires(C& cell, const C& constCell,
                                                         const ParameterTensors<typename C::Scalar>& tensors,
                                                         const std::vector<RowMatrix<typename C::Scalar>>& masks) {
  { constCell.parameterTensors() } -> std::convertible_to<ParameterTensors<typename C::Scalar>>;
  cell.setParameterTensors(tensors);
  cell.setParameterMasks(masks);
};
}  // namespace requirement

/// A layer of a snap::Stack: a copy of any stackable cell (RNN, GRU, LSTM, LRU, or a cell of
/// your own that satisfies requirement::Layerable), with the cell's products behind virtual
/// calls (one per layer per product: negligible beside the products themselves).
template <class Scalar_>
class Layer {
public:
  using Scalar = Scalar_;  ///< float or double

  /// Holds a copy of `cell`.
  template <class C>
    requires requirement::Layerable<std::remove_cvref_t<C>> && std::is_same_v<typename std::remove_cvref_t<C>::Scalar, Scalar>
  Layer(C&& cell)  // NOLINT(google-explicit-constructor): a cell is a layer
      : m_model(std::make_unique<detail::LayerModel<std::remove_cvref_t<C>>>(std::forward<C>(cell))) {}

  /// A copy of the other layer's cell.
  Layer(const Layer& other) : m_model(other.m_model->clone()) {}
  /// Takes the other layer's cell.
  Layer(Layer&&) noexcept = default;
  /// A copy of the other layer's cell.
  Layer& operator=(const Layer& other) {
    if (this != &other) m_model = other.m_model->clone();
    return *this;
  }
  /// Takes the other layer's cell.
  Layer& operator=(Layer&&) noexcept = default;
  ~Layer() = default;

  /// The cell, if it is of type C; otherwise nullptr.
  template <class C>
  const C* as() const {
    return m_model->type() == typeid(C) ? static_cast<const C*>(m_model->address()) : nullptr;
  }
  /// The cell as type C.
  /// @throws UsageError if the layer holds another type
  template <class C>
  const C& cell() const {
    const C* found = as<C>();
    if (found == nullptr) detail::fail<UsageError>("Layer::cell", std::string("a layer of type ") + typeid(C).name(),
                                                   std::string("a layer of type ") + m_model->type().name());
    return *found;
  }

  /// The model of the operations (what a Stack calls).
  const detail::LayerInterface<Scalar>& operator*() const { return *m_model; }
  /// The model's operations, read only.
  const detail::LayerInterface<Scalar>* operator->() const { return m_model.get(); }
  /// The model's operations (a stack changes a layer through them).
  detail::LayerInterface<Scalar>* operator->() { return m_model.get(); }

private:
  std::unique_ptr<detail::LayerInterface<Scalar>> m_model;
};

}  // namespace snap
