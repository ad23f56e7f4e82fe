"""snap's exceptions in Python: each C++ type maps to its Python class with snap's message, and
no argument from Python (wrong dtype, shape, None, a non-contiguous view, a list) can crash the
interpreter or change anything."""

import gc

import numpy as np
import pytest

import snap


def test_the_exception_classes_keep_snaps_hierarchy():
    for name, builtin in [("ShapeError", ValueError), ("ValueError", ValueError), ("UsageError", RuntimeError),
                          ("NonFiniteError", ValueError), ("FormatError", ValueError)]:
        kind = getattr(snap, name)
        assert issubclass(kind, snap.Error) and issubclass(kind, builtin), name
        assert kind.__module__ == "snap" and kind.__name__ == name
    assert issubclass(snap.Error, Exception) and not issubclass(snap.Error, ValueError)
    assert snap.ValueError is not ValueError


@pytest.fixture
def gru():
    return snap.GRU(3, 4, recurrent_density=0.5, seed=1)


def test_shape_error(gru):
    engine = snap.RTRL(gru)
    with pytest.raises(snap.ShapeError, match=r"^snap: input: expected length 3, got 4$"):
        engine.step(np.zeros(4))
    assert engine.steps == 0


def test_value_error():
    with pytest.raises(snap.ValueError, match=r"^snap: recurrentDensity: expected a density in \(0, 1\], got 1.5$"):
        snap.GRU(3, 4, recurrent_density=1.5)
    with pytest.raises(snap.ValueError, match="learningRate"):
        snap.Trainer(snap.GRU(3, 4), snap.Readout(4, 2), snap.SGD(-1.0), snap.RTRLOptions())
    with pytest.raises(snap.ValueError, match="mask_sharing"):
        snap.GRU(3, 4, mask_sharing="sometimes")


def test_usage_error(gru):
    with pytest.raises(snap.UsageError, match=r"^snap: accumulate: expected a step\(\) since the last resetState\(\), got no step$"):
        snap.RTRL(gru).accumulate(np.zeros(4))
    with pytest.raises(RuntimeError, match="BPTTOptions::window"):
        snap.Trainer(gru, snap.Readout(4, 2), snap.Adam(), snap.BPTTOptions())


def test_non_finite_error_changes_nothing(gru):
    engine = snap.SnAp(gru, n=2)
    engine.step(np.ones(3))
    before = engine.state
    with pytest.raises(snap.NonFiniteError, match=r"^snap: input: expected finite values, got nan at index 1$"):
        engine.step(np.array([0.0, np.nan, 0.0]))
    assert np.array_equal(engine.state, before) and engine.steps == 1


def test_format_error(gru, work):
    with pytest.raises(snap.FormatError):
        gru.load_weights(str(work / "missing.npz"))
    (work / "garbage.npz").write_bytes(b"not a zip file at all")
    with pytest.raises(snap.FormatError):
        gru.load_weights(str(work / "garbage.npz"))
    gru.save_weights(str(work / "weights.npz"))
    trainer = snap.Trainer(gru, snap.Readout(4, 2), snap.Adam(), snap.RTRLOptions())
    with pytest.raises(snap.FormatError, match="snap checkpoint"):
        trainer.load_checkpoint(str(work / "weights.npz"))
    with pytest.raises(snap.FormatError, match="'gru'"):
        snap.LSTM(3, 4).load_weights(str(work / "weights.npz"))


def test_every_snap_error_is_caught_as_snap_error(gru):
    for call in [lambda: snap.RTRL(gru).step(np.zeros(2)), lambda: snap.GRU(0, 4),
                 lambda: snap.RTRL(gru).accumulate(np.zeros(4)), lambda: snap.RTRL(gru).step(np.full(3, np.inf))]:
        with pytest.raises(snap.Error):
            call()


BAD_VECTORS = [
    (None, TypeError, "got None"),
    ([0.0, 0.0, 0.0], TypeError, "got an object of type list"),
    (np.zeros(3, dtype=np.float32), TypeError, "got an array of float32"),
    (np.zeros(3, dtype=np.int64), TypeError, "got an array of int64"),
    (np.zeros(3, dtype=">f8"), TypeError, "float64"),
    (np.zeros((2, 3)), snap.ShapeError, r"expected shape .*, got \(2, 3\)"),
    (np.zeros(()), snap.ShapeError, r"got \(\)"),
    (np.zeros(6)[::2], snap.ValueError, "C-contiguous"),
    ("abc", TypeError, "got an object of type str"),
]


@pytest.mark.parametrize("value, error, message", BAD_VECTORS)
def test_bad_vectors_raise_and_change_nothing(gru, value, error, message):
    engine = snap.RTRL(gru)
    engine.step(np.ones(3))
    state, gradient = engine.state, engine.gradient()
    calls = [engine.step, engine.accumulate, gru.set_parameters]
    if value is not None:  # reset_state(None) is the zero state
        calls.append(engine.reset_state)
    for call in calls:
        with pytest.raises(error, match=message):
            call(value)
    readout = snap.Readout(4, 2)
    with pytest.raises(error, match=message):
        readout.loss(value, 0)
    assert np.array_equal(engine.state, state) and np.array_equal(engine.gradient(), gradient)


def test_bad_matrices_and_sequences_raise(gru):
    weights = gru.tensors()
    with pytest.raises(TypeError, match="weight_ih"):
        gru.set_weights(weights["weight_ih"].astype(np.float32), weights["weight_hh"], weights["bias_ih"], weights["bias_hh"])
    with pytest.raises(snap.ValueError, match="weight_hh.*C-contiguous"):
        gru.set_weights(weights["weight_ih"], np.asfortranarray(weights["weight_hh"]), weights["bias_ih"], weights["bias_hh"])
    with pytest.raises(snap.ShapeError, match="weight_ih"):
        gru.set_weights(weights["weight_ih"][:, :2].copy(), weights["weight_hh"], weights["bias_ih"], weights["bias_hh"])
    with pytest.raises(snap.ValueError, match="masked position"):
        gru.set_weights(np.ones_like(weights["weight_ih"]), np.ones_like(weights["weight_hh"]), weights["bias_ih"],
                        weights["bias_hh"])
    assert all(np.array_equal(gru.tensors()[k], v) for k, v in weights.items())
    engine = snap.RTRL(gru)
    with pytest.raises(snap.ShapeError, match=r"inputs: expected shape \(any, 3\), got \(5, 2\)"):
        engine.run(np.zeros((5, 2)))
    with pytest.raises(snap.ShapeError, match=r"state gradients: expected shape \(5, 4\)"):
        engine.run(np.zeros((5, 3)), np.zeros((4, 4)))
    assert engine.steps == 0


def test_trainer_sequence_call_checks_everything_first(gru):
    readout = snap.Readout(4, 2)
    trainer = snap.Trainer(gru, readout, snap.Adam(), snap.RTRLOptions(), batch=2)
    parameters = gru.parameters()
    inputs = np.zeros((6, 2, 3))
    targets = np.zeros((6, 2), dtype=np.int64)
    with pytest.raises(snap.ShapeError, match=r"inputs: expected shape \(any, 2, 3\), got \(6, 1, 3\)"):
        trainer.run(np.zeros((6, 1, 3)), targets)
    with pytest.raises(TypeError, match="targets.*int64.*int32"):
        trainer.run(inputs, targets.astype(np.int32))
    with pytest.raises(snap.ShapeError, match="targets"):
        trainer.run(inputs, targets[:5].copy())
    bad = targets.copy()
    bad[4, 1] = 2
    with pytest.raises(snap.ValueError, match=r"targets: expected classes in \[0, 2\) or -1 \(unscored\), got 2 at index 9"):
        trainer.run(inputs, bad)
    nan = inputs.copy()
    nan[5, 0, 2] = np.nan
    with pytest.raises(snap.NonFiniteError):
        trainer.run(nan, targets)
    with pytest.raises(TypeError, match="targets"):
        trainer.run(inputs, None)
    assert trainer.updates == 0 and np.array_equal(gru.parameters(), parameters)
    assert not trainer.state(0).any()
    with pytest.raises(snap.ShapeError, match="stream"):
        trainer.state(2)


def test_wrong_types_of_objects_raise_type_error(gru):
    with pytest.raises(TypeError, match="optimizer"):
        snap.Trainer(gru, snap.Readout(4, 2), "adam", snap.RTRLOptions())
    with pytest.raises(TypeError, match="engine"):
        snap.Trainer(gru, snap.Readout(4, 2), snap.Adam(), "snap")
    with pytest.raises(TypeError):
        snap.Trainer(gru, snap.Readout(4, 2, dtype="float32"), snap.Adam(), snap.RTRLOptions())
    with pytest.raises(TypeError, match="dtype"):
        snap.GRU(3, 4, dtype="int32")
    with pytest.raises(TypeError, match="cell"):
        snap.RTRL(np.zeros(3))
    with pytest.raises(TypeError):
        snap.GRU(3.5, 4)
    with pytest.raises(TypeError):
        snap.GRU(None, 4)
    with pytest.raises(snap.ShapeError, match="hiddenSize"):
        snap.GRU(3, -1)


def test_engines_and_trainers_keep_their_cell_alive():
    cell = snap.LSTM(2, 3, seed=5)
    readout = snap.Readout(3, 2)
    engine = snap.UORO(cell)
    trainer = snap.Trainer(cell, readout, snap.SGD(), snap.UOROOptions())
    expected = cell.forward(np.ones(2), np.zeros(6))
    del cell, readout
    gc.collect()
    assert np.array_equal(engine.step(np.ones(2)), expected)
    trainer.step(np.ones(2), 1)
    assert trainer.updates == 1


def test_returned_arrays_are_copies(gru):
    engine = snap.RTRL(gru)
    state = engine.step(np.ones(3))
    weight = gru.weight_hh
    weight[:] = 7.0
    state[:] = 7.0
    assert not (gru.weight_hh == 7.0).any() and not (engine.state == 7.0).any()
