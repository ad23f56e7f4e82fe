#!/usr/bin/python3
"""PyTorch round trip (docs/cells.md): random torch.nn.RNNCell / GRUCell / LSTMCell and nn.Linear
readouts, in double precision, are exported with examples/pytorch/export_torch.py; snap
(tests/io/torch_runner.cpp) loads each and runs the same input sequence. States and readout
outputs must agree to 1e-6, and so must the gradients of the summed cross-entropy (BPTT in snap,
autograd in PyTorch). The weights snap saves again must import back into PyTorch
(examples/pytorch/import_to_torch.py) exactly. Exits 77 (skipped) without PyTorch.

    test_pytorch_roundtrip.py --runner build/tests/torch_runner --scripts examples/pytorch --work DIR
"""

import argparse
import os
import subprocess
import sys

SKIPPED = 77
TOLERANCE = 1e-6

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as error:  # python3-torch or python3-numpy missing
    print(f"SKIPPED: PyTorch is not available to {sys.executable} ({error}); "
          "install Debian's python3-torch and python3-numpy to run this test")
    sys.exit(SKIPPED)


def torch_reference(cell, readout, inputs, targets, kind):
    """States, readout outputs and gradients of the summed cross-entropy, from PyTorch."""
    cell.zero_grad()
    readout.zero_grad()
    x = torch.from_numpy(inputs)
    h = torch.zeros(1, cell.hidden_size, dtype=torch.float64)
    c = torch.zeros_like(h)
    states, outputs, loss = [], [], 0
    for t in range(x.shape[0]):
        if kind == "lstm":
            h, c = cell(x[t : t + 1], (h, c))
            states.append(torch.cat([h, c], dim=1))
        else:
            h = cell(x[t : t + 1], h)
            states.append(h)
        logits = readout(h)
        outputs.append(logits)
        loss = loss + nn.functional.cross_entropy(logits, torch.tensor([int(targets[t])]), reduction="sum")
    loss.backward()
    gradients = {f"grad_{name}": getattr(cell, name).grad.numpy() for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
    gradients["grad_readout_weight"] = readout.weight.grad.numpy()
    gradients["grad_readout_bias"] = readout.bias.grad.numpy()
    return torch.cat(states).detach().numpy(), torch.cat(outputs).detach().numpy(), gradients


def check(what, got, expected, failures, tolerance=TOLERANCE):
    error = float(np.max(np.abs(got - expected))) if got.size else 0.0
    scale = max(1.0, float(np.max(np.abs(expected))) if expected.size else 1.0)
    ok = got.shape == expected.shape and error <= tolerance * scale
    print(f"  {what:22s} max |snap - torch| = {error:.2e}  {'ok' if ok else 'FAILED'}")
    if not ok:
        failures.append(what)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runner", required=True)
    parser.add_argument("--scripts", required=True)
    parser.add_argument("--work", required=True)
    args = parser.parse_args()
    sys.path.insert(0, args.scripts)
    from export_torch import export_weights
    from import_to_torch import import_weights

    os.makedirs(args.work, exist_ok=True)
    modules = {"rnn": lambda m, h: nn.RNNCell(m, h, nonlinearity="tanh"), "gru": nn.GRUCell, "lstm": nn.LSTMCell}
    inputs_size, hidden, classes, steps = 3, 6, 4, 20
    failures = []
    cases = [(kind, False, torch.float64) for kind in ("rnn", "gru", "lstm")]
    cases += [("gru", True, torch.float64), ("lstm", False, torch.float32)]
    for case, (kind, masked, dtype) in enumerate(cases):
        name = f"{kind}{'_masked' if masked else ''}_{str(dtype).split('.')[-1]}"
        print(f"{name}:")
        torch.manual_seed(100 + case)
        cell = modules[kind](inputs_size, hidden).to(dtype)
        readout = nn.Linear(hidden, classes).to(dtype)
        masks = None
        if masked:  # a sparse model: masked weights are 0, and snap must keep its masks
            generator = torch.Generator().manual_seed(case)
            masks = tuple((torch.rand(w.shape, generator=generator) < 0.4).to(dtype) for w in (cell.weight_ih, cell.weight_hh))
            with torch.no_grad():
                cell.weight_ih.mul_(masks[0])
                cell.weight_hh.mul_(masks[1])
        weights = os.path.join(args.work, name + ".npz")
        sequence = os.path.join(args.work, name + "_sequence.npz")
        results = os.path.join(args.work, name + "_results.npz")
        resaved = os.path.join(args.work, name + "_resaved.npz")
        export_weights(cell, readout, weights, masks=masks)
        rng = np.random.default_rng(case)
        inputs = rng.standard_normal((steps, inputs_size))
        targets = rng.integers(0, classes, steps).astype(np.int64)
        np.savez(sequence, inputs=inputs, targets=targets)
        subprocess.run([args.runner, weights, sequence, results, resaved], check=True)
        with np.load(results) as archive:
            snap_results = {key: archive[key] for key in archive.files}

        # The comparison runs in double: a float32 model is compared on its float64 copy.
        cell64, readout64 = cell.double(), readout.double()
        states, outputs, gradients = torch_reference(cell64, readout64, inputs, targets, kind)
        check("states", snap_results["states"], states, failures)
        check("readout outputs", snap_results["outputs"], outputs, failures)
        for key, expected in gradients.items():
            if masks is not None and key in ("grad_weight_ih", "grad_weight_hh"):
                expected = expected * masks[0 if key.endswith("ih") else 1].double().numpy()  # masked: not parameters
            check(key.replace("grad_", "gradient "), snap_results[key], expected, failures)

        # Back into PyTorch: the weights snap saved are those exported, bit for bit.
        model = import_weights(resaved)
        exact = model.kind == kind and model.readout is not None
        for module, imported in ((cell64, model.cell), (readout64, model.readout)):
            for parameter, value in module.named_parameters():
                original = getattr(module, parameter).detach().to(dtype).double()
                exact = exact and torch.equal(getattr(imported, parameter).detach().double(), original)
        if masks is not None:
            exact = exact and all(torch.equal(a.double(), b.double()) for a, b in zip(model.masks, masks))
        else:
            exact = exact and all(bool((m == 1).all()) for m in model.masks)
        print(f"  {'import back to torch':22s} {'exact' if exact else 'FAILED: weights differ'}")
        if not exact:
            failures.append(name + " import")
    if failures:
        print("FAILED: " + ", ".join(failures))
        return 1
    print("PyTorch round trip: all agree")
    return 0


if __name__ == "__main__":
    sys.exit(main())
