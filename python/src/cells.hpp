#pragma once
// The bindings of the cells and the readout for one scalar type (cells32.cpp, cells64.cpp).

#include "common.hpp"

namespace snap::python {

/// Binds CellType as snap.<name><bits>: construction with masks, the PyTorch tensors, θ, the
/// forward step, and weights files.
template <class CellType>
void bindCell(py::module_& m, const std::string& name) {
  using Scalar = typename CellType::Scalar;
  const CellOptions defaults;
  py::class_<CellType>(m, (name + bits<Scalar>()).c_str(),
                       ("The " + name + " cell in " + dtypeName<Scalar>() + " (C++ snap::" + name + "<" +
                        (bits<Scalar>() == "32" ? "float" : "double") + ">), PyTorch's layout.").c_str())
      .def(py::init([](Index inputSize, Index hiddenSize, double inputDensity, double recurrentDensity,
                       const std::string& maskSharing, std::uint64_t seed) {
             CellOptions options{.inputDensity = inputDensity, .recurrentDensity = recurrentDensity, .seed = seed};
             if (maskSharing == "per_gate") options.maskSharing = MaskSharing::PerGate;
             else if (maskSharing == "shared") options.maskSharing = MaskSharing::Shared;
             else detail::fail<ValueError>("mask_sharing", "'per_gate' or 'shared'", "'" + maskSharing + "'");
             return CellType(inputSize, hiddenSize, options);
           }),
           py::arg("input_size"), py::arg("hidden_size"), py::kw_only(), py::arg("input_density") = defaults.inputDensity,
           py::arg("recurrent_density") = defaults.recurrentDensity, py::arg("mask_sharing") = "per_gate",
           py::arg("seed") = defaults.seed)
      .def_property_readonly("dtype", [](const CellType&) { return py::dtype::of<Scalar>(); })
      .def_property_readonly("input_size", &CellType::inputSize)
      .def_property_readonly("hidden_size", &CellType::hiddenSize)
      .def_property_readonly("state_size", &CellType::stateSize)
      .def_property_readonly("gate_rows", &CellType::gateRows)
      .def_property_readonly("parameter_count", &CellType::parameterCount)
      .def_property_readonly("weight_ih", [](const CellType& c) { return copyMatrix(c.weight_ih()); })
      .def_property_readonly("weight_hh", [](const CellType& c) { return copyMatrix(c.weight_hh()); })
      .def_property_readonly("bias_ih", [](const CellType& c) { return copyVector(c.bias_ih()); })
      .def_property_readonly("bias_hh", [](const CellType& c) { return copyVector(c.bias_hh()); })
      .def_property_readonly("mask_ih", [](const CellType& c) { return copyMatrix(c.mask_ih()); })
      .def_property_readonly("mask_hh", [](const CellType& c) { return copyMatrix(c.mask_hh()); })
      .def("tensors", [](const CellType& c) { return tensorDict(c.tensors()); },
           "The four tensors as a dict of copies keyed weight_ih, weight_hh, bias_ih, bias_hh.")
      .def(
          "set_weights",
          [](CellType& c, py::handle weightIh, py::handle weightHh, py::handle biasIh, py::handle biasHh) {
            c.setWeights(matrixArgument<Scalar>(weightIh, "weight_ih"), matrixArgument<Scalar>(weightHh, "weight_hh"),
                         vectorArgument<Scalar>(biasIh, "bias_ih"), vectorArgument<Scalar>(biasHh, "bias_hh"));
          },
          py::arg("weight_ih"), py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"),
          "Sets the four tensors (PyTorch's shapes, finite, 0 where masked); all or nothing.")
      .def(
          "set_masks",
          [](CellType& c, py::handle maskIh, py::handle maskHh) {
            const auto ih = matrixArgument<Scalar>(maskIh, "mask_ih");
            const auto hh = matrixArgument<Scalar>(maskHh, "mask_hh");
            c.setMasks(ih, hh);
          },
          py::arg("mask_ih"), py::arg("mask_hh"), "Sets both 0/1 masks (restarts the engines bound to the cell).")
      .def("parameters", [](const CellType& c) { return copyVector(c.parameters()); }, "theta, the active parameters.")
      .def("set_parameters", [](CellType& c, py::handle theta) { c.setParameters(vectorArgument<Scalar>(theta, "parameters")); },
           py::arg("theta"))
      .def(
          "unflatten",
          [](const CellType& c, py::handle theta) {
            const auto values = vectorArgument<Scalar>(theta, "theta");
            detail::requireLength("theta", values.size(), c.parameterCount());
            return tensorDict(c.unflatten(values));
          },
          py::arg("theta"), "A theta-ordered vector (a gradient) as the four tensors, 0 where masked.")
      .def(
          "forward",
          [](const CellType& c, py::handle input, py::handle state) {
            const auto x = vectorArgument<Scalar>(input, "input");
            const auto s = vectorArgument<Scalar>(state, "state");
            StepCache<Scalar> cache = c.makeCache();
            Vector<Scalar> next(c.stateSize());
            c.forward(x, s, next, cache);
            return copyVector(next);
          },
          py::arg("input"), py::arg("state"), "The next state f(input, state), outside any engine.")
      .def(
          "save_weights",
          [](const CellType& c, const std::string& path, const Readout<Scalar>* readout) {
            if (readout != nullptr) saveWeights(path, c, *readout);
            else saveWeights(path, c);
          },
          py::arg("path"), py::arg("readout") = py::none(), "Writes the weights file C++ and PyTorch read.")
      .def(
          "load_weights",
          [](CellType& c, const std::string& path, Readout<Scalar>* readout) {
            if (readout != nullptr) loadWeights(path, c, *readout);
            else loadWeights(path, c);
          },
          py::arg("path"), py::arg("readout") = py::none(), "Reads a weights file (all or nothing).");
}

/// Binds Readout<Scalar> as snap.Readout<bits>.
template <class Scalar>
void bindReadout(py::module_& m) {
  using R = Readout<Scalar>;
  py::class_<R>(m, ("Readout" + bits<Scalar>()).c_str(),
                ("A linear softmax readout of h in " + dtypeName<Scalar>() + " (C++ snap::Readout).").c_str())
      .def(py::init<Index, Index, std::uint64_t>(), py::arg("hidden_size"), py::arg("outputs"), py::arg("seed") = 0)
      .def_property_readonly("dtype", [](const R&) { return py::dtype::of<Scalar>(); })
      .def_property_readonly("hidden_size", &R::hiddenSize)
      .def_property_readonly("outputs", &R::outputs)
      .def_property_readonly("weight", [](const R& r) { return copyMatrix(r.weight()); })
      .def_property_readonly("bias", [](const R& r) { return copyVector(r.bias()); })
      .def("parameters", [](const R& r) { return copyVector(r.parameters()); }, "[W row-major; b].")
      .def("gradient", [](const R& r) { return copyVector(r.gradient()); })
      .def("reset_gradient", &R::resetGradient)
      .def(
          "set_weights",
          [](R& r, py::handle weight, py::handle bias) {
            r.setWeights(matrixArgument<Scalar>(weight, "readout weight"), vectorArgument<Scalar>(bias, "readout bias"));
          },
          py::arg("weight"), py::arg("bias"))
      .def(
          "predict", [](R& r, py::handle state) { return copyVector(r.predict(vectorArgument<Scalar>(state, "state"))); },
          py::arg("state"), "Softmax probabilities for the state's h.")
      .def(
          "loss",
          [](R& r, py::handle state, Index target) {
            const auto s = vectorArgument<Scalar>(state, "state");
            Vector<Scalar> delta(s.size());
            const Scalar loss = r.loss(s, target, delta);
            return py::make_tuple(loss, copyVector(delta));
          },
          py::arg("state"), py::arg("target"), "(loss in nats, dloss/dstate); adds the readout's own gradient.");
}

/// Every cell and the readout for one scalar type.
template <class Scalar>
void bindCells(py::module_& m) {
  bindCell<RNN<Scalar>>(m, "RNN");
  bindCell<GRU<Scalar>>(m, "GRU");
  bindCell<LSTM<Scalar>>(m, "LSTM");
  bindReadout<Scalar>(m);
}

}  // namespace snap::python
