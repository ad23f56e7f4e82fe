#!/usr/bin/python3
"""Time per step of a whole-sequence forward + backward: PyTorch's nn.RNN/GRU/LSTM vs snap's BPTT.

PyTorch: one thread, float32, input 32, a 128-step sequence, loss = sum of all outputs h_t,
forward + backward, median over repetitions, divided by the sequence length.
snap: the bptt_sequence program (built with the benchmarks), which runs one BPTT engine over
BATCH streams (one thread) for the same number of steps with the same loss, and prints its median
microseconds per step.

    /usr/bin/python3 benchmarks/compare_pytorch.py [path/to/bptt_sequence] [--reps N] ...

Exits 0 with a message when torch is not installed.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

INPUT_SIZE = 32


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("binary", nargs="?", default="build-bench/benchmarks/bptt_sequence",
                        help="path of snap's bptt_sequence program (default: %(default)s)")
    parser.add_argument("--cells", nargs="+", default=["RNN", "GRU", "LSTM"], choices=["RNN", "GRU", "LSTM"])
    parser.add_argument("--hidden", nargs="+", type=int, default=[64, 128, 256, 512])
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 16])
    parser.add_argument("--steps", type=int, default=128, help="sequence length (default: %(default)s)")
    parser.add_argument("--reps", type=int, default=11, help="timed repetitions per case (default: %(default)s)")
    return parser.parse_args()


def torch_microseconds_per_step(torch, cell, hidden, batch, steps, reps):
    """Median over reps of (forward + backward of a `steps`-long sequence) / steps, in µs."""
    torch.manual_seed(1)
    model = {"RNN": torch.nn.RNN, "GRU": torch.nn.GRU, "LSTM": torch.nn.LSTM}[cell](INPUT_SIZE, hidden)
    inputs = torch.rand(steps, batch, INPUT_SIZE) * 2 - 1
    times = []
    for rep in range(-2, reps):  # two warm-up runs
        model.zero_grad(set_to_none=False)
        start = time.perf_counter()
        outputs, _ = model(inputs)
        outputs.sum().backward()
        elapsed = time.perf_counter() - start
        if rep >= 0:
            times.append(elapsed)
    return statistics.median(times) / steps * 1e6


def torch_gemm_report(torch):
    """PyTorch's float GEMM rate and the BLAS library it loaded: Debian's python3-torch uses
    whatever libblas.so.3 the alternatives system selects, which may be the slow reference BLAS."""
    a, b = torch.rand(512, 512), torch.rand(512, 512)
    for _ in range(2):
        a @ b
    runs = 10
    start = time.perf_counter()
    for _ in range(runs):
        a @ b
    gflops = 2 * 512 ** 3 * runs / (time.perf_counter() - start) * 1e-9
    try:
        with open("/proc/self/maps") as maps:
            libraries = sorted({line.split()[-1] for line in maps if "blas" in line.split()[-1]})
    except OSError:
        libraries = []
    text = f"PyTorch float GEMM 512x512x512: {gflops:.1f} GFLOP/s; BLAS: {', '.join(libraries) or 'unknown'}"
    if any("/blas/libblas.so" in library for library in libraries):
        text += "\n  (the reference BLAS: PyTorch's matrix products are far from this machine's peak; an optimised" \
                "\n   libblas.so.3 such as OpenBLAS would make the PyTorch column representative)"
    return text


def snap_microseconds_per_step(binary, cell, hidden, batch, steps, reps):
    result = subprocess.run([binary, cell, str(hidden), str(batch), str(steps), str(reps)],
                            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{binary} failed: {result.stderr.strip()}")
    return float(result.stdout.split()[0])


def main():
    arguments = parse_arguments()
    try:
        import torch
    except ImportError:
        print("compare_pytorch.py: PyTorch (torch) is not installed for this Python "
              f"({sys.executable}); install python3-torch to run the comparison. Nothing to do.")
        return 0
    torch.set_num_threads(1)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass  # already set
    torch.set_default_dtype(torch.float32)
    binary = arguments.binary
    if not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        print(f"compare_pytorch.py: no bptt_sequence program at '{binary}'. Build it with\n"
              "  cmake --build <build dir> --target bptt_sequence\n"
              "and pass its path; the table shows PyTorch only.", file=sys.stderr)
        binary = None

    print(f"Forward + backward over {arguments.steps} steps, input {INPUT_SIZE}, float32, one thread "
          f"(torch {torch.__version__}); median of {arguments.reps} runs, microseconds per step.")
    print("snap: one BPTT engine over BATCH streams, one thread.")
    print(torch_gemm_report(torch))
    header = f"{'cell':<5} {'H':>4} {'batch':>5} {'PyTorch us/step':>16} {'snap us/step':>13} {'snap/PyTorch':>13}"
    print(header)
    print("-" * len(header))
    for cell in arguments.cells:
        for hidden in arguments.hidden:
            for batch in arguments.batch:
                reference = torch_microseconds_per_step(torch, cell, hidden, batch, arguments.steps, arguments.reps)
                if binary is None:
                    ours, ratio = "n/a", "n/a"
                else:
                    value = snap_microseconds_per_step(binary, cell, hidden, batch, arguments.steps, arguments.reps)
                    ours, ratio = f"{value:.1f}", f"{value / reference:.2f}"
                print(f"{cell:<5} {hidden:>4} {batch:>5} {reference:>16.1f} {ours:>13} {ratio:>13}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError, RuntimeError, ImportError) as error:  # a missing file or package, a bad value: no traceback
        sys.exit(f"compare_pytorch.py: {error}")
