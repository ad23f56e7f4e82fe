#pragma once
/// @file
/// A cell's weights (and optionally a readout's) in a NumPy `.npz` file with PyTorch's names
/// and layout (docs/math.md §1), so that weights move between `torch.nn.RNNCell` / `GRUCell` /
/// `LSTMCell` + `torch.nn.Linear` and snap (examples/pytorch/export_torch.py and
/// import_to_torch.py; docs/cells.md).
///
/// Arrays: `weight_ih` (G·H × m), `weight_hh` (G·H × H), `bias_ih` (G·H), `bias_hh` (G·H) as
/// float64 or float32; optional `mask_ih`, `mask_hh` (0/1, the weights' shapes; absent means
/// dense); optional `readout_weight` (outputs × H) and `readout_bias` (outputs); `cell`, the
/// cell type as uint8 characters (b"rnn", b"gru", b"lstm"); and `version`, an integer scalar.
/// A leaky RNN adds `leak` (absent: 1, torch's RNNCell). Other cells (the LRU, a stack) store
/// their layout's tensors by name (a stack's as `layer<l>/<name>`), their masks, and their
/// configuration (docs/cells.md).

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <tuple>
#include <type_traits>
#include <vector>

#include "snap/cells/cell_base.hpp"
#include "snap/cells/cell_concept.hpp"
#include "snap/cells/gru.hpp"
#include "snap/cells/lru.hpp"
#include "snap/cells/lstm.hpp"
#include "snap/cells/rnn.hpp"
#include "snap/cells/stack.hpp"
#include "snap/core/error.hpp"
#include "snap/core/types.hpp"
#include "snap/archive/npz.hpp"
#include "snap/archive/arrays.hpp"
#include "snap/cells/cell_archive.hpp"
#include "snap/train/readout.hpp"

namespace snap {

/// The format version saveWeights() writes and loadWeights() reads.
inline constexpr std::int64_t weightsFormatVersion = 1;

/// What a weights file holds, read without building a cell (to choose the cell to build).
struct WeightsInfo {
  std::string cell;         ///< the cell type: "rnn", "gru", "lstm", "lru", "stack" or a custom cell's name
  Index inputSize = 0;      ///< m, the columns of weight_ih (0 for a cell that is not gated)
  Index hiddenSize = 0;     ///< H, the columns of weight_hh (0 for a cell that is not gated)
  Index gateRows = 0;       ///< G·H, the rows of the weights (0 for a cell that is not gated)
  Index outputs = 0;        ///< the readout's classes or outputs; 0 when the file has no readout
  Index readoutInputs = 0;  ///< the cell's output size the readout reads (its weight's columns); 0 without a readout
  bool masks = false;       ///< the file has mask_ih and mask_hh
  std::string elementType;  ///< the weights' NumPy type: "<f8" (float64) or "<f4" (float32)
};

namespace detail {

/// The archive and the file name its messages use.
struct WeightsFile {
  std::string path;
  NpzArchive archive;

  std::string where(std::string_view name) const {
    return "weights file '" + path + "': array '" + std::string(name) + "'";
  }
  bool has(std::string_view name) const { return archive.count(std::string(name)) != 0; }
  const NpyArray& array(std::string_view name) const {
    const auto it = archive.find(std::string(name));
    if (it == archive.end()) fail<FormatError>(where(name), "present", "no such array");
    return it->second;
  }

  /// The elements of a float64 or float32 array as Scalar, after checking its shape: each must
  /// be finite in Scalar (a float64 1e300 is out of a float cell's domain).
  template <class Scalar>
  std::vector<Scalar> values(std::string_view name, const std::vector<std::int64_t>& shape) const {
    const NpyArray& a = shaped(name, shape);
    std::vector<Scalar> out;
    if (a.type == "<f8") {
      const std::vector<double> stored = a.values<double>(where(name));
      out.assign(stored.begin(), stored.end());
    } else if (a.type == "<f4") {
      const std::vector<float> stored = a.values<float>(where(name));
      out.assign(stored.begin(), stored.end());
    } else {
      fail<FormatError>(where(name), "type <f8 (float64) or <f4 (float32)", a.type);
    }
    requireDomain(where(name), out.data(), out.size(), Domain<Scalar>{});
    return out;
  }

  template <class Scalar>
  RowMatrix<Scalar> matrix(std::string_view name, Index rows, Index cols) const {
    const std::vector<Scalar> v = values<Scalar>(name, {rows, cols});
    return Eigen::Map<const RowMatrix<Scalar>>(v.data(), rows, cols);
  }
  template <class Scalar>
  Vector<Scalar> vector(std::string_view name, Index size) const {
    const std::vector<Scalar> v = values<Scalar>(name, {size});
    return Eigen::Map<const Vector<Scalar>>(v.data(), size);
  }

  /// A mask of float64, float32 or uint8 entries, each exactly 0 or 1 as stored (1 + 1e-9 is
  /// refused even where it would round to 1).
  template <class Scalar>
  RowMatrix<Scalar> mask(std::string_view name, Index rows, Index cols) const {
    const NpyArray& a = shaped(name, {rows, cols});
    RowMatrix<Scalar> out(rows, cols);
    const auto take = [&](const auto& stored) {
      for (std::size_t i = 0; i < stored.size(); ++i) {
        if (stored[i] != 0 && stored[i] != 1)
          fail<FormatError>(where(name), "entries 0 or 1",
                            describeValue(stored[i]) + " at (" + describe(static_cast<Index>(i) / cols) + ", " +
                                describe(static_cast<Index>(i) % cols) + ")");
        out.data()[i] = static_cast<Scalar>(stored[i]);
      }
    };
    if (a.type == "<f8") take(a.values<double>(where(name)));
    else if (a.type == "<f4") take(a.values<float>(where(name)));
    else if (a.type == "|u1") take(a.values<std::uint8_t>(where(name)));
    else fail<FormatError>(where(name), "type <f8, <f4 or |u1", a.type);
    return out;
  }

  /// The array `name`, after checking that it has `shape`.
  const NpyArray& shaped(std::string_view name, const std::vector<std::int64_t>& shape) const {
    const NpyArray& a = array(name);
    if (a.shape != shape) fail<FormatError>(where(name), "shape " + describeShape(shape), describeShape(a.shape));
    return a;
  }

  /// The `cell` array as text.
  std::string cellType() const {
    const NpyArray& a = array("cell");
    if (a.type != "|u1" || a.shape.size() != 1)
      fail<FormatError>(where("cell"), "a one-dimensional uint8 array of characters (e.g. b\"gru\")",
                        a.type + " of shape " + describeShape(a.shape));
    return std::string(a.bytes.begin(), a.bytes.end());
  }

  /// Throws unless `version` is an integer scalar equal to weightsFormatVersion.
  void checkVersion() const {
    const NpyArray& a = array("version");
    if (!a.shape.empty() || (a.type != "<i8" && a.type != "<i4"))
      fail<FormatError>(where("version"), "an integer scalar", a.type + " of shape " + describeShape(a.shape));
    const std::int64_t version = a.type == "<i8" ? a.values<std::int64_t>(where("version"))[0]
                                                 : a.values<std::int32_t>(where("version"))[0];
    if (version != weightsFormatVersion) fail<FormatError>(where("version"), describe(weightsFormatVersion), version);
  }

  /// The two extents of a two-dimensional array.
  std::pair<Index, Index> shape2(std::string_view name) const {
    const NpyArray& a = array(name);
    if (a.shape.size() != 2) fail<FormatError>(where(name), "a two-dimensional array", describeShape(a.shape));
    return {a.shape[0], a.shape[1]};
  }
};

inline WeightsFile openWeights(const std::string& path) {
  WeightsFile file{path, loadNpz(path, "weights file")};
  file.checkVersion();
  return file;
}

/// Throws unless the weight is exactly 0 wherever its (0/1) mask is 0.
template <class Scalar>
void requireZeroAtMask(const WeightsFile& file, std::string_view name, const RowMatrix<Scalar>& weight,
                       const RowMatrix<Scalar>& mask) {
  for (Index r = 0; r < weight.rows(); ++r)
    for (Index c = 0; c < weight.cols(); ++c)
      if (mask(r, c) == Scalar(0) && weight(r, c) != Scalar(0))
        fail<FormatError>(file.where(name), "0 at every position its mask removes",
                          describe(weight(r, c)) + " at (" + describe(r) + ", " + describe(c) + ")");
}

template <class Scalar>
void putReadout(NpzArchive& archive, const LinearReadout<Scalar>& readout) {
  archive["readout_weight"] = NpyArray::of(RowMatrix<Scalar>(readout.weight()));
  archive["readout_bias"] = NpyArray::of(Vector<Scalar>(readout.bias()));
}

template <class CellType>
NpzArchive weightsArchive(const CellType& cell) {
  static_assert(requirement::HasTypeName<CellType>,
                "snap: saving or loading weights needs snap::CellTypeName<YourCell>::value, the name stored in "
                "the file (see include/snap/cells/cell_concept.hpp)");
  NpzArchive archive;
  putText(archive, "cell", CellTypeName<CellType>::value);
  putScalar<std::int64_t>(archive, "version", weightsFormatVersion);
  if constexpr (std::is_base_of_v<CellBase<typename CellType::Scalar>, CellType>) {
    if constexpr (requires { cell.leak(); })  // PyTorch's layout has no leak: stored when not 1
      if (cell.leak() != 1) putScalar<double>(archive, "leak", static_cast<double>(cell.leak()));
  } else if constexpr (requires { cell.saveConfiguration(archive, std::string()); }) {
    cell.saveConfiguration(archive, "");
  }
  putCellTensors(archive, "", cell);
  return archive;
}

/// Reads and checks everything loadWeights needs before anything changes: the cell's tensors by
/// their layout names (float64 or float32), and its masks when the file has them (all or none;
/// none means dense), each weight exactly 0 where its mask is.
template <class CellType>
struct LoadedWeights {
  using Scalar = typename CellType::Scalar;
  ParameterTensors<Scalar> tensors;
  std::vector<RowMatrix<Scalar>> masks;
  bool sameMasks = true;

  LoadedWeights(const WeightsFile& file, const CellType& cell) {
    static_assert(requirement::HasTypeName<CellType>,
                  "snap: saving or loading weights needs snap::CellTypeName<YourCell>::value, the name stored in "
                  "the file (see include/snap/cells/cell_concept.hpp)");
    const std::string expected(CellTypeName<CellType>::value), stored = file.cellType();
    if (stored != expected) fail<FormatError>(file.where("cell"), "'" + expected + "'", "'" + stored + "'");
    if constexpr (std::is_base_of_v<CellBase<Scalar>, CellType>) {
      if constexpr (requires { cell.leak(); }) {
        const double leak = static_cast<double>(cell.leak());
        if (file.has("leak") || leak != 1) readScalar<double>(file.archive, "leak", leak, leak);
      }
    } else if constexpr (requires { cell.checkConfiguration(file.archive, std::string()); }) {
      cell.checkConfiguration(file.archive, "");
    }
    const ParameterLayout& layout = cell.layout();
    bool anyMask = false, everyMask = true;
    std::string missing;
    for (Index t = 0; t < layout.tensorCount(); ++t)
      if (layout.tensor(t).isMaskable()) {
        const bool has = file.has(layout.tensor(t).maskName);
        anyMask = anyMask || has;
        if (!has && everyMask) missing = layout.tensor(t).maskName;
        everyMask = everyMask && has;
      }
    if (anyMask && !everyMask) file.array(missing);  // throws: some masks without the others
    for (Index t = 0; t < layout.tensorCount(); ++t) {
      const TensorSpec& spec = layout.tensor(t);
      if (storedAsVector(spec))
        tensors.push_back(file.vector<Scalar>(spec.name, spec.rows));
      else
        tensors.push_back(file.matrix<Scalar>(spec.name, spec.rows, spec.cols));
      if (spec.isMaskable() && anyMask) {
        masks.push_back(file.mask<Scalar>(spec.maskName, spec.rows, spec.cols));
        requireZeroAtMask(file, spec.name, tensors.back(), masks.back());
      } else {
        masks.push_back(RowMatrix<Scalar>::Ones(spec.rows, spec.cols));
      }
      if (spec.isMaskable())
        sameMasks = sameMasks && masks.back() == layout.mask(t).template cast<Scalar>();
    }
  }

  /// Sets the masks (only when they differ: a mask change restarts bound engines) and tensors;
  /// everything has been checked, so that neither call can refuse half-way.
  void applyTo(CellType& cell) const {
    if (!sameMasks) cell.setParameterMasks(masks);
    cell.setParameterTensors(tensors);
  }
};

}  // namespace detail

/// Saves the cell's tensors and masks in PyTorch's layout, as the Scalar type's NumPy type
/// (float32 or float64), atomically (see saveNpz). Throws FormatError when the file cannot be
/// written.
template <Cell CellType>
void saveWeights(const std::string& path, const CellType& cell) {
  saveNpz(path, detail::weightsArchive(cell), "weights file");
}

/// Saves the cell and a linear readout, classification or regression (readout_weight,
/// readout_bias: torch.nn.Linear's).
template <Cell CellType>
void saveWeights(const std::string& path, const CellType& cell, const LinearReadout<typename CellType::Scalar>& readout) {
  NpzArchive archive = detail::weightsArchive(cell);
  detail::putReadout(archive, readout);
  saveNpz(path, archive, "weights file");
}

/// Loads a cell's tensors (and masks; none in the file means dense) saved by saveWeights or
/// exported from PyTorch. The cell must have the stored type and sizes (readWeightsInfo()
/// tells them). Throws FormatError naming the array on a missing array, a wrong type, shape
/// or value; on any error the cell is left unchanged. A mask change restarts engines bound to
/// the cell (docs/design.md), so load before training.
template <Cell CellType>
void loadWeights(const std::string& path, CellType& cell) {
  const detail::WeightsFile file = detail::openWeights(path);
  const detail::LoadedWeights<CellType> loaded(file, cell);
  loaded.applyTo(cell);
}

/// Loads a cell and its linear readout; the readout must have the stored number of classes.
template <Cell CellType>
void loadWeights(const std::string& path, CellType& cell, LinearReadout<typename CellType::Scalar>& readout) {
  using Scalar = typename CellType::Scalar;
  const detail::WeightsFile file = detail::openWeights(path);
  const detail::LoadedWeights<CellType> loaded(file, cell);
  const RowMatrix<Scalar> weight = file.matrix<Scalar>("readout_weight", readout.outputs(), readout.hiddenSize());
  const Vector<Scalar> bias = file.vector<Scalar>("readout_bias", readout.outputs());
  loaded.applyTo(cell);
  readout.setWeights(weight, bias);
}

/// The cell type, sizes and contents of a weights file, without building a cell.
inline WeightsInfo readWeightsInfo(const std::string& path) {
  const detail::WeightsFile file = detail::openWeights(path);
  WeightsInfo info;
  info.cell = file.cellType();
  if (file.has("readout_weight")) std::tie(info.outputs, info.readoutInputs) = file.shape2("readout_weight");
  if (!file.has("weight_ih")) {  // not a gated cell: its type, its arrays' type and the readout's sizes
    const auto first = std::find_if(file.archive.begin(), file.archive.end(),
                                    [](const auto& entry) { return entry.second.type == "<f8" || entry.second.type == "<f4"; });
    if (first != file.archive.end()) info.elementType = first->second.type;
    return info;
  }
  const auto [rowsIh, inputs] = file.shape2("weight_ih");
  const auto [rowsHh, hidden] = file.shape2("weight_hh");
  if (rowsHh != rowsIh)
    detail::fail<FormatError>(file.where("weight_hh"), "as many rows as weight_ih (" + detail::describe(rowsIh) + ")",
                              rowsHh);
  info.inputSize = inputs;
  info.hiddenSize = hidden;
  info.gateRows = rowsIh;
  info.elementType = file.array("weight_ih").type;
  info.masks = file.has("mask_ih") && file.has("mask_hh");
  return info;
}

}  // namespace snap
