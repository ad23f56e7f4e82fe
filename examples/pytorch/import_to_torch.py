#!/usr/bin/python3
"""Reads a snap weights file (snap::saveWeights, or export_torch.py) into PyTorch modules: a
torch.nn.RNNCell(nonlinearity='tanh'), GRUCell or LSTMCell, and an nn.Linear readout when the
file has one. Needs Debian's python3-torch and python3-numpy: run it with /usr/bin/python3.

    /usr/bin/python3 examples/pytorch/import_to_torch.py model.npz --save model.pt

From Python:

    from import_to_torch import import_weights
    model = import_weights("model.npz")   # model.cell, model.readout, model.masks

A sparse snap model's masked weights are exactly 0 in the modules. To keep them 0 while training
in PyTorch, apply the masks, e.g. torch.nn.utils.prune.custom_from_mask(model.cell,
"weight_hh", model.masks[1]).
"""

import argparse
import sys
from types import SimpleNamespace

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as missing:
    sys.exit(f"import_to_torch.py: needs Debian's python3-torch and python3-numpy (run with /usr/bin/python3): {missing}")

FORMAT_VERSION = 1
MODULES = {"rnn": nn.RNNCell, "gru": nn.GRUCell, "lstm": nn.LSTMCell}
GATES = {"rnn": 1, "gru": 3, "lstm": 4}


def import_weights(path):
    """The modules of a snap weights file: a namespace with cell, readout (or None), masks
    ((mask_ih, mask_hh) as float tensors, or None) and kind ('rnn', 'gru' or 'lstm'). The
    modules take the file's precision (float64 or float32)."""
    with np.load(path) as archive:
        arrays = {name: archive[name] for name in archive.files}
    for name in ("cell", "version", "weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        if name not in arrays:
            raise ValueError(f"{path}: no array '{name}'; not a snap weights file")
    if int(arrays["version"]) != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {int(arrays['version'])}, expected {FORMAT_VERSION}")
    kind = arrays["cell"].tobytes().decode("ascii")
    if kind not in MODULES:
        raise ValueError(f"{path}: cell type '{kind}' has no PyTorch module (rnn, gru or lstm)")
    rows, inputs = arrays["weight_ih"].shape
    hidden = arrays["weight_hh"].shape[1]
    if rows != GATES[kind] * hidden:
        raise ValueError(f"{path}: weight_ih has {rows} rows, expected {GATES[kind]} x {hidden} for a {kind}")
    dtype = torch.float64 if arrays["weight_ih"].dtype == np.float64 else torch.float32

    def tensor(name):
        return torch.from_numpy(np.ascontiguousarray(arrays[name])).to(dtype)

    cell = MODULES[kind](inputs, hidden).to(dtype)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(cell, name).copy_(tensor(name))
    readout = None
    if "readout_weight" in arrays:
        classes = arrays["readout_weight"].shape[0]
        readout = nn.Linear(hidden, classes).to(dtype)
        with torch.no_grad():
            readout.weight.copy_(tensor("readout_weight"))
            readout.bias.copy_(tensor("readout_bias"))
    masks = (tensor("mask_ih"), tensor("mask_hh")) if "mask_ih" in arrays and "mask_hh" in arrays else None
    return SimpleNamespace(cell=cell, readout=readout, masks=masks, kind=kind)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("weights", help="a snap weights file (.npz)")
    parser.add_argument("--save", help="write {'cell', 'readout', 'masks'} with torch.save to this file")
    args = parser.parse_args()
    model = import_weights(args.weights)
    cell = model.cell
    density = ""
    if model.masks is not None:
        density = ", recurrent density {:.3g}".format(float(model.masks[1].mean()))
    classes = model.readout.out_features if model.readout is not None else 0
    print(
        f"import_to_torch: {model.kind}, inputs {cell.input_size}, hidden {cell.hidden_size}, "
        f"readout classes {classes}, {cell.weight_ih.dtype}{density}"
    )
    if args.save:
        torch.save({"cell": cell, "readout": model.readout, "masks": model.masks}, args.save)
        print("import_to_torch: saved " + args.save)


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, RuntimeError, ImportError) as error:  # a missing file or package, a bad value: no traceback
        sys.exit(f"import_to_torch.py: {error}")
