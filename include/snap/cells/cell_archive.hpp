#pragma once
/// @file
/// A cell's tensors and masks as named arrays of an NpzArchive: what checkpoints and weights
/// files store of a cell (docs/reliability.md), and how they are read back, checked.

#include <cstdint>
#include <string>
#include <vector>

#include "snap/archive/arrays.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/cells/parameter_layout.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {
namespace detail {

/// A tensor of layout order as stored: a vector tensor (one column, not a weight matrix) as a
/// 1-D array, as PyTorch stores a bias; any other as a matrix.
inline bool storedAsVector(const TensorSpec& spec) { return spec.cols == 1 && spec.source != SourceKind::Columns; }

/// Writes a cell's tensors under `prefix` by their layout names (for the gated cells PyTorch's
/// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`) and the 0/1 masks (uint8) of its maskable
/// tensors by their mask names (`mask_ih`, `mask_hh`): checkpoints and weights files alike.
template <class CellType>
void putCellTensors(NpzArchive& archive, const std::string& prefix, const CellType& cell) {
  const ParameterLayout& layout = cell.layout();
  const auto tensors = cell.parameterTensors();
  for (Index t = 0; t < layout.tensorCount(); ++t) {
    const TensorSpec& spec = layout.tensor(t);
    const auto& tensor = tensors[static_cast<std::size_t>(t)];
    if (storedAsVector(spec))
      putArray(archive, prefix + spec.name, Vector<typename CellType::Scalar>(tensor.col(0)));
    else
      putArray(archive, prefix + spec.name, tensor);
    if (spec.isMaskable()) putArray(archive, prefix + spec.maskName, layout.mask(t));
  }
}

/// Writes `<prefix>cell` (the cell's type name, when it has one), its configuration (what fixes
/// its equations besides θ: the gated cells' `gates` and `unit_states`, an RNN's `leak`, an
/// LRU's sizes and activation, a stack's layers) and what putCellTensors writes.
template <class CellType>
void saveCell(NpzArchive& archive, const std::string& prefix, const CellType& cell) {
  if constexpr (requirement::HasTypeName<CellType>) putText(archive, prefix + "cell", CellTypeName<CellType>::value);
  if constexpr (requires { cell.saveConfiguration(archive, prefix); }) cell.saveConfiguration(archive, prefix);
  putCellTensors(archive, prefix, cell);
}

/// Rethrows a cell's refusal of a stored tensor as a FormatError naming the array:
/// "snap: weight_ih: expected …, got …" becomes "snap: array '<prefix>weight_ih': expected …, got …".
[[noreturn]] inline void rethrowAsFormatError(const Error& error, const std::string& prefix) {
  std::string message = error.what();
  const std::string head = "snap: ";
  const auto colon = message.find(": ", head.size());
  if (message.rfind(head, 0) != 0 || colon == std::string::npos) throw FormatError(message);
  throw FormatError(head + arrayArgument(prefix + message.substr(head.size(), colon - head.size())) + message.substr(colon));
}

/// Reads what saveCell wrote into `cell` (in practice a copy being checked): the type name, the
/// configuration and every shape must be the cell's, and the cell's own checks of masks and
/// tensors apply, their errors reported as FormatError naming the array. Masks equal to the
/// cell's are not set again (its maskVersion() stays). Everything is read before the cell changes.
template <class CellType>
void loadCell(const NpzArchive& archive, const std::string& prefix, CellType& cell) {
  using Scalar = typename CellType::Scalar;
  if constexpr (requirement::HasTypeName<CellType>)
    requireText(archive, prefix + "cell", CellTypeName<CellType>::value, "a cell of type");
  if constexpr (requires { cell.checkConfiguration(archive, prefix); }) cell.checkConfiguration(archive, prefix);
  using Bytes = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Domain<std::uint8_t> zeroOne{0, 1};
  const ParameterLayout& layout = cell.layout();
  ParameterTensors<Scalar> tensors;
  std::vector<RowMatrix<Scalar>> masks;
  bool sameMasks = true;
  for (Index t = 0; t < layout.tensorCount(); ++t) {  // the masks first: they fix which weights exist
    const TensorSpec& spec = layout.tensor(t);
    if (spec.isMaskable()) {
      const Bytes mask = readMatrix<Bytes>(archive, prefix + spec.maskName, spec.rows, spec.cols, zeroOne);
      sameMasks = sameMasks && mask == layout.mask(t);
      masks.push_back(mask.template cast<Scalar>());
    } else {
      masks.push_back(RowMatrix<Scalar>::Ones(spec.rows, spec.cols));
    }
  }
  for (Index t = 0; t < layout.tensorCount(); ++t) {
    const TensorSpec& spec = layout.tensor(t);
    if (storedAsVector(spec))
      tensors.push_back(readVector<Scalar>(archive, prefix + spec.name, spec.rows));
    else
      tensors.push_back(readMatrix<RowMatrix<Scalar>>(archive, prefix + spec.name, spec.rows, spec.cols));
  }
  try {
    if (!sameMasks) cell.setParameterMasks(masks);
    cell.setParameterTensors(tensors);
  } catch (const FormatError&) {
    throw;
  } catch (const Error& error) {
    rethrowAsFormatError(error, prefix);
  }
}

}  // namespace detail
}  // namespace snap
