"""Batches from Python: an engine of B streams takes and returns (B, n) arrays and equals B
single-stream engines run on the same streams (against PyTorch autograd, through them, in
test_gradients.py), for every engine and on 1 and 2 threads; the trainer's batch step is the
sequence call's."""

import numpy as np
import pytest

import snap

OPTIONS = [snap.RTRLOptions(), snap.SnApOptions(2), snap.UOROOptions(seed=5), snap.BPTTOptions(4), snap.BPTTOptions()]


def options_of_stream(options, b):
    """The options of the single-stream engine that runs stream b: UORO's stream b draws from seed + b."""
    return snap.UOROOptions(seed=options.seed + b) if isinstance(options, snap.UOROOptions) else options


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: type(o).__name__)
@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_a_batched_engine_equals_single_stream_engines(kind, options):
    cell = getattr(snap, kind)(3, 5, recurrent_density=0.5, seed=4)
    batch, steps = 3, 9
    rng = np.random.default_rng(6)
    inputs = rng.uniform(-1, 1, (steps, batch, 3))
    deltas = rng.uniform(-1, 1, (steps, batch, cell.state_size))
    results = []
    for threads in (1, 2):
        engine = snap.engine(cell, options, batch=batch, threads=threads)
        assert engine.batch == batch and engine.threads == threads
        states = engine.run(inputs, deltas)
        assert states.shape == (steps, batch, cell.state_size)
        assert np.array_equal(engine.state, states[-1])
        results.append((states, engine.gradient()))
    assert np.array_equal(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])
    gradient = np.zeros(cell.parameter_count)
    for b in range(batch):
        single = snap.engine(cell, options_of_stream(options, b))
        states = single.run(np.ascontiguousarray(inputs[:, b]), np.ascontiguousarray(deltas[:, b]))
        np.testing.assert_allclose(results[0][0][:, b], states, rtol=0, atol=1e-12)
        gradient += single.gradient()
    np.testing.assert_allclose(results[0][1], gradient, rtol=1e-12, atol=1e-13)


def test_batch_shapes_are_checked_and_a_stream_resets_alone():
    cell = snap.GRU(3, 4, seed=1)
    engine = snap.SnAp(cell, n=1, batch=2)
    with pytest.raises(snap.ShapeError, match=r"input: expected shape \(2, 3\), got \(3,\)"):
        engine.step(np.zeros(3))
    with pytest.raises(snap.ShapeError, match=r"input: expected shape \(2, 3\), got \(3, 2\)"):
        engine.step(np.zeros((3, 2)))
    states = engine.step(np.ones((2, 3)))
    assert states.shape == (2, 4) and np.array_equal(states[0], states[1])
    engine.reset_stream(1)
    assert engine.state[1].tolist() == [0, 0, 0, 0] and np.array_equal(engine.state[0], states[0])
    with pytest.raises(snap.ShapeError, match="stream"):
        engine.reset_stream(2)
    one = snap.SnAp(cell, n=1)
    assert np.array_equal(one.step(np.ones((1, 3))), one.state) and one.state.shape == (4,)


def test_the_trainers_batch_step_is_the_sequence_call():
    def build():
        cell = snap.LSTM(3, 4, recurrent_density=0.5, seed=2)
        readout = snap.Readout(4, 3, 3)
        return cell, snap.Trainer(cell, readout, snap.Adam(0.01), snap.SnApOptions(1), batch=2, threads=2)

    rng = np.random.default_rng(8)
    inputs = rng.uniform(-1, 1, (6, 2, 3))
    targets = rng.integers(-1, 3, (6, 2)).astype(np.int64)
    cell, stepped = build()
    losses = np.zeros((6, 2))
    for t in range(6):
        losses[t] = stepped.observe(inputs[t], targets[t])
        stepped.end_step()
    other, whole = build()
    assert np.array_equal(whole.run(inputs, targets), losses)
    assert np.array_equal(cell.parameters(), other.parameters())
    with pytest.raises(snap.ShapeError, match="target"):
        stepped.observe(inputs[0], np.zeros(3, dtype=np.int64))
