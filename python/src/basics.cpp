// The pieces without a scalar type: engine options, optimizers, Random, the copy task, the
// weights-file information, and the conversions between dicts of NumPy arrays and archives.

#include "common.hpp"

#include <optional>
#include <sstream>

namespace snap::python {

std::string describeShape(const py::array& array) {
  std::ostringstream out;
  out << "(";
  for (py::ssize_t axis = 0; axis < array.ndim(); ++axis)
    out << array.shape(axis) << (array.ndim() == 1 ? "," : axis + 1 < array.ndim() ? ", " : "");
  out << ")";
  return out.str();
}

std::string describeShape(std::initializer_list<Index> shape) {
  std::ostringstream out;
  out << "(";
  std::size_t axis = 0;
  for (Index extent : shape) {
    if (extent < 0) out << "any";
    else out << extent;
    out << (shape.size() == 1 ? "," : ++axis < shape.size() ? ", " : "");
  }
  out << ")";
  return out.str();
}

NpzArchive archiveOf(py::handle arrays, const char* argument) {
  NpzArchive archive;
  if (arrays.is_none()) return archive;
  if (!py::isinstance<py::dict>(arrays))
    throw py::type_error(std::string("snap: ") + argument + ": expected a dict of numpy arrays, got an object of type " +
                         std::string(py::str(py::type::of(arrays).attr("__name__"))));
  for (const auto& [key, value] : py::reinterpret_borrow<py::dict>(arrays)) {
    if (!py::isinstance<py::str>(key))
      throw py::type_error(std::string("snap: ") + argument + ": expected str keys, got " + std::string(py::repr(key)));
    const std::string name = py::cast<std::string>(key);
    const std::string where = std::string(argument) + "['" + name + "']";
    if (!py::isinstance<py::array>(value))
      throw py::type_error("snap: " + where + ": expected a numpy.ndarray, got an object of type " +
                           std::string(py::str(py::type::of(value).attr("__name__"))));
    const auto array = py::reinterpret_borrow<py::array>(value);
    const std::string type = py::cast<std::string>(array.dtype().attr("str"));
    if (type != "<f4" && type != "<f8" && type != "<i4" && type != "<i8" && type != "<u8" && type != "|u1")
      throw py::type_error("snap: " + where + ": expected dtype float32, float64, int32, int64, uint64 or uint8, got " +
                           py::cast<std::string>(array.dtype().attr("name")));
    if (!(array.flags() & py::array::c_style))
      detail::fail<ValueError>(where, "a C-contiguous array (numpy.ascontiguousarray makes one)", "a non-contiguous view");
    NpyArray stored{type, {}, {}};
    for (py::ssize_t axis = 0; axis < array.ndim(); ++axis) stored.shape.push_back(array.shape(axis));
    stored.bytes.resize(static_cast<std::size_t>(array.nbytes()));
    if (!stored.bytes.empty()) std::memcpy(stored.bytes.data(), array.data(), stored.bytes.size());
    archive[name] = std::move(stored);
  }
  return archive;
}

py::dict extraArrays(const NpzArchive& archive) {
  py::dict out;
  for (const auto& [name, stored] : archive) {
    if (detail::isCheckpointName(name)) continue;
    std::vector<py::ssize_t> shape(stored.shape.begin(), stored.shape.end());
    py::array array(py::dtype(stored.type), shape);
    if (static_cast<std::size_t>(array.nbytes()) != stored.bytes.size())
      detail::fail<FormatError>(detail::arrayArgument(name), describe(array.nbytes()) + " bytes for its shape",
                                stored.bytes.size());
    if (!stored.bytes.empty()) std::memcpy(array.mutable_data(), stored.bytes.data(), stored.bytes.size());
    out[py::str(name)] = array;
  }
  return out;
}

AnyOptimizer optimizerArgument(py::handle object) {
  if (py::isinstance<SGD>(object)) return py::cast<SGD>(object);
  if (py::isinstance<Adam>(object)) return py::cast<Adam>(object);
  throw py::type_error("snap: optimizer: expected snap.SGD or snap.Adam, got " +
                       (object.is_none() ? std::string("None")
                                         : "an object of type " + std::string(py::str(py::type::of(object).attr("__name__")))));
}

TrainerOptions trainerOptions(Index batch, int threads, const std::string& schedule, Index updateEvery,
                              double clipNorm, const std::string& nonFinite) {
  TrainerOptions options{.batch = batch, .threads = threads, .updateEvery = updateEvery, .clipNorm = clipNorm};
  if (schedule == "online") options.schedule = UpdateSchedule::Online;
  else if (schedule == "per_sequence") options.schedule = UpdateSchedule::PerSequence;
  else detail::fail<ValueError>("schedule", "'online' or 'per_sequence'", "'" + schedule + "'");
  if (nonFinite == "throw") options.nonFinite = NonFinitePolicy::Throw;
  else if (nonFinite == "skip") options.nonFinite = NonFinitePolicy::Skip;
  else detail::fail<ValueError>("non_finite", "'throw' or 'skip'", "'" + nonFinite + "'");
  return options;
}

namespace {

void bindOptions(py::module_& m) {
  py::class_<RTRLOptions>(m, "RTRLOptions", "Options of RTRL (C++ snap::RTRLOptions).")
      .def(py::init([](double denseDynamicsAbove) { return RTRLOptions{.denseDynamicsAbove = denseDynamicsAbove}; }),
           py::kw_only(), py::arg("dense_dynamics_above") = RTRLOptions{}.denseDynamicsAbove)
      .def_readwrite("dense_dynamics_above", &RTRLOptions::denseDynamicsAbove)
      .def("__repr__", [](const RTRLOptions& o) { return "snap.RTRLOptions(dense_dynamics_above=" + describe(o.denseDynamicsAbove) + ")"; });
  py::class_<SnApOptions>(m, "SnApOptions", "Options of SnAp-n (C++ snap::SnApOptions).")
      .def(py::init([](int n, double denseBlockAbove) { return SnApOptions{.n = n, .denseBlockAbove = denseBlockAbove}; }),
           py::arg("n") = SnApOptions{}.n, py::kw_only(), py::arg("dense_block_above") = SnApOptions{}.denseBlockAbove)
      .def_readwrite("n", &SnApOptions::n)
      .def_readwrite("dense_block_above", &SnApOptions::denseBlockAbove)
      .def("__repr__", [](const SnApOptions& o) { return "snap.SnApOptions(n=" + describe(o.n) + ", dense_block_above=" + describe(o.denseBlockAbove) + ")"; });
  py::class_<UOROOptions>(m, "UOROOptions", "Options of UORO (C++ snap::UOROOptions).")
      .def(py::init([](double epsilon, std::uint64_t seed) { return UOROOptions{.epsilon = epsilon, .seed = seed}; }),
           py::kw_only(), py::arg("epsilon") = UOROOptions{}.epsilon, py::arg("seed") = UOROOptions{}.seed)
      .def_readwrite("epsilon", &UOROOptions::epsilon)
      .def_readwrite("seed", &UOROOptions::seed)
      .def("__repr__", [](const UOROOptions& o) { return "snap.UOROOptions(epsilon=" + describe(o.epsilon) + ", seed=" + describe(o.seed) + ")"; });
  py::class_<BPTTOptions>(m, "BPTTOptions", "Options of BPTT (C++ snap::BPTTOptions); window=None: untruncated.")
      .def(py::init([](std::optional<Index> window) { return BPTTOptions{.window = window}; }), py::arg("window") = py::none())
      .def_readwrite("window", &BPTTOptions::window)
      .def("__repr__", [](const BPTTOptions& o) { return "snap.BPTTOptions(window=" + (o.window ? describe(*o.window) : std::string("None")) + ")"; });
}

/// An optimizer's validate(dtype): its options checked in the scalar type they will be used in.
template <class Optimizer>
void validateIn(const Optimizer& optimizer, const std::string& dtype) {
  if (dtype == "float32") optimizer.template validate<float>();
  else if (dtype == "float64") optimizer.template validate<double>();
  else detail::fail<ValueError>("dtype", "'float32' or 'float64'", dtype);
}

void bindOptimizers(py::module_& m) {
  py::class_<SGD>(m, "SGD", "Plain SGD: theta -= learning_rate * g (C++ snap::SGD).")
      .def(py::init([](double learningRate) { return SGD{.learningRate = learningRate}; }),
           py::arg("learning_rate") = SGD{}.learningRate)
      .def_readwrite("learning_rate", &SGD::learningRate)
      .def("validate", &validateIn<SGD>, py::arg("dtype") = "float64",
           "Checks the options in the scalar type they will be used in.");
  const Adam defaults;
  py::class_<Adam>(m, "Adam", "Adam with bias correction (C++ snap::Adam).")
      .def(py::init([](double learningRate, double beta1, double beta2, double epsilon) {
             return Adam{.learningRate = learningRate, .beta1 = beta1, .beta2 = beta2, .epsilon = epsilon};
           }),
           py::arg("learning_rate") = defaults.learningRate, py::kw_only(), py::arg("beta1") = defaults.beta1,
           py::arg("beta2") = defaults.beta2, py::arg("epsilon") = defaults.epsilon)
      .def_readwrite("learning_rate", &Adam::learningRate)
      .def_readwrite("beta1", &Adam::beta1)
      .def_readwrite("beta2", &Adam::beta2)
      .def_readwrite("epsilon", &Adam::epsilon)
      .def("validate", &validateIn<Adam>, py::arg("dtype") = "float64",
           "Checks the options in the scalar type they will be used in.");
}

void bindRandom(py::module_& m) {
  py::class_<Random>(m, "Random", "snap's seeded generator, the same draws as in C++ (C++ snap::Random).")
      .def(py::init<std::uint64_t>(), py::arg("seed") = 0)
      .def("uniform", py::overload_cast<>(&Random::uniform), "Uniform in [0, 1).")
      .def("uniform", py::overload_cast<double, double>(&Random::uniform), py::arg("low"), py::arg("high"))
      .def("below", &Random::below, py::arg("count"), "Uniform integer in [0, count).")
      .def("sign", &Random::sign);
}

template <class Scalar>
py::array_t<Scalar> sequenceInputs(const CopySequence& sequence) {
  py::array_t<Scalar> out({static_cast<py::ssize_t>(sequence.steps()), static_cast<py::ssize_t>(sequence.alphabet() + 1)});
  Eigen::Map<RowMatrix<Scalar>> rows(out.mutable_data(), sequence.steps(), sequence.alphabet() + 1);
  for (Index t = 0; t < sequence.steps(); ++t) {
    auto row = rows.row(t);
    sequence.input(t, row);
  }
  return out;
}

void bindCopyTask(py::module_& m) {
  py::class_<CopySequence>(m, "CopySequence", "One copy-task sequence: L symbols, a delimiter, L recall steps.")
      .def(py::init<std::vector<int>, int>(), py::arg("symbols"), py::arg("alphabet"))
      .def_property_readonly("length", &CopySequence::length)
      .def_property_readonly("steps", &CopySequence::steps)
      .def_property_readonly("alphabet", &CopySequence::alphabet)
      .def_property_readonly("symbols", &CopySequence::symbols)
      .def("input_class", &CopySequence::inputClass, py::arg("t"))
      .def("target", &CopySequence::target, py::arg("t"))
      .def(
          "inputs",
          [](const CopySequence& s, py::object dtype) -> py::object {
            const py::dtype type = py::dtype::from_args(dtype);
            if (type.equal(py::dtype::of<float>())) return sequenceInputs<float>(s);
            if (type.equal(py::dtype::of<double>())) return sequenceInputs<double>(s);
            throw py::type_error("snap: dtype: expected float32 or float64, got " + std::string(py::str(static_cast<py::handle>(type))));
          },
          py::arg("dtype") = "float64", "The one-hot inputs, steps x (alphabet + 1).")
      .def("targets", [](const CopySequence& s) {
        py::array_t<std::int64_t> out(static_cast<py::ssize_t>(s.steps()));
        for (Index t = 0; t < s.steps(); ++t) out.mutable_data()[t] = s.target(t);
        return out;
      }, "The targets, steps values (-1: unscored).");
  const CopyTaskOptions defaults;
  py::class_<CopyTask>(m, "CopyTask", "The copy task with its curriculum (C++ snap::CopyTask).")
      .def(py::init([](int alphabet, Index initialLength, Index lengthSpread, double threshold, Index window,
                       std::uint64_t seed) {
             return CopyTask({.alphabet = alphabet, .initialLength = initialLength, .lengthSpread = lengthSpread,
                              .threshold = threshold, .window = window, .seed = seed});
           }),
           py::kw_only(), py::arg("alphabet") = defaults.alphabet, py::arg("initial_length") = defaults.initialLength,
           py::arg("length_spread") = defaults.lengthSpread, py::arg("threshold") = defaults.threshold,
           py::arg("window") = defaults.window, py::arg("seed") = defaults.seed)
      .def("next", &CopyTask::next, "A new sequence at the curriculum's length.")
      .def("record", &CopyTask::record, py::arg("sequence"), py::arg("recall_loss_bits"),
           "Records a finished sequence; True when L rose.")
      .def_property_readonly("length", &CopyTask::length)
      .def_property_readonly("data_time", &CopyTask::dataTime)
      .def_property_readonly("sequences", &CopyTask::sequences)
      .def_property_readonly("input_size", &CopyTask::inputSize)
      .def_property_readonly("output_size", &CopyTask::outputSize)
      .def_property_readonly("recent_loss", [](const CopyTask& t) { return t.curriculum().recentLoss(); });
}

}  // namespace

void bindBasics(py::module_& m) {
  bindOptions(m);
  bindOptimizers(m);
  bindRandom(m);
  bindCopyTask(m);
  m.def("read_weights_info", [](const std::string& path) {
    const WeightsInfo info = readWeightsInfo(path);
    py::dict out;
    out["cell"] = info.cell;
    out["input_size"] = info.inputSize;
    out["hidden_size"] = info.hiddenSize;
    out["gate_rows"] = info.gateRows;
    out["outputs"] = info.outputs;
    out["masks"] = info.masks;
    out["dtype"] = info.elementType == "<f4" ? "float32" : "float64";
    return out;
  }, py::arg("path"), "What a weights file holds (cell type, sizes, readout classes, dtype), without building a cell.");
  m.attr("checkpoint_version") = checkpointVersion;
  m.attr("weights_format_version") = weightsFormatVersion;
}

}  // namespace snap::python
