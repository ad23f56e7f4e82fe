#pragma once
/// @file
/// A cell's tensors and masks as named arrays of an NpzArchive: what checkpoints and weights
/// files store of a cell (docs/reliability.md), and how they are read back, checked.

#include <cstdint>
#include <string>

#include "snap/archive/arrays.hpp"
#include "snap/cells/structure.hpp"
#include "snap/core/error.hpp"
#include "snap/core/types.hpp"

namespace snap {
namespace detail {

/// Writes a cell's four tensors in PyTorch's layout and its masks (uint8, 0/1) under `prefix`:
/// `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, `mask_ih`, `mask_hh` (checkpoints and
/// weights files alike).
template <class CellType>
void putCellTensors(NpzArchive& archive, const std::string& prefix, const CellType& cell) {
  putArray(archive, prefix + "weight_ih", cell.weight_ih());
  putArray(archive, prefix + "weight_hh", cell.weight_hh());
  putArray(archive, prefix + "bias_ih", cell.bias_ih());
  putArray(archive, prefix + "bias_hh", cell.bias_hh());
  putArray(archive, prefix + "mask_ih", cell.mask_ih().template cast<std::uint8_t>());
  putArray(archive, prefix + "mask_hh", cell.mask_hh().template cast<std::uint8_t>());
}

/// Writes what putCellTensors writes, plus the cell's gate and state-block counts `gates` and
/// `unit_states`, under `prefix`.
template <class CellType>
void saveCell(NpzArchive& archive, const std::string& prefix, const CellType& cell) {
  putScalar<std::int64_t>(archive, prefix + "gates", cell.structure().gates);
  putScalar<std::int64_t>(archive, prefix + "unit_states", cell.structure().unitStates);
  putCellTensors(archive, prefix, cell);
}

/// Reads what saveCell wrote into `cell` (in practice a copy being checked): the structure and
/// every shape must be the cell's, and the cell's own checks of masks and tensors apply, their
/// errors reported as FormatError naming the array. Masks equal to the cell's are not set again
/// (its maskVersion() stays).
template <class CellType>
void loadCell(const NpzArchive& archive, const std::string& prefix, CellType& cell) {
  using Scalar = typename CellType::Scalar;
  readScalar<std::int64_t>(archive, prefix + "gates", cell.structure().gates, cell.structure().gates);
  readScalar<std::int64_t>(archive, prefix + "unit_states", cell.structure().unitStates, cell.structure().unitStates);
  const Index rows = cell.gateRows(), inputs = cell.inputSize(), hidden = cell.hiddenSize();
  using Bytes = Eigen::Matrix<std::uint8_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  const Domain<std::uint8_t> zeroOne{0, 1};
  const RowMatrix<Scalar> maskIh =
      readMatrix<Bytes>(archive, prefix + "mask_ih", rows, inputs, zeroOne).template cast<Scalar>();
  const RowMatrix<Scalar> maskHh =
      readMatrix<Bytes>(archive, prefix + "mask_hh", rows, hidden, zeroOne).template cast<Scalar>();
  const CellTensors<Scalar> tensors{readMatrix<RowMatrix<Scalar>>(archive, prefix + "weight_ih", rows, inputs),
                                    readMatrix<RowMatrix<Scalar>>(archive, prefix + "weight_hh", rows, hidden),
                                    readVector<Scalar>(archive, prefix + "bias_ih", rows),
                                    readVector<Scalar>(archive, prefix + "bias_hh", rows)};
  try {
    if (maskIh != cell.mask_ih() || maskHh != cell.mask_hh()) cell.setMasks(maskIh, maskHh);
    cell.setTensors(tensors);
  } catch (const FormatError&) {
    throw;
  } catch (const Error& error) {
    // "snap: weight_ih: expected …, got …" becomes "snap: array '<prefix>weight_ih': expected …, got …".
    std::string message = error.what();
    const std::string head = "snap: ";
    const auto colon = message.find(": ", head.size());
    if (message.rfind(head, 0) != 0 || colon == std::string::npos) throw FormatError(message);
    throw FormatError(head + arrayArgument(prefix + message.substr(head.size(), colon - head.size())) +
                      message.substr(colon));
  }
}

}  // namespace detail
}  // namespace snap
