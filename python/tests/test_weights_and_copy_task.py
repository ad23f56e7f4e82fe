"""Weights files between snap, NumPy and PyTorch, and a copy-task run from Python that reaches a
stated curriculum length."""

import numpy as np
import pytest

import snap

torch = pytest.importorskip("torch")


def test_saved_weights_are_pytorchs_tensors(work):
    cell = snap.GRU(3, 5, recurrent_density=0.4, seed=2)
    readout = snap.Readout(5, 2, 3)
    cell.save_weights(str(work / "w.npz"), readout)
    with np.load(work / "w.npz") as stored:
        assert bytes(stored["cell"]) == b"gru" and int(stored["version"]) == snap.weights_format_version
        for name, value in cell.tensors().items():
            assert stored[name].dtype == np.float64 and np.array_equal(stored[name], value), name
        assert np.array_equal(stored["mask_hh"], cell.mask_hh)
        assert np.array_equal(stored["readout_weight"], readout.weight)
    info = snap.read_weights_info(str(work / "w.npz"))
    assert info == {"cell": "gru", "input_size": 3, "hidden_size": 5, "gate_rows": 15, "outputs": 2, "masks": True,
                    "dtype": "float64"}
    loaded, loaded_readout = snap.load_cell(str(work / "w.npz"))
    assert type(loaded).__name__ == "GRU64"
    assert np.array_equal(loaded.parameters(), cell.parameters()) and np.array_equal(loaded.mask_hh, cell.mask_hh)
    assert np.array_equal(loaded_readout.parameters(), readout.parameters())


@pytest.mark.parametrize("kind", ["RNN", "GRU", "LSTM"])
def test_a_pytorch_export_runs_as_in_pytorch(kind, work):
    """A file written by NumPy from a torch module (as examples/pytorch/export_torch.py does)
    loads into snap, whose states are PyTorch's; to_torch gives the module back."""
    torch.manual_seed(0)
    module = getattr(torch.nn, kind + "Cell")(4, 6).double()
    arrays = {name: getattr(module, name).detach().numpy() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    np.savez(work / "torch.npz", cell=np.frombuffer(kind.lower().encode(), dtype=np.uint8),
             version=np.array(1, dtype=np.int64), **arrays)
    cell, readout = snap.load_cell(str(work / "torch.npz"))
    assert readout is None and np.array_equal(cell.mask_ih, np.ones((cell.gate_rows, 4)))
    inputs = np.random.default_rng(1).normal(size=(7, 4))
    states = snap.RTRL(cell).run(inputs)
    h = torch.zeros(1, 6, dtype=torch.float64)
    c = torch.zeros(1, 6, dtype=torch.float64)
    for t, x in enumerate(torch.from_numpy(inputs)):
        if kind == "LSTM":
            h, c = module(x[None], (h, c))
            expected = torch.cat([h, c], 1)[0]
        else:
            h = module(x[None], h)
            expected = h[0]
        np.testing.assert_allclose(states[t], expected.detach().numpy(), rtol=0, atol=1e-13)
    back, _ = snap.to_torch(cell)
    assert type(back) is type(module)
    for name, value in module.state_dict().items():
        assert torch.equal(back.state_dict()[name], value), name


def test_float32_file_loads_into_a_float64_cell(work):
    cell32 = snap.LSTM(2, 3, recurrent_density=0.5, seed=4, dtype="float32")
    cell32.save_weights(str(work / "f32.npz"))
    assert snap.read_weights_info(str(work / "f32.npz"))["dtype"] == "float32"
    cell64, _ = snap.load_cell(str(work / "f32.npz"), dtype="float64")
    assert cell64.dtype == np.float64
    assert np.array_equal(cell64.parameters(), cell32.parameters().astype(np.float64))


def test_copy_task_reaches_length_5(work):
    """A sparse GRU (H = 16, recurrent density 0.5, shared masks) trained online with SnAp-2 and
    Adam(0.01), clipped at 1, through the sequence call: L >= 5 within 30000 steps of data (the
    curriculum starts at L = 1 and rises only when the recall loss is below 0.15 bits per step;
    an untrained network scores 1 bit)."""
    task = snap.CopyTask(seed=1)
    cell = snap.GRU(task.input_size, 16, recurrent_density=0.5, mask_sharing="shared", seed=1, dtype="float32")
    readout = snap.Readout(16, task.output_size, 2, dtype="float32")
    trainer = snap.Trainer(cell, readout, snap.Adam(0.01), snap.SnApOptions(2), clip_norm=1.0)
    while task.data_time < 30000:
        sequence = task.next()
        losses = trainer.run(sequence.inputs("float32")[:, None, :], sequence.targets()[:, None], end_sequence=True)
        task.record(sequence, float(losses.sum()) / np.log(2))
    assert task.length >= 5, f"L = {task.length} after {task.data_time} steps"
    assert trainer.updates == task.data_time
