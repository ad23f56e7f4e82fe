"""Gradients through the Python API against PyTorch autograd on the same weights (float64):
the exact engines (RTRL, BPTT, SnAp-n at large n) to 1e-12, truncated BPTT against a detached
graph, and SnAp-1/2 against the definition on an independently computed pattern."""

import numpy as np
import pytest

import snap
from conftest import random_inputs

torch = pytest.importorskip("torch")

CELLS = ["RNN", "GRU", "LSTM"]
NAMES = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")


def make_cell(kind, seed=3):
    """A small sparse cell: m = 3, H = 5, recurrent density 0.5, input density 0.7."""
    return getattr(snap, kind)(3, 5, input_density=0.7, recurrent_density=0.5, seed=seed)


def torch_reference(cell, inputs, deltas, window=None):
    """States and dL/d(tensors) from PyTorch for L = sum_t deltas[t] . s_t, the state detached
    at every window start when `window` is given (truncated BPTT)."""
    module, _ = snap.to_torch(cell)
    lstm = isinstance(module, torch.nn.LSTMCell)
    h = torch.zeros(1, cell.hidden_size, dtype=torch.float64)
    c = torch.zeros(1, cell.hidden_size, dtype=torch.float64)
    loss, states = 0, []
    for t in range(len(inputs)):
        if window is not None and t > 0 and t % window == 0:
            h, c = h.detach(), c.detach()
        x = torch.from_numpy(inputs[t]).unsqueeze(0)
        if lstm:
            h, c = module(x, (h, c))
            s = torch.cat([h, c], 1)[0]
        else:
            h = module(x, h)
            s = h[0]
        loss = loss + (s * torch.from_numpy(deltas[t])).sum()
        states.append(s.detach().numpy().copy())
    loss.backward()
    return np.array(states), {name: getattr(module, name).grad.numpy() for name in NAMES}


def assert_gradient(cell, gradient, expected, tolerance=1e-12):
    """snap's θ-ordered gradient equals PyTorch's tensors' gradients at the unmasked positions."""
    tensors = cell.unflatten(gradient)
    masks = {"weight_ih": cell.mask_ih, "weight_hh": cell.mask_hh}
    for name in NAMES:
        want = expected[name] * masks.get(name, 1.0)
        scale = max(1.0, float(np.abs(want).max()))
        np.testing.assert_allclose(tensors[name], want, rtol=0, atol=tolerance * scale, err_msg=name)


def problem(cell, steps=8, seed=11):
    inputs = random_inputs(steps, cell.input_size, seed)
    deltas = random_inputs(steps, cell.state_size, seed + 1)
    return inputs, deltas


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("engine", ["rtrl", "bptt", "bptt-window-longer", "snap-large-n"])
def test_exact_engine_matches_pytorch(kind, engine):
    cell = make_cell(kind)
    inputs, deltas = problem(cell)
    chosen = {
        "rtrl": lambda: snap.RTRL(cell),
        "bptt": lambda: snap.BPTT(cell),
        "bptt-window-longer": lambda: snap.BPTT(cell, window=len(inputs) + 3),
        "snap-large-n": lambda: snap.SnAp(cell, n=3 * cell.state_size),
    }[engine]()
    states, expected = torch_reference(cell, inputs, deltas)
    got = chosen.run(inputs, deltas)
    np.testing.assert_allclose(got, states, rtol=0, atol=1e-13)
    assert_gradient(cell, chosen.gradient(), expected)


@pytest.mark.parametrize("kind", CELLS)
def test_per_step_calls_equal_the_sequence_call(kind):
    cell = make_cell(kind)
    inputs, deltas = problem(cell)
    stepped, whole = snap.RTRL(cell), snap.RTRL(cell)
    for x, d in zip(inputs, deltas):
        state = stepped.step(x)
        stepped.accumulate(d)
    whole.run(inputs, deltas)
    assert np.array_equal(state, whole.state)
    assert np.array_equal(stepped.gradient(), whole.gradient())


@pytest.mark.parametrize("kind", CELLS)
def test_truncated_bptt_matches_a_detached_graph(kind):
    cell = make_cell(kind)
    inputs, deltas = problem(cell, steps=10)
    states, expected = torch_reference(cell, inputs, deltas, window=3)
    engine = snap.BPTT(cell, window=3)
    np.testing.assert_allclose(engine.run(inputs, deltas), states, rtol=0, atol=1e-13)
    assert_gradient(cell, engine.gradient(), expected)


def parameter_positions(cell):
    """(tensor name, flat index) of each θ entry, found through unflatten of unit vectors."""
    positions = []
    for j in range(cell.parameter_count):
        unit = np.zeros(cell.parameter_count)
        unit[j] = 1.0
        tensors = cell.unflatten(unit)
        [(name, index)] = [(n, int(np.flatnonzero(tensors[n])[0])) for n in NAMES if tensors[n].any()]
        positions.append((name, index))
    return positions


def jacobians(cell, x, state):
    """D = ds'/ds (k x k) and I = ds'/dθ (k x p) of one step, from PyTorch."""
    module, _ = snap.to_torch(cell)
    lstm = isinstance(module, torch.nn.LSTMCell)
    H = cell.hidden_size
    tensors = [getattr(module, name).detach().clone() for name in NAMES]

    def step(s, *weights):
        xt = torch.from_numpy(x).unsqueeze(0)
        if lstm:
            gates = xt @ weights[0].T + weights[2] + s[:H].unsqueeze(0) @ weights[1].T + weights[3]
            i, f, g, o = gates[0].chunk(4)
            c = torch.sigmoid(f) * s[H:] + torch.sigmoid(i) * torch.tanh(g)
            return torch.cat([torch.sigmoid(o) * torch.tanh(c), c])
        if isinstance(module, torch.nn.GRUCell):
            a = xt @ weights[0].T + weights[2]
            b = s.unsqueeze(0) @ weights[1].T + weights[3]
            r = torch.sigmoid(a[0, :H] + b[0, :H])
            z = torch.sigmoid(a[0, H:2 * H] + b[0, H:2 * H])
            n = torch.tanh(a[0, 2 * H:] + r * b[0, 2 * H:])
            return (1 - z) * n + z * s
        return torch.tanh(xt @ weights[0].T + weights[2] + s.unsqueeze(0) @ weights[1].T + weights[3])[0]

    s = torch.from_numpy(state)
    jac = torch.autograd.functional.jacobian(step, (s, *tensors))
    D = jac[0].numpy()
    flat = {name: jac[1 + i].reshape(cell.state_size, -1).numpy() for i, name in enumerate(NAMES)}
    I = np.stack([flat[name][:, index] for name, index in parameter_positions(cell)], axis=1)
    return D, I


def structural_pattern(D, I, n):
    """M_n from the structure of one step's Jacobians (random weights: no accidental zeros):
    the entries of J after n steps from zero, J_1 = I, J_{i+1} = I + D J_i."""
    reach = I != 0
    for _ in range(n - 1):
        reach = (I != 0) | ((np.abs(D) @ reach.astype(float)) != 0)
    return reach


@pytest.mark.parametrize("kind", CELLS)
@pytest.mark.parametrize("n", [1, 2])
def test_snap_follows_its_definition_on_the_pattern(kind, n):
    cell = make_cell(kind)
    inputs, deltas = problem(cell, steps=6)
    engine = snap.SnAp(cell, n=n)
    # The structure from a step at a random state (at s = 0 the weight_hh columns of I vanish).
    D, I = jacobians(cell, inputs[0], random_inputs(1, cell.state_size, 5)[0])
    state = np.zeros(cell.state_size)
    pattern = structural_pattern(D, I, n)
    assert np.array_equal(engine.pattern(), pattern)
    assert engine.kept_entries == pattern.sum()
    influence = np.zeros((cell.state_size, cell.parameter_count))
    gradient = np.zeros(cell.parameter_count)
    for x, d in zip(inputs, deltas):
        D, I = jacobians(cell, x, state)
        influence = pattern * (I + D @ influence)
        gradient += influence.T @ d
        state = cell.forward(x, state)
        np.testing.assert_array_equal(engine.step(x), state)
        engine.accumulate(d)
    np.testing.assert_allclose(engine.gradient(), gradient, rtol=0, atol=1e-12 * max(1, np.abs(gradient).max()))
    np.testing.assert_allclose(engine.influence(), influence, rtol=0, atol=1e-12 * max(1, np.abs(influence).max()))


@pytest.mark.parametrize("kind", CELLS)
def test_snap_at_large_n_is_rtrl(kind):
    cell = make_cell(kind)
    inputs, deltas = problem(cell)
    rtrl, full = snap.RTRL(cell), snap.SnAp(cell, n=3 * cell.state_size)
    assert full.pattern().all()
    rtrl.run(inputs, deltas)
    full.run(inputs, deltas)
    np.testing.assert_allclose(full.gradient(), rtrl.gradient(), rtol=0, atol=1e-13)
    np.testing.assert_allclose(full.influence(), rtrl.influence(), rtol=0, atol=1e-13)


def test_float32_gradient_is_close_to_float64():
    cell64 = make_cell("GRU")
    cell32 = snap.GRU(3, 5, input_density=0.7, recurrent_density=0.5, seed=3, dtype="float32")
    cell32.set_weights(*(t.astype(np.float32) for t in cell64.tensors().values()))
    inputs, deltas = problem(cell64)
    e64, e32 = snap.RTRL(cell64), snap.RTRL(cell32)
    e64.run(inputs, deltas)
    e32.run(inputs.astype(np.float32), deltas.astype(np.float32))
    assert e32.gradient().dtype == np.float32
    np.testing.assert_allclose(e32.gradient(), e64.gradient(), rtol=0, atol=1e-4)


def test_uoro_is_seeded_and_unbiased_in_the_mean():
    """UORO's estimate is exact in expectation (docs/math.md §5): the mean over seeds of its
    one-step gradient is RTRL's within the sampling error, and a seed repeats exactly."""
    cell = make_cell("RNN")
    inputs, deltas = problem(cell, steps=3)
    exact = snap.RTRL(cell)
    exact.run(inputs, deltas)
    runs = []
    for seed in range(400):
        engine = snap.UORO(cell, seed=seed)
        engine.run(inputs, deltas)
        runs.append(engine.gradient())
    again = snap.UORO(cell, seed=0)
    again.run(inputs, deltas)
    assert np.array_equal(again.gradient(), runs[0])
    runs = np.array(runs)
    error = np.abs(runs.mean(0) - exact.gradient())
    assert np.all(error <= 5 * runs.std(0) / np.sqrt(len(runs)) + 1e-12)
