#pragma once
// The bindings of one engine type over the three cells: the engine itself (per-step and
// sequence calls) and the Trainer that drives it (rtrl32.cpp … bptt64.cpp instantiate them).
// A batched engine slots in as one more bindEngineFamily call in its own translation unit.

#include "common.hpp"

#include <optional>

namespace snap::python {

/// Throws unless every value of a NumPy array is finite (the sequence calls check their inputs
/// before the first step, so that a refused call changes nothing).
template <class Scalar>
void requireFiniteArray(const char* argument, const Scalar* data, Index size) {
  detail::requireFinite(argument, Eigen::Map<const Vector<Scalar>>(data, size));
}

/// Binds EngineType as snap._snap.<name>: the Engine concept (step, accumulate, gradient,
/// reset_gradient, reset_state), the engine's own inspections, and run(), a whole sequence.
template <class EngineType>
void bindEngine(py::module_& m, const std::string& name) {
  using E = EngineType;
  using Scalar = typename E::Scalar;
  using CellType = typename E::CellType;
  py::class_<E> engine(m, name.c_str());
  engine
      .def(py::init([](const CellType& cell, const typename E::Options& options) { return E(cell, options); }),
           py::arg("cell"), py::arg("options"), py::keep_alive<1, 2>())
      .def_property_readonly("dtype", [](const E&) { return py::dtype::of<Scalar>(); })
      .def_property_readonly("cell", &E::cell, py::return_value_policy::reference_internal)
      .def_property_readonly("options", &E::options)
      .def_property_readonly("steps", &E::steps)
      .def_property_readonly("bytes", &E::bytes)
      .def_property_readonly("state", [](const E& e) { return copyVector(e.state()); }, "s_t (a copy).")
      .def(
          "step", [](E& e, py::handle input) { return copyVector(e.step(vectorArgument<Scalar>(input, "input"))); },
          py::arg("input"), "Advances with x_t; returns s_t (a copy).")
      .def(
          "accumulate", [](E& e, py::handle delta) { e.accumulate(vectorArgument<Scalar>(delta, "state gradient")); },
          py::arg("state_gradient"), "Adds the gradient of delta_t = dL_t/ds_t.")
      .def("gradient", [](E& e) { return copyVector(e.gradient()); }, "The accumulated gradient, theta-ordered (a copy).")
      .def("reset_gradient", &E::resetGradient)
      .def(
          "reset_state",
          [](E& e, py::handle initial) {
            if (initial.is_none()) e.resetState();
            else e.resetState(vectorArgument<Scalar>(initial, "initial state"));
          },
          py::arg("initial") = py::none(), "A new sequence from zero (or from `initial`).")
      .def(
          "run",
          [](E& e, py::handle inputs, py::handle deltas) {
            const Index m = e.cell().inputSize(), k = e.cell().stateSize();
            const auto x = arrayArgument<Scalar>(inputs, "inputs", {-1, m});
            const Index steps = static_cast<Index>(x.shape(0));
            const Scalar* d = nullptr;
            if (!deltas.is_none()) d = arrayArgument<Scalar>(deltas, "state gradients", {steps, k}).data();
            requireFiniteArray("inputs", x.data(), steps * m);
            if (d != nullptr) requireFiniteArray("state gradients", d, steps * k);
            py::array_t<Scalar> states({static_cast<py::ssize_t>(steps), static_cast<py::ssize_t>(k)});
            Scalar* out = states.mutable_data();
            for (Index t = 0; t < steps; ++t) {
              const Vector<Scalar>& s = e.step(Eigen::Map<const Vector<Scalar>>(x.data() + t * m, m));
              Eigen::Map<Vector<Scalar>>(out + t * k, k) = s;
              if (d != nullptr) e.accumulate(Eigen::Map<const Vector<Scalar>>(d + t * k, k));
            }
            return states;
          },
          py::arg("inputs"), py::arg("state_gradients") = py::none(),
          "Steps through inputs (T x m), accumulating state_gradients (T x k) when given; returns the states (T x k).");
  if constexpr (requires(E& e) { e.flush(); }) engine.def("flush", &E::flush);
  if constexpr (requires(const E& e) { e.workspaceBytes(); })
    engine.def_property_readonly("workspace_bytes", &E::workspaceBytes);
  if constexpr (requires(E& e) { e.influence().rows(); })  // RTRL: J_t, k x p
    engine.def("influence", [](E& e) { return copyMatrix(e.influence()); }, "J_t (k x p, a copy).");
  if constexpr (requires(E& e) { e.influence(Index(0), Index(0)); e.pattern(); }) {  // SnAp
    engine.def(
        "influence",
        [](E& e) {
          const Index k = e.cell().stateSize(), p = e.cell().parameterCount();
          RowMatrix<Scalar> values(k, p);
          for (Index row = 0; row < k; ++row)
            for (Index j = 0; j < p; ++j) values(row, j) = e.influence(row, j);
          return copyMatrix(values);
        },
        "The SnAp influence (k x p, 0 outside the pattern; a copy). Performs a pending update first.");
    engine.def(
        "pattern",
        [](const E& e) {
          const SnApPattern& pattern = e.pattern();
          const Index k = pattern.stateSize(), p = pattern.parameterCount();
          py::array_t<bool> out({static_cast<py::ssize_t>(k), static_cast<py::ssize_t>(p)});
          bool* mask = out.mutable_data();
          std::fill(mask, mask + k * p, false);
          for (Index j = 0; j < p; ++j)
            for (StorageIndex row : pattern.rowsOf(j)) mask[row * p + j] = true;
          return out;
        },
        "M_n as a k x p boolean array.");
    engine.def_property_readonly("kept_entries", [](const E& e) { return e.pattern().keptEntries(); });
  }
  if constexpr (requires(const E& e) { e.stateEstimate(); e.parameterEstimate(); }) {  // UORO
    engine.def("state_estimate", [](const E& e) { return copyVector(e.stateEstimate()); });
    engine.def("parameter_estimate", [](const E& e) { return copyVector(e.parameterEstimate()); });
  }
  if constexpr (requires(const E& e) { e.windowSteps(); }) engine.def_property_readonly("window_steps", &E::windowSteps);
}

/// A Trainer that remembers its readout, so that the sequence call checks every target's class
/// before the first step.
template <class EngineType>
struct BoundTrainer : Trainer<EngineType> {
  using Scalar = typename EngineType::Scalar;
  BoundTrainer(typename EngineType::CellType& cell, Readout<Scalar>& readout, AnyOptimizer optimizer,
               const TrainerOptions& options, const typename EngineType::Options& engineOptions)
      : Trainer<EngineType>(cell, readout, optimizer, options, engineOptions), outputs(readout.outputs()) {}
  Index outputs;  ///< the readout's classes
};

/// Binds Trainer<EngineType> as snap._snap.<name>: per-step calls, the sequence call run(),
/// updates, and checkpoints (the files the C++ side writes and reads).
template <class EngineType>
void bindTrainer(py::module_& m, const std::string& name) {
  using T = BoundTrainer<EngineType>;
  using Scalar = typename EngineType::Scalar;
  using CellType = typename EngineType::CellType;
  const TrainerOptions defaults;
  py::class_<T>(m, name.c_str())
      .def(py::init([](CellType& cell, Readout<Scalar>& readout, py::handle optimizer,
                       const typename EngineType::Options& engineOptions, Index batch, const std::string& schedule,
                       Index updateEvery, double clipNorm, const std::string& nonFinite) {
             return std::make_unique<T>(cell, readout, optimizerArgument(optimizer),
                                        trainerOptions(batch, schedule, updateEvery, clipNorm, nonFinite), engineOptions);
           }),
           py::arg("cell"), py::arg("readout"), py::arg("optimizer"), py::arg("engine"), py::kw_only(),
           py::arg("batch") = defaults.batch, py::arg("schedule") = "online", py::arg("update_every") = defaults.updateEvery,
           py::arg("clip_norm") = defaults.clipNorm, py::arg("non_finite") = "throw", py::keep_alive<1, 2>(),
           py::keep_alive<1, 3>())
      .def_property_readonly("dtype", [](const T&) { return py::dtype::of<Scalar>(); })
      .def_property_readonly("batch", &T::batch)
      .def_property_readonly("updates", &T::updates)
      .def_property_readonly("pending_steps", &T::pendingSteps)
      .def_property_readonly("last_gradient_norm", &T::lastGradientNorm)
      .def_property_readonly("skipped_steps", &T::skippedSteps)
      .def_property_readonly("skipped_updates", &T::skippedUpdates)
      .def_property_readonly("skipped", &T::skipped)
      .def(
          "observe",
          [](T& t, Index stream, py::handle input, Index target) {
            return t.observe(stream, vectorArgument<Scalar>(input, "input"), target);
          },
          py::arg("stream"), py::arg("input"), py::arg("target"),
          "One step of stream b; returns the loss in nats (target -1: unscored).")
      .def("end_step", &T::endStep, "Ends a batch step; True when it applied an update.")
      .def(
          "step", [](T& t, py::handle input, Index target) { return t.step(vectorArgument<Scalar>(input, "input"), target); },
          py::arg("input"), py::arg("target"), "B = 1: observe(0, input, target) then end_step(); the loss in nats.")
      .def("reset_stream", &T::resetStream, py::arg("stream"))
      .def("end_sequence", &T::endSequence)
      .def("update", &T::update)
      .def(
          "state", [](const T& t, Index stream) { return copyVector(t.engine(stream).state()); }, py::arg("stream") = 0,
          "The state of stream b (a copy).")
      .def(
          "gradient", [](T& t, Index stream) { return copyVector(t.engine(stream).gradient()); }, py::arg("stream") = 0,
          "The gradient accumulated by stream b's engine since the last update (a copy).")
      .def(
          "run",
          [](T& t, py::handle inputs, py::handle targets, bool returnStates, bool endSequence) -> py::object {
            const Index batch = t.batch(), m = t.engine(0).cell().inputSize(), k = t.engine(0).cell().stateSize();
            const auto x = arrayArgument<Scalar>(inputs, "inputs", {-1, batch, m});
            const Index steps = static_cast<Index>(x.shape(0));
            const auto y = arrayArgument<std::int64_t>(targets, "targets", {steps, batch});
            for (Index at = 0; at < steps * batch; ++at)
              if (y.data()[at] < -1 || y.data()[at] >= t.outputs)
                detail::fail<ValueError>("targets", "classes in [0, " + describe(t.outputs) + ") or -1 (unscored)",
                                         describe(y.data()[at]) + " at index " + describe(at));
            if (t.options().nonFinite == NonFinitePolicy::Throw) requireFiniteArray("inputs", x.data(), steps * batch * m);
            py::array_t<Scalar> losses({static_cast<py::ssize_t>(steps), static_cast<py::ssize_t>(batch)});
            std::optional<py::array_t<Scalar>> states;
            if (returnStates)
              states.emplace(std::vector<py::ssize_t>{static_cast<py::ssize_t>(steps), static_cast<py::ssize_t>(batch),
                                                      static_cast<py::ssize_t>(k)});
            Scalar* loss = losses.mutable_data();
            const Scalar* input = x.data();
            const std::int64_t* target = y.data();
            for (Index step = 0; step < steps; ++step) {
              for (Index b = 0; b < batch; ++b) {
                const Index at = step * batch + b;
                loss[at] = t.observe(b, Eigen::Map<const Vector<Scalar>>(input + at * m, m), target[at]);
                if (states) Eigen::Map<Vector<Scalar>>(states->mutable_data() + at * k, k) = t.engine(b).state();
              }
              t.endStep();
            }
            if (endSequence) t.endSequence();
            if (states) return py::make_tuple(losses, *states);
            return losses;
          },
          py::arg("inputs"), py::arg("targets"), py::kw_only(), py::arg("return_states") = false,
          py::arg("end_sequence") = false,
          "observe() over inputs (T x B x m) and targets (T x B, int64, -1 unscored) with end_step() after each "
          "batch step; returns the losses (T x B), and the states (T x B x k) with return_states=True.")
      .def(
          "save_checkpoint",
          [](const T& t, const std::string& path, const CopyTask* task, py::handle extra) {
            saveCheckpoint(path, t, task, archiveOf(extra, "extra"));
          },
          py::arg("path"), py::arg("task") = py::none(), py::arg("extra") = py::none(),
          "Writes the whole training state (and a copy task's, and extra arrays) as a snap checkpoint.")
      .def(
          "load_checkpoint",
          [](T& t, const std::string& path, CopyTask* task) { return extraArrays(loadCheckpoint(path, t, task)); },
          py::arg("path"), py::arg("task") = py::none(),
          "Restores a checkpoint (all or nothing); returns its extra arrays as a dict.");
}

/// The engine and its trainer for the three cells of one scalar type: <Engine>_<Cell><bits>
/// and Trainer_<Engine>_<Cell><bits>.
template <template <class> class EngineTemplate, class Scalar>
void bindEngineFamily(py::module_& m, const std::string& engine) {
  const std::string suffix = bits<Scalar>();
  bindEngine<EngineTemplate<RNN<Scalar>>>(m, engine + "_RNN" + suffix);
  bindEngine<EngineTemplate<GRU<Scalar>>>(m, engine + "_GRU" + suffix);
  bindEngine<EngineTemplate<LSTM<Scalar>>>(m, engine + "_LSTM" + suffix);
  bindTrainer<EngineTemplate<RNN<Scalar>>>(m, "Trainer_" + engine + "_RNN" + suffix);
  bindTrainer<EngineTemplate<GRU<Scalar>>>(m, "Trainer_" + engine + "_GRU" + suffix);
  bindTrainer<EngineTemplate<LSTM<Scalar>>>(m, "Trainer_" + engine + "_LSTM" + suffix);
}

}  // namespace snap::python
