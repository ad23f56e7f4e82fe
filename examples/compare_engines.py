#!/usr/bin/env python3
"""Runs the copy task (examples/copy_task) with several engines on the same data budget and
seeds, then writes a Markdown table (results_table.md) and a PNG plot (copy_task_results.png)
of the curriculum length L against data time, one line per engine (mean over seeds, shaded
min–max), into --out (build/results by default; docs/results.md shows them).

Needs Debian's python3-matplotlib (run with /usr/bin/python3); the library never uses Python.

    /usr/bin/python3 examples/compare_engines.py --binary build/examples/copy_task
"""
import argparse
import concurrent.futures
import csv
import os
import subprocess
import sys
import tempfile
import time

# (label, engine flag) per density; RTRL and SnAp-3 only where they fit in time.
SPARSE_ENGINES = [("BPTT(4)", "bptt:4"), ("BPTT(16)", "bptt:16"), ("UORO", "uoro"), ("SnAp-1", "snap:1"),
                  ("SnAp-2", "snap:2"), ("SnAp-3", "snap:3"), ("RTRL", "rtrl")]
DENSE_ENGINES = [("BPTT(4)", "bptt:4"), ("BPTT(16)", "bptt:16"), ("UORO", "uoro"), ("SnAp-1", "snap:1")]


def run(binary, label, engine, density, seed, budget, hidden, lr, directory):
    path = os.path.join(directory, f"{engine.replace(':', '')}_d{density}_s{seed}.csv")
    command = [binary, "--cell", "gru", "--engine", engine, "--hidden", str(hidden), "--density", str(density),
               "--masks", "shared", "--lr", str(lr), "--steps", str(budget), "--seed", str(seed), "--csv", path]
    start = time.time()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    wall = time.time() - start
    with open(path) as f:
        rows = [(int(r["data_time"]), int(r["length"])) for r in csv.DictReader(f)]
    return {"label": label, "engine": engine, "density": density, "seed": seed, "wall": wall, "rows": rows,
            "final": rows[-1][1], "data": rows[-1][0], "command": " ".join(command[:-2])}


def length_at(rows, t):
    """L reached by data time t (the last recorded point at or before t)."""
    reached = 1
    for data_time, length in rows:
        if data_time > t:
            break
        reached = length
    return reached


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", default="build/examples/copy_task")
    parser.add_argument("--budget", type=int, default=1000000, help="data steps per run")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--sparse-density", type=float, default=0.25)
    parser.add_argument("--lr", type=float, default=0.003)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="build/results",
                        help="folder for results_table.md and copy_task_results.png (default: %(default)s)")
    args = parser.parse_args()
    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        raise OSError(f"no copy_task program at '{args.binary}' (build it: cmake --build build --target copy_task)")

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plan = [(label, engine, 1.0) for label, engine in DENSE_ENGINES]
    plan += [(label, engine, args.sparse_density) for label, engine in SPARSE_ENGINES]
    results = []
    with tempfile.TemporaryDirectory() as directory, concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        futures = [pool.submit(run, args.binary, label, engine, density, seed, args.budget, args.hidden, args.lr,
                               directory)
                   for label, engine, density in plan for seed in range(1, args.seeds + 1)]
        for future in concurrent.futures.as_completed(futures):
            r = future.result()
            results.append(r)
            print(f"{r['label']:9s} d={r['density']:<5g} seed {r['seed']}: L = {r['final']:3d} "
                  f"in {r['wall']:.0f} s", file=sys.stderr)

    densities = sorted({r["density"] for r in results}, reverse=True)
    labels = [label for label, _ in SPARSE_ENGINES]
    colors = dict(zip(labels, plt.get_cmap("tab10").colors))
    figure, axes = plt.subplots(1, len(densities), figsize=(6.5 * len(densities), 4.8), sharey=True)
    grid = [args.budget * i // 200 for i in range(201)]
    summary = []
    for axis, density in zip(axes, densities):
        for label in labels:
            runs = [r for r in results if r["label"] == label and r["density"] == density]
            if not runs:
                continue
            curves = [[length_at(r["rows"], t) for t in grid] for r in runs]
            mean = [sum(c[i] for c in curves) / len(curves) for i in range(len(grid))]
            low = [min(c[i] for c in curves) for i in range(len(grid))]
            high = [max(c[i] for c in curves) for i in range(len(grid))]
            axis.plot(grid, mean, color=colors[label], label=label)
            axis.fill_between(grid, low, high, color=colors[label], alpha=0.2)
            finals = [r["final"] for r in runs]
            mean_final = sum(finals) / len(finals)
            wall = sum(r["wall"] for r in runs) / len(runs)
            steps = sum(r["data"] for r in runs) / sum(r["wall"] for r in runs)
            summary.append((label, density, mean_final, min(finals), max(finals), wall, steps, len(runs)))
        axis.set_title(f"GRU, H = {args.hidden}, recurrent density {density:g}"
                       + (" (shared masks)" if density < 1 else ""))
        axis.set_xlabel("data time (input steps)")
        axis.grid(alpha=0.3)
        axis.legend(loc="upper left")
    axes[0].set_ylabel("curriculum length L reached")
    figure.suptitle(f"Copy task, online updates, Adam lr {args.lr:g}: mean over {args.seeds} seeds, shaded min–max")
    figure.tight_layout()
    os.makedirs(args.out, exist_ok=True)
    figure.savefig(os.path.join(args.out, "copy_task_results.png"), dpi=110)

    with open(os.path.join(args.out, "results_table.md"), "w") as f:
        f.write("| engine | cell | density | final L (mean, min–max) | wall time per run | steps/s |\n")
        f.write("|---|---|---|---|---|---|\n")
        for label, density, mean_final, low, high, wall, steps, count in summary:
            f.write(f"| {label} | GRU {args.hidden} | {density:g} | {mean_final:.1f} ({low}–{high}) | "
                    f"{wall:.0f} s | {steps:,.0f} |\n")
        f.write("\nL reached at fractions of the budget (mean over seeds):\n\n")
        fractions = [0.1, 0.25, 0.5, 1.0]
        f.write("| engine | density | " + " | ".join(f"{int(x * args.budget):,} steps" for x in fractions) + " |\n")
        f.write("|---|---|" + "---|" * len(fractions) + "\n")
        for label, density, *_ in summary:
            runs = [r for r in results if r["label"] == label and r["density"] == density]
            cells = [sum(length_at(r["rows"], x * args.budget) for r in runs) / len(runs) for x in fractions]
            f.write(f"| {label} | {density:g} | " + " | ".join(f"{c:.1f}" for c in cells) + " |\n")
    print(f"wrote {args.out}/copy_task_results.png and {args.out}/results_table.md", file=sys.stderr)


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, RuntimeError, ImportError) as error:  # a missing file or package, a bad value: no traceback
        sys.exit(f"compare_engines.py: {error}")
