#pragma once
// The bindings of one engine type over the three cells: the engine itself (per-step and
// sequence calls) and the Trainer that drives it (rtrl32.cpp … bptt64.cpp instantiate them).

#include "common.hpp"

#include <optional>
#include <vector>

namespace snap::python {

/// Throws unless every value of a NumPy array is finite (the sequence calls check their inputs
/// before the first step, so that a refused call changes nothing).
template <class Scalar>
void requireFiniteArray(const char* argument, const Scalar* data, Index size) {
  detail::requireFinite(argument, Eigen::Map<const Vector<Scalar>>(data, size));
}

/// Binds EngineType as snap._snap.<name>: the Engine concept (step, accumulate, gradient,
/// reset_gradient, reset_state, reset_stream), the engine's own inspections, and run(), a whole
/// sequence. B streams' values are (B, rows) arrays (vectors for B = 1).
template <class EngineType>
void bindEngine(py::module_& m, const std::string& name) {
  using E = EngineType;
  using Scalar = typename E::Scalar;
  using CellType = typename E::CellType;
  py::class_<E> engine(m, name.c_str());
  engine
      .def(py::init([](const CellType& cell, const typename E::Options& options, Index batch, int threads) {
             return E(cell, options, Batch{.streams = batch, .threads = threads});
           }),
           py::arg("cell"), py::arg("options"), py::kw_only(), py::arg("batch") = 1, py::arg("threads") = 1,
           py::keep_alive<1, 2>())
      .def_property_readonly("dtype", [](const E&) { return py::dtype::of<Scalar>(); })
      .def_property_readonly("cell", &E::cell, py::return_value_policy::reference_internal)
      .def_property_readonly("options", &E::options)
      .def_property_readonly("batch", &E::streams, "B, the streams stepped together.")
      .def_property_readonly("threads", [](const E& e) { return e.batch().threads; })
      .def_property_readonly("steps", &E::steps)
      .def_property_readonly("bytes", &E::bytes)
      .def_property_readonly("state", [](const E& e) { return copyBatch(e.state()); }, "s_t: (k,) or (B, k) (a copy).")
      .def(
          "step",
          [](E& e, py::handle input) {
            return copyBatch(e.step(batchArgument<Scalar>(input, "input", e.cell().inputSize(), e.streams())));
          },
          py::arg("input"), "Advances with x_t, (m,) or (B, m); returns s_t, (k,) or (B, k) (a copy).")
      .def(
          "accumulate",
          [](E& e, py::handle delta) {
            e.accumulate(batchArgument<Scalar>(delta, "state gradient", e.cell().stateSize(), e.streams()));
          },
          py::arg("state_gradient"), "Adds the gradient of delta_t = dL_t/ds_t, (k,) or (B, k), summed over streams.")
      .def("gradient", [](E& e) { return copyVector(e.gradient()); },
           "The accumulated gradient, theta-ordered, summed over the streams (a copy).")
      .def("reset_gradient", &E::resetGradient)
      .def(
          "reset_state",
          [](E& e, py::handle initial) {
            if (initial.is_none()) e.resetState();
            else e.resetState(batchArgument<Scalar>(initial, "initial state", e.cell().stateSize(), e.streams()));
          },
          py::arg("initial") = py::none(), "New sequences on every stream from zero (or from `initial`).")
      .def("reset_stream", &E::resetStream, py::arg("stream"), "A new sequence on stream b alone.")
      .def(
          "run",
          [](E& e, py::handle inputs, py::handle deltas) {
            const Index m = e.cell().inputSize(), k = e.cell().stateSize(), batch = e.streams();
            const bool single = batch == 1 && py::isinstance<py::array>(inputs) &&
                                py::reinterpret_borrow<py::array>(inputs).ndim() == 2;
            const auto x = single ? arrayArgument<Scalar>(inputs, "inputs", {-1, m})
                                  : arrayArgument<Scalar>(inputs, "inputs", {-1, batch, m});
            const Index steps = static_cast<Index>(x.shape(0));
            const Scalar* d = nullptr;
            if (!deltas.is_none())
              d = (single ? arrayArgument<Scalar>(deltas, "state gradients", {steps, k})
                          : arrayArgument<Scalar>(deltas, "state gradients", {steps, batch, k}))
                      .data();
            requireFiniteArray("inputs", x.data(), steps * batch * m);
            if (d != nullptr) requireFiniteArray("state gradients", d, steps * batch * k);
            std::vector<py::ssize_t> shape{static_cast<py::ssize_t>(steps), static_cast<py::ssize_t>(batch),
                                           static_cast<py::ssize_t>(k)};
            if (single) shape.erase(shape.begin() + 1);
            py::array_t<Scalar> states(shape);
            Scalar* out = states.mutable_data();
            for (Index t = 0; t < steps; ++t) {
              const Matrix<Scalar>& s = e.step(Eigen::Map<const Matrix<Scalar>>(x.data() + t * batch * m, m, batch));
              Eigen::Map<Matrix<Scalar>>(out + t * batch * k, k, batch) = s;
              if (d != nullptr) e.accumulate(Eigen::Map<const Matrix<Scalar>>(d + t * batch * k, k, batch));
            }
            return states;
          },
          py::arg("inputs"), py::arg("state_gradients") = py::none(),
          "Steps through inputs (T x m, or T x B x m), accumulating state_gradients (T x k, or T x B x k) when "
          "given; returns the states (T x k, or T x B x k).");
  if constexpr (requires(E& e) { e.flush(); }) engine.def("flush", &E::flush);
  if constexpr (requires(const E& e) { e.workspaceBytes(); })
    engine.def_property_readonly("workspace_bytes", &E::workspaceBytes);
  if constexpr (requires(E& e) { e.influence().rows(); })  // RTRL: J_t, k x p
    engine.def("influence", [](E& e) { return copyMatrix(e.influence()); },
               "J_t of every stream (B·k x p: stream b in rows b·k to (b+1)·k - 1; a copy).");
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
    engine.def("state_estimate", [](const E& e) { return copyBatch(e.stateEstimate()); }, "s~: (k,) or (B, k).");
    engine.def("parameter_estimate", [](const E& e) { return copyBatch(e.parameterEstimate()); },
               "theta~: (p,) or (B, p).");
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
      : Trainer<EngineType>(cell, readout, optimizer, options, engineOptions), outputs(readout.outputs()),
        targets(static_cast<std::size_t>(options.batch), -1) {}
  Index outputs;               ///< the readout's classes
  std::vector<Index> targets;  ///< one batch step's targets, converted from int64 (sized once)
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
                       const typename EngineType::Options& engineOptions, Index batch, int threads,
                       const std::string& schedule, Index updateEvery, double clipNorm, const std::string& nonFinite) {
             return std::make_unique<T>(cell, readout, optimizerArgument(optimizer),
                                        trainerOptions(batch, threads, schedule, updateEvery, clipNorm, nonFinite),
                                        engineOptions);
           }),
           py::arg("cell"), py::arg("readout"), py::arg("optimizer"), py::arg("engine"), py::kw_only(),
           py::arg("batch") = defaults.batch, py::arg("threads") = defaults.threads, py::arg("schedule") = "online",
           py::arg("update_every") = defaults.updateEvery,
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
          [](T& t, py::handle input, py::handle target) -> py::object {
            const Index batch = t.batch(), m = t.engine().cell().inputSize();
            const auto inputs = batchArgument<Scalar>(input, "input", m, batch);
            if (batch == 1 && py::isinstance<py::int_>(target)) {
              const Index one = py::cast<Index>(target);
              return py::float_(static_cast<double>(t.observe(inputs, {&one, 1})));
            }
            const auto targets = arrayArgument<std::int64_t>(target, "target", {batch});
            t.targets.assign(targets.data(), targets.data() + batch);
            t.observe(inputs, t.targets);
            return copyVector(t.losses());
          },
          py::arg("input"), py::arg("target"),
          "One step of the B streams: input (m,) and an int target for B = 1, or (B, m) and (B,) int64 targets "
          "(-1: unscored); returns the loss in nats (a float), or the B losses.")
      .def("end_step", &T::endStep, "Ends a batch step; True when it applied an update.")
      .def(
          "step",
          [](T& t, py::handle input, Index target) {
            return t.step(vectorArgument<Scalar>(input, "input"), target);
          },
          py::arg("input"), py::arg("target"), "B = 1: observe(input, target) then end_step(); the loss in nats.")
      .def("reset_stream", &T::resetStream, py::arg("stream"))
      .def("end_sequence", &T::endSequence)
      .def("update", &T::update)
      .def(
          "state",
          [](const T& t, Index stream) {
            if (stream < 0 || stream >= t.batch())
              detail::fail<ShapeError>("stream", "an index in [0, " + describe(t.batch()) + ")", stream);
            return copyVector(t.engine().state().col(stream));
          },
          py::arg("stream") = 0, "The state of stream b (a copy).")
      .def(
          "gradient", [](T& t) { return copyVector(t.engine().gradient()); },
          "The gradient accumulated since the last update, summed over the streams (a copy).")
      .def(
          "run",
          [](T& t, py::handle inputs, py::handle targets, bool returnStates, bool endSequence) -> py::object {
            const Index batch = t.batch(), m = t.engine().cell().inputSize(), k = t.engine().cell().stateSize();
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
            for (Index step = 0; step < steps; ++step) {
              t.targets.assign(y.data() + step * batch, y.data() + (step + 1) * batch);
              t.observe(Eigen::Map<const Matrix<Scalar>>(x.data() + step * batch * m, m, batch), t.targets);
              Eigen::Map<Vector<Scalar>>(loss + step * batch, batch) = t.losses();
              if (states) Eigen::Map<Matrix<Scalar>>(states->mutable_data() + step * batch * k, k, batch) = t.engine().state();
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
