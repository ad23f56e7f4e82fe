#!/usr/bin/env python3
"""Trains a sparse GRU with SnAp-2 on the copy task from Python, plots the curriculum length L
against data time, exports the trained cell and readout to PyTorch and evaluates them there.

    PYTHONPATH=build/python /usr/bin/python3 examples/python/copy_task_snap2.py
    PYTHONPATH=build/python /usr/bin/python3 examples/python/copy_task_snap2.py --steps 300000 --hidden 64

Writes into --output (default build/python_example, never the checkout): copy_task.png (L
against data time), copy_task.csv and model.npz (the weights file, PyTorch's layout). Needs
the snap module (docs/python.md), Debian's python3-matplotlib and python3-torch.
"""

import argparse
import math
import pathlib
import sys
import time

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def need(module):
    """Imports `module`, or exits with one line saying what to install."""
    try:
        return __import__(module)
    except ImportError as error:
        hints = {"snap": "build it (cmake --build build --target snap_python) and set PYTHONPATH=build/python, "
                         "or pip install --no-build-isolation ./python",
                 "matplotlib": "apt-get install python3-matplotlib", "torch": "apt-get install python3-torch"}
        sys.exit(f"copy_task_snap2.py: cannot import {module} ({error}); {hints.get(module, '')}")


def parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=60000, help="steps of data to train on (default 60000)")
    parser.add_argument("--sequences", type=int, default=0, help="stop after this many sequences instead (0: --steps)")
    parser.add_argument("--hidden", type=int, default=32, help="hidden units H (default 32)")
    parser.add_argument("--density", type=float, default=0.25, help="recurrent weight density (default 0.25)")
    parser.add_argument("--n", type=int, default=2, help="the n of SnAp-n (default 2)")
    parser.add_argument("--lr", type=float, default=0.01, help="Adam's learning rate (default 0.01)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the masks, weights and sequences (default 1)")
    parser.add_argument("--evaluate", type=int, default=200, help="fresh sequences scored in PyTorch (default 200)")
    parser.add_argument("--output", type=pathlib.Path, default=REPOSITORY / "build" / "python_example",
                        help="folder for the plot, the CSV log and the model (default build/python_example)")
    return parser.parse_args()


def train(snap, np, args):
    """Online training, one sequence per trainer.run call; returns the objects and the log."""
    task = snap.CopyTask(seed=args.seed)
    cell = snap.GRU(task.input_size, args.hidden, recurrent_density=args.density, mask_sharing="shared",
                    seed=args.seed, dtype="float32")
    readout = snap.Readout(args.hidden, task.output_size, args.seed + 1, dtype="float32")
    trainer = snap.Trainer(cell, readout, snap.Adam(args.lr), snap.SnApOptions(args.n), clip_norm=1.0)
    log = [(0, task.length)]
    start = time.perf_counter()
    while (task.sequences < args.sequences) if args.sequences else (task.data_time < args.steps):
        sequence = task.next()
        losses = trainer.run(sequence.inputs("float32")[:, None, :], sequence.targets()[:, None], end_sequence=True)
        if task.record(sequence, float(losses.sum()) / math.log(2)):
            log.append((task.data_time, task.length))
    seconds = time.perf_counter() - start
    log.append((task.data_time, task.length))
    print(f"SnAp-{args.n}, GRU H = {args.hidden}, recurrent density {args.density}: {cell.parameter_count} parameters")
    print(f"reached L = {task.length} after {task.data_time} steps of data ({task.sequences} sequences) "
          f"in {seconds:.1f} s: {task.data_time / seconds:.0f} steps/s")
    return task, cell, readout, log


def plot(log, path, title):
    matplotlib = need("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.step([t for t, _ in log], [length for _, length in log], where="post")
    axes.set_xlabel("data time (input steps)")
    axes.set_ylabel("curriculum length L")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def evaluate_in_torch(snap, np, cell, readout, length, count, seed):
    """Exports to PyTorch and scores `count` fresh sequences of length L in torch; returns the
    recall accuracy, torch's loss in bits per recall step, and snap's on the same sequences."""
    torch = need("torch")
    gru, linear = snap.to_torch(cell, readout)
    task = snap.CopyTask(seed=seed + 1000, initial_length=length, length_spread=0)
    engine = snap.SnAp(cell, n=1)  # for snap's own loss: the states do not depend on the engine
    correct = recalled = 0
    torch_bits = snap_bits = 0.0
    for _ in range(count):
        sequence = task.next()
        inputs = sequence.inputs("float32")
        targets = sequence.targets()
        scored = targets >= 0
        with torch.no_grad():
            h = torch.zeros(1, cell.hidden_size)
            logits = []
            for x in torch.from_numpy(inputs):
                h = gru(x[None], h)
                logits.append(linear(h)[0])
            logits = torch.stack(logits)[torch.from_numpy(scored)]
            wanted = torch.from_numpy(targets[scored])
            torch_bits += float(torch.nn.functional.cross_entropy(logits, wanted, reduction="sum")) / math.log(2)
            correct += int((logits.argmax(1) == wanted).sum())
        recalled += int(scored.sum())
        engine.reset_state()
        states = engine.run(inputs)
        snap_bits += sum(readout.loss(states[t], int(targets[t]))[0] for t in np.flatnonzero(scored)) / math.log(2)
    return correct / recalled, torch_bits / recalled, snap_bits / recalled


def main():
    args = parse()
    np = need("numpy")
    snap = need("snap")
    args.output.mkdir(parents=True, exist_ok=True)
    task, cell, readout, log = train(snap, np, args)
    with open(args.output / "copy_task.csv", "w") as csv:
        csv.write("data_time,L\n" + "".join(f"{t},{length}\n" for t, length in log))
    plot(log, args.output / "copy_task.png", f"copy task, sparse GRU ({args.density:g}), SnAp-{args.n}, from Python")
    cell.save_weights(str(args.output / "model.npz"), readout)
    accuracy, torch_bits, snap_bits = evaluate_in_torch(snap, np, cell, readout, task.length, args.evaluate, args.seed)
    print(f"in PyTorch, {args.evaluate} fresh sequences of L = {task.length}: recall accuracy {accuracy:.3f}, "
          f"loss {torch_bits:.4f} bits per recall step (snap: {snap_bits:.4f})")
    if not math.isclose(torch_bits, snap_bits, rel_tol=1e-4, abs_tol=1e-5):
        sys.exit("copy_task_snap2.py: PyTorch's loss differs from snap's: the export is wrong")
    print(f"wrote {args.output / 'copy_task.png'}, {args.output / 'copy_task.csv'} and {args.output / 'model.npz'}")


if __name__ == "__main__":
    main()
