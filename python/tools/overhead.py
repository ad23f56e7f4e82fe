#!/usr/bin/env python3
"""Measures what calling snap from Python costs (docs/python.md, "Overhead"): the per-step
calls (Trainer.step, engine.step + accumulate) against the same loop in C++, and the sequence
call (Trainer.run over a whole T x 1 x m array) against the same work in C++.

    PYTHONPATH=build/python /usr/bin/python3 python/tools/overhead.py [--output build/overhead]

Builds python/tools/overhead.cpp into --output with the module's flags (g++ -O2, no -march),
runs each measurement REPEATS times and prints the medians.
"""

import argparse
import pathlib
import platform
import statistics
import subprocess
import time

import numpy as np

import snap

REPOSITORY = pathlib.Path(__file__).resolve().parents[2]


def build(output):
    binary = output / "overhead"
    source = REPOSITORY / "python" / "tools" / "overhead.cpp"
    if not binary.exists() or binary.stat().st_mtime < source.stat().st_mtime:
        subprocess.run(["g++", "-std=c++20", "-O2", "-DNDEBUG", f"-I{REPOSITORY / 'include'}", "-I/usr/include/eigen3",
                        str(source), "-o", str(binary)], check=True)
    return binary


def inputs(steps):
    random = snap.Random(5)
    return np.array([random.uniform(-1.0, 1.0) for _ in range(steps * 3)], dtype=np.float32).reshape(steps, 3)


def python_once(hidden, density, n, steps):
    """ns per step of Trainer.step, of engine.step + accumulate, and of Trainer.run (one run each)."""
    x = inputs(steps)
    targets = (np.arange(steps) % 2).astype(np.int64)

    def make():
        cell = snap.GRU(3, hidden, recurrent_density=density, mask_sharing="shared", seed=1, dtype="float32")
        readout = snap.Readout(hidden, 2, 2, dtype="float32")
        return cell, readout, snap.Trainer(cell, readout, snap.Adam(0.003), snap.SnApOptions(n), clip_norm=1.0)

    cell, readout, trainer = make()
    rows = list(x)
    labels = [int(t) for t in targets]
    start = time.perf_counter_ns()
    for row, label in zip(rows, labels):
        trainer.step(row, label)
    per_step = (time.perf_counter_ns() - start) / steps
    engine = snap.SnAp(cell, n=n)
    delta = np.full(cell.state_size, 0.01, dtype=np.float32)
    start = time.perf_counter_ns()
    for row in rows:
        engine.step(row)
        engine.accumulate(delta)
    engine_step = (time.perf_counter_ns() - start) / steps
    cell, readout, trainer = make()
    start = time.perf_counter_ns()
    trainer.run(x[:, None, :], targets[:, None])
    sequence = (time.perf_counter_ns() - start) / steps
    return per_step, engine_step, sequence


def medians(binary, hidden, density, n, steps, repeats):
    """Median ns per step of each measurement, C++ and Python runs interleaved (the machine may
    be shared: interleaving spreads its load over both sides)."""
    cpp, python = [], []
    for _ in range(repeats):
        out = subprocess.run([str(binary), str(hidden), str(density), str(n), str(steps), "1"], check=True,
                             capture_output=True, text=True).stdout
        cpp.append([float(v) for v in out.split()])
        python.append(python_once(hidden, density, n, steps))
    return [statistics.median(column) for column in zip(*cpp)], [statistics.median(column) for column in zip(*python)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=pathlib.Path, default=REPOSITORY / "build" / "overhead")
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args()
    args.output.mkdir(parents=True, exist_ok=True)
    binary = build(args.output)
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    print(f"machine: {cpu}, Python {platform.python_version()}, numpy {np.__version__}; medians of {args.repeats} runs")
    print(f"{'configuration':<34} {'C++ ns/step':>12} {'Python ns/step':>15} {'overhead':>10}")
    for hidden, density, n, steps in [(8, 1.0, 1, 50000), (128, 0.1, 2, 4000)]:
        (cpp_trainer, cpp_engine), (per_step, engine_step, sequence) = medians(binary, hidden, density, n, steps,
                                                                               args.repeats)
        name = f"GRU H={hidden} d={density:g} SnAp-{n}"
        print(f"{name + ', Trainer.step':<34} {cpp_trainer:>12.0f} {per_step:>15.0f} {per_step - cpp_trainer:>+9.0f} ns")
        print(f"{name + ', step+accumulate':<34} {cpp_engine:>12.0f} {engine_step:>15.0f} {engine_step - cpp_engine:>+9.0f} ns")
        print(f"{name + ', Trainer.run':<34} {cpp_trainer:>12.0f} {sequence:>15.0f} "
              f"{100 * (sequence / cpp_trainer - 1):>+9.1f} %")


if __name__ == "__main__":
    main()
