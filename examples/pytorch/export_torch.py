#!/usr/bin/python3
"""Exports a torch.nn.RNNCell(nonlinearity='tanh'), GRUCell or LSTMCell, and an nn.Linear
readout, to a weights file that snap loads (snap::loadWeights, include/snap/io/weights.hpp).

The file is an uncompressed NumPy .npz with PyTorch's own names and layout: weight_ih, weight_hh,
bias_ih, bias_hh (gate blocks stacked in PyTorch's order), optional mask_ih and mask_hh (uint8
0/1), readout_weight and readout_bias, the cell type as uint8 characters (b"gru") and a format
version. Needs Debian's python3-torch and python3-numpy: run it with /usr/bin/python3.

    /usr/bin/python3 examples/pytorch/export_torch.py --cell gru --inputs 3 --hidden 32 --outputs 2 model.npz
    /usr/bin/python3 examples/pytorch/export_torch.py --from checkpoint.pt model.npz

From Python:

    from export_torch import export_weights
    export_weights(cell, readout, "model.npz")
"""

import argparse
import sys

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as missing:
    sys.exit(f"export_torch.py: needs Debian's python3-torch and python3-numpy (run with /usr/bin/python3): {missing}")

FORMAT_VERSION = 1
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def cell_type(cell):
    """The snap name of a PyTorch cell module: 'rnn', 'gru' or 'lstm'."""
    if isinstance(cell, nn.RNNCell):
        if cell.nonlinearity != "tanh":
            raise ValueError("snap's RNN cell is the tanh Elman cell; this RNNCell uses " + cell.nonlinearity)
        return "rnn"
    if isinstance(cell, nn.GRUCell):
        return "gru"
    if isinstance(cell, nn.LSTMCell):
        return "lstm"
    raise TypeError("expected torch.nn.RNNCell, GRUCell or LSTMCell, got " + type(cell).__name__)


def _array(tensor, dtype):
    return tensor.detach().cpu().numpy().astype(dtype, copy=True)


def _float_type(cell):
    """float64 for double-precision modules, float32 for every other floating type."""
    return np.float64 if cell.weight_ih.dtype == torch.float64 else np.float32


def run_torch(cell, readout, inputs):
    """Runs the cell from a zero state over inputs (T x m); returns the states (T x k, LSTM
    [h, c]) and, with a readout, its outputs (T x classes) as float64 arrays."""
    kind = cell_type(cell)
    x = torch.as_tensor(inputs, dtype=cell.weight_ih.dtype)
    h = torch.zeros(1, cell.hidden_size, dtype=x.dtype)
    c = torch.zeros_like(h)
    states, outputs = [], []
    with torch.no_grad():
        for t in range(x.shape[0]):
            if kind == "lstm":
                h, c = cell(x[t : t + 1], (h, c))
                states.append(torch.cat([h, c], dim=1))
            else:
                h = cell(x[t : t + 1], h)
                states.append(h)
            if readout is not None:
                outputs.append(readout(h))
    states = torch.cat(states).double().numpy()
    outputs = torch.cat(outputs).double().numpy() if readout is not None else None
    return states, outputs


def export_weights(cell, readout, path, masks=None, example_steps=0, seed=0):
    """Writes `cell` (and `readout`, an nn.Linear(hidden, classes) or None) to `path`.

    masks: optional (mask_ih, mask_hh) 0/1 arrays of the weights' shapes; the weights must be 0
    where a mask is 0. example_steps > 0 also stores a seeded input sequence with PyTorch's
    states and outputs for it (example_inputs, example_states, example_outputs), which
    examples/load_pytorch.cpp compares with snap's.
    """
    kind = cell_type(cell)
    dtype = _float_type(cell)
    rows = GATES[kind] * cell.hidden_size
    arrays = {
        "cell": np.frombuffer(kind.encode("ascii"), dtype=np.uint8).copy(),
        "version": np.array(FORMAT_VERSION, dtype=np.int64),
        "weight_ih": _array(cell.weight_ih, dtype),
        "weight_hh": _array(cell.weight_hh, dtype),
    }
    for name in ("bias_ih", "bias_hh"):
        bias = getattr(cell, name)
        if bias is None:  # bias=False: snap's cells always have biases, which start at 0 here
            print("export_torch: the cell has no " + name + "; writing zeros", file=sys.stderr)
            arrays[name] = np.zeros(rows, dtype=dtype)
        else:
            arrays[name] = _array(bias, dtype)
    if masks is not None:
        for name, mask in zip(("mask_ih", "mask_hh"), masks):
            mask = np.asarray(mask.detach().cpu() if torch.is_tensor(mask) else mask)
            weight = arrays[name.replace("mask", "weight")]
            if mask.shape != weight.shape or not np.isin(mask, (0, 1)).all():
                raise ValueError(name + " must be 0/1 of shape " + str(weight.shape))
            if np.any(weight[mask == 0] != 0):
                raise ValueError("weight" + name[4:] + " is not 0 everywhere " + name + " is 0")
            arrays[name] = mask.astype(np.uint8)
    if readout is not None:
        if not isinstance(readout, nn.Linear) or readout.in_features != cell.hidden_size:
            raise ValueError("the readout must be an nn.Linear(hidden_size, classes)")
        arrays["readout_weight"] = _array(readout.weight, dtype)
        arrays["readout_bias"] = (
            _array(readout.bias, dtype) if readout.bias is not None else np.zeros(readout.out_features, dtype=dtype)
        )
    if example_steps > 0:
        inputs = np.random.default_rng(seed).standard_normal((example_steps, cell.input_size))
        states, outputs = run_torch(cell, readout, inputs)
        arrays["example_inputs"] = inputs
        arrays["example_states"] = states
        if outputs is not None:
            arrays["example_outputs"] = outputs
    with open(path, "wb") as file:
        np.savez(file, **arrays)  # stored (uncompressed) entries, which snap reads


def _module_from(state, kind=None):
    """A cell module from a module or a state dict (its kind inferred from the shapes)."""
    if isinstance(state, nn.Module):
        return state
    rows, hidden = state["weight_hh"].shape
    inputs = state["weight_ih"].shape[1]
    kind = kind or {1: "rnn", 3: "gru", 4: "lstm"}[rows // hidden]
    module = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[kind](inputs, hidden, bias="bias_ih" in state)
    module = module.to(state["weight_hh"].dtype)
    module.load_state_dict(state)
    return module


def load_checkpoint(path):
    """(cell, readout, masks) from a torch.save file holding a cell module, or a dict with a
    'cell' and optionally 'readout' (modules or state dicts) and 'masks' entries, as
    import_to_torch.py --save writes."""
    saved = torch.load(path)
    if isinstance(saved, dict) and "cell" in saved:
        cell = _module_from(saved["cell"])
        readout = saved.get("readout")
        if readout is not None and not isinstance(readout, nn.Module):
            weight = readout["weight"]
            module = nn.Linear(weight.shape[1], weight.shape[0], bias="bias" in readout).to(weight.dtype)
            module.load_state_dict(readout)
            readout = module
        return cell, readout, saved.get("masks")
    return _module_from(saved), None, None


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", help="the .npz file to write")
    parser.add_argument("--from", dest="checkpoint", help="a torch.save file to export instead of a random model")
    parser.add_argument("--cell", choices=sorted(GATES), default="gru", help="random model: the cell type")
    parser.add_argument("--inputs", type=int, default=3, help="random model: input size m")
    parser.add_argument("--hidden", type=int, default=32, help="random model: hidden size H")
    parser.add_argument("--outputs", type=int, default=2, help="random model: readout classes (0: none)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="random model: precision")
    parser.add_argument("--seed", type=int, default=0, help="seeds the random model and the example inputs")
    parser.add_argument(
        "--example-steps", type=int, default=5, help="also store PyTorch's outputs on an example of this many steps (0: none)"
    )
    args = parser.parse_args()

    masks = None
    if args.checkpoint:
        cell, readout, masks = load_checkpoint(args.checkpoint)
    else:
        torch.manual_seed(args.seed)
        dtype = torch.float64 if args.dtype == "float64" else torch.float32
        cell = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}[args.cell](args.inputs, args.hidden)
        cell = cell.to(dtype)
        readout = nn.Linear(args.hidden, args.outputs).to(dtype) if args.outputs > 0 else None
    export_weights(cell, readout, args.output, masks=masks, example_steps=args.example_steps, seed=args.seed)
    classes = readout.out_features if readout is not None else 0
    print(
        f"export_torch: wrote {args.output}: {cell_type(cell)}, inputs {cell.input_size}, hidden {cell.hidden_size}, "
        f"readout classes {classes}, {_float_type(cell).__name__}"
    )


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, RuntimeError, ImportError) as error:  # a missing file or package, a bad value: no traceback
        sys.exit(f"export_torch.py: {error}")
