#!/usr/bin/env python3
"""Markdown tables of bench_deep's medians (benchmarks/README.md, "bench_deep").

    bench_deep --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \\
        --benchmark_out=deep.json --benchmark_out_format=json
    /usr/bin/python3 benchmarks/deep_table.py deep.json

Each cell is the median CPU time per step, the engine's bytes() and, for RTRL and the SnAp family,
the kept influence entries; then the ratios the README discusses, taken within the run.
"""
import argparse
import json
import sys

GRU_STACKS = ["Stack/GRUx2/H64/d0.25/in1", "Stack/GRUx2/H64/d0.25/in0.25",
              "Stack/GRUx2/H128/d0.25/in1", "Stack/GRUx2/H128/d0.25/in0.25"]
STACK_ENGINES = ["RTRL", "BPTT-16", "UORO", "SnAp-1", "SnAp-2", "SnAp-1-perlayer", "SnAp-2-perlayer", "EProp",
                 "RollingBPTT-16", "Forward"]
CELL_ENGINES = ["RTRL", "BPTT-16", "UORO", "SnAp-1", "SnAp-2", "EProp", "RollingBPTT-16", "Forward"]


def load(path):
    with open(path) as handle:
        data = json.load(handle)
    runs = data["benchmarks"]
    medians = [r for r in runs if r.get("aggregate_name") == "median"]
    if not medians:  # one repetition: the runs themselves
        medians = [r for r in runs if r.get("run_type", "iteration") == "iteration"]
    return data.get("context", {}), {r.get("run_name", r["name"]): r for r in medians}


def parameters_of(medians, configuration):
    run = next((r for n, r in medians.items() if n.startswith(configuration + "/") and "parameters" in r), None)
    return run["parameters"] if run else None


def reference_of(medians, stack):
    """The one-layer GRU of the stack's densities whose p is closest to the stack's."""
    densities = stack.split("/", 3)[3]
    candidates = {n.rsplit("/", 1)[0] for n in medians if n.startswith("GRU/") and n.split("/", 2)[2].startswith(densities)}
    target = parameters_of(medians, stack)
    if not candidates or target is None:
        return None
    return min(sorted(candidates), key=lambda c: abs((parameters_of(medians, c) or 0) - target))


def microseconds(run):
    scale = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}[run.get("time_unit", "us")]
    return run["cpu_time"] * scale


def significant(value):
    """Three significant digits, without an exponent."""
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def time_text(us):
    return f"{significant(us / 1000)} ms" if us >= 1000 else f"{significant(us)} µs"


def bytes_text(value):
    if value <= 0:
        return "—"
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if value >= size:
            return f"{significant(value / size)} {unit}"
    return f"{value:.0f} B"


def count_text(value):
    if value >= 1e6:
        return f"{significant(value / 1e6)} M"
    if value >= 1e3:
        return f"{significant(value / 1e3)} k"
    return f"{value:.0f}"


def cell(medians, name):
    run = medians.get(name)
    if run is None:
        return "skipped" if name.endswith("RTRL") or "SnAp" in name else "—"
    text = f"{time_text(microseconds(run))}, {bytes_text(run.get('bytes', 0))}"
    if "kept_entries" in run:
        text += f", {count_text(run['kept_entries'])}"
    return text


def table(medians, configurations, engines, labels=None):
    labels = labels or configurations
    lines = ["| engine | " + " | ".join(labels) + " |", "|---" * (len(configurations) + 1) + "|"]
    params = []
    for configuration in configurations:
        run = next((r for n, r in medians.items() if n.startswith(configuration + "/") and "state_size" in r), None)
        params.append(f"p = {count_text(run['parameters'])}, k = {run['state_size']:.0f}" if run else "")
    lines.append("| | " + " | ".join(params) + " |")
    for engine in engines:
        lines.append(f"| {engine} | " + " | ".join(cell(medians, f"{c}/{engine}") for c in configurations) + " |")
    return "\n".join(lines)


def ratio(medians, numerator, denominator):
    a, b = medians.get(numerator), medians.get(denominator)
    if a is None or b is None:
        return "—"
    return significant(microseconds(a) / microseconds(b))


def sum_of(medians, names):
    runs = [medians.get(n) for n in names]
    if any(r is None for r in runs):
        return None
    return sum(microseconds(r) for r in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="bench_deep's JSON output (--benchmark_out_format=json)")
    args = parser.parse_args()
    context, medians = load(args.results)
    if not medians:
        sys.exit("deep_table.py: no medians in the file (run with --benchmark_repetitions=5)")
    print(f"Run {context.get('date', '?')}, {context.get('num_cpus', '?')} CPUs at {context.get('mhz_per_cpu', '?')} MHz.\n")

    print("Stacks of two GRU layers (input 32, recurrent density 0.25 shared, input density 1 or 0.25):\n")
    print(table(medians, GRU_STACKS, STACK_ENGINES + ["layer0/SnAp-1", "layer1/SnAp-1", "layer0/SnAp-2",
                                                     "layer1/SnAp-2"],
                ["H64 in1", "H64 in0.25", "H128 in1", "H128 in0.25"]))
    singles = [reference_of(medians, stack) for stack in GRU_STACKS]
    print("\nOne GRU layer of about the same p (the same densities):\n")
    print(table(medians, [s for s in singles if s], CELL_ENGINES))
    print("\nGRU, LSTM, GRU at H = 64 (input 32, recurrent density 0.25 shared, dense inputs):\n")
    mixed = "Stack/GRU-LSTM-GRU/H64/d0.25/in1"
    print(table(medians, [mixed], STACK_ENGINES + [f"layer{l}/SnAp-{n}" for n in (1, 2) for l in range(3)], ["GRU-LSTM-GRU"]))
    print("\nThe LRU (m = 64, skip, linear output):\n")
    print(table(medians, ["LRU/N64", "LRU/N128", "LRU/N256"],
                ["RTRL", "SnAp-1", "SnAp-2", "EProp", "BPTT-16", "RollingBPTT-16", "UORO", "Forward"]))
    print("\nThree LRUs (m = 64, N = 128, GELU after the first two):\n")
    lrus = "Stack/LRUx3-GELU/N128"
    print(table(medians, [lrus], ["BPTT-16", "SnAp-2", "SnAp-2-perlayer", "EProp", "Forward", "layer0/SnAp-2",
                                  "layer1/SnAp-2", "layer2/SnAp-2"], ["LRU x3"]))
    rnns = ["LeakyRNN/H128/d1", "LeakyRNN/H128/d0.25", "LeakyRNN/H256/d1", "LeakyRNN/H256/d0.25"]
    print("\nThe leaky RNN (α = 0.1, input 32):\n")
    print(table(medians, rnns, ["RFLO", "EProp", "SnAp-1", "RTRL", "BPTT-16", "Forward"]))

    print("\nRatios of median times within the run:\n")
    print("| ratio | " + " | ".join(["H64 in1", "H64 in0.25", "H128 in1", "H128 in0.25"]) + " |")
    print("|---|---|---|---|---|")
    rows = [("joint SnAp-1 / per-layer SnAp-1", "SnAp-1", "SnAp-1-perlayer"),
            ("joint SnAp-2 / per-layer SnAp-2", "SnAp-2", "SnAp-2-perlayer"),
            ("per-layer SnAp-1 / BPTT-16", "SnAp-1-perlayer", "BPTT-16"),
            ("EProp / BPTT-16", "EProp", "BPTT-16"),
            ("UORO / BPTT-16", "UORO", "BPTT-16"),
            ("rolling BPTT-16 / BPTT-16", "RollingBPTT-16", "BPTT-16"),
            ("rolling BPTT-16 / forward", "RollingBPTT-16", "Forward"),
            ("RTRL / per-layer SnAp-2", "RTRL", "SnAp-2-perlayer")]
    for label, a, b in rows:
        print(f"| {label} | " + " | ".join(ratio(medians, f"{c}/{a}", f"{c}/{b}") for c in GRU_STACKS) + " |")
    for n in (1, 2):
        values = []
        for c in GRU_STACKS:
            parts = sum_of(medians, [f"{c}/layer0/SnAp-{n}", f"{c}/layer1/SnAp-{n}", f"{c}/Forward"])
            run = medians.get(f"{c}/SnAp-{n}-perlayer")
            values.append(significant(microseconds(run) / parts) if parts and run else "—")
        print(f"| per-layer SnAp-{n} / (layers' own SnAp-{n} + forward) | " + " | ".join(values) + " |")

    print("\n| ratio | GRU-LSTM-GRU | LRU x3 |\n|---|---|---|")
    for n in (1, 2):
        parts = sum_of(medians, [f"{mixed}/layer{l}/SnAp-{n}" for l in range(3)] + [f"{mixed}/Forward"])
        run = medians.get(f"{mixed}/SnAp-{n}-perlayer")
        own = significant(microseconds(run) / parts) if parts and run else "—"
        lru = "—"
        if n == 2:
            parts = sum_of(medians, [f"{lrus}/layer{l}/SnAp-2" for l in range(3)] + [f"{lrus}/Forward"])
            run = medians.get(f"{lrus}/SnAp-2-perlayer")
            lru = significant(microseconds(run) / parts) if parts and run else "—"
        print(f"| per-layer SnAp-{n} / (layers' own SnAp-{n} + forward) | {own} | {lru} |")
        lru = ratio(medians, f"{lrus}/SnAp-2", f"{lrus}/SnAp-2-perlayer") if n == 2 else "—"
        print(f"| joint SnAp-{n} / per-layer SnAp-{n} | {ratio(medians, f'{mixed}/SnAp-{n}', f'{mixed}/SnAp-{n}-perlayer')} | {lru} |")
    print(f"| per-layer SnAp-2 / BPTT-16 | {ratio(medians, f'{mixed}/SnAp-2-perlayer', f'{mixed}/BPTT-16')} | "
          f"{ratio(medians, f'{lrus}/SnAp-2-perlayer', f'{lrus}/BPTT-16')} |")
    print(f"| EProp / BPTT-16 | {ratio(medians, f'{mixed}/EProp', f'{mixed}/BPTT-16')} | "
          f"{ratio(medians, f'{lrus}/EProp', f'{lrus}/BPTT-16')} |")

    lrus_alone = ["LRU/N64", "LRU/N128", "LRU/N256"]
    print("\n| ratio | " + " | ".join(lrus_alone) + " |\n|---|---|---|---|")
    for label, a, b in [("RTRL / SnAp-2", "RTRL", "SnAp-2"), ("SnAp-2 / SnAp-1", "SnAp-2", "SnAp-1"),
                        ("SnAp-2 / BPTT-16", "SnAp-2", "BPTT-16"), ("EProp / SnAp-2", "EProp", "SnAp-2"),
                        ("UORO / BPTT-16", "UORO", "BPTT-16"), ("rolling BPTT-16 / BPTT-16", "RollingBPTT-16", "BPTT-16"),
                        ("rolling BPTT-16 / forward", "RollingBPTT-16", "Forward")]:
        print(f"| {label} | " + " | ".join(ratio(medians, f"{c}/{a}", f"{c}/{b}") for c in lrus_alone) + " |")

    print("\n| ratio | " + " | ".join(r.split("/", 1)[1] for r in rnns) + " |\n|---|---|---|---|---|")
    for label, a, b in [("RFLO / SnAp-1", "RFLO", "SnAp-1"), ("RFLO / EProp", "RFLO", "EProp"),
                        ("RFLO / BPTT-16", "RFLO", "BPTT-16"), ("RTRL / RFLO", "RTRL", "RFLO")]:
        print(f"| {label} | " + " | ".join(ratio(medians, f"{c}/{a}", f"{c}/{b}") for c in rnns) + " |")

    print("\n| two GRU layers / one GRU of the same p | " + " | ".join(
        f"{stack.split('/', 2)[2]} / {single.split('/', 1)[1].split('/')[0] if single else '—'}"
        for stack, single in zip(GRU_STACKS, singles)) + " |\n|---|---|---|---|---|")
    for label, a, b in [("BPTT-16", "BPTT-16", "BPTT-16"), ("UORO", "UORO", "UORO"),
                        ("per-layer SnAp-1 / SnAp-1", "SnAp-1-perlayer", "SnAp-1"),
                        ("per-layer SnAp-2 / SnAp-2", "SnAp-2-perlayer", "SnAp-2"), ("EProp", "EProp", "EProp"),
                        ("RTRL", "RTRL", "RTRL"), ("RollingBPTT-16", "RollingBPTT-16", "RollingBPTT-16"),
                        ("Forward", "Forward", "Forward")]:
        print(f"| {label} | " + " | ".join(ratio(medians, f"{stack}/{a}", f"{single}/{b}") if single else "—"
                                          for stack, single in zip(GRU_STACKS, singles)) + " |")

if __name__ == "__main__":
    main()
