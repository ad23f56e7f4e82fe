#!/usr/bin/python3
"""Log–log plot of time per online step against the hidden size H, one line per engine.

Reads the JSON of bench_engines (--benchmark_format=json or --benchmark_out=FILE
--benchmark_out_format=json) and writes a PNG with one panel per recurrent density (default
GRU, shared masks, densities 1 and 0.1 side by side). The legend gives each line's fitted
slope d log(time) / d log(H). With --benchmark_repetitions, the median aggregate is used.

    /usr/bin/python3 benchmarks/plot_scaling.py results.json -o scaling.png
"""

import argparse
import collections
import json
import math
import sys

ENGINES = ["BPTT-128", "RTRL", "UORO", "SnAp-1", "SnAp-2", "SnAp-3"]
TO_MICROSECONDS = {"ns": 1e-3, "us": 1.0, "ms": 1e3, "s": 1e6}


def parse_arguments():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("json", help="Google Benchmark JSON output of bench_engines")
    parser.add_argument("-o", "--output", default="scaling.png", help="PNG to write (default: %(default)s)")
    parser.add_argument("--cell", default="GRU", choices=["RNN", "GRU", "LSTM"])
    parser.add_argument("--mode", default="shared", choices=["shared", "pergate"],
                        help="mask sharing (ignored for the RNN, which has one gate)")
    parser.add_argument("--densities", nargs="+", default=["1", "0.1"], help="recurrent densities, one panel each")
    parser.add_argument("--time", default="real", choices=["real", "cpu"], help="real_time or cpu_time")
    return parser.parse_args()


def parse_name(name):
    """`GRU/shared/d0.1/H256/SnAp-2` or `RNN/d0.1/H256/SnAp-2` -> (cell, mode, density, H, engine)."""
    parts = name.split("/")
    if len(parts) == 4 and parts[0] == "RNN":
        parts.insert(1, "shared")
    if len(parts) != 5 or not parts[2].startswith("d") or not parts[3].startswith("H"):
        return None
    try:
        return parts[0], parts[1], float(parts[2][1:]), int(parts[3][1:]), parts[4]
    except ValueError:
        return None


def load_times(path, field):
    """{benchmark name: microseconds per step}: the median aggregate if present, else the mean."""
    with open(path) as handle:
        report = json.load(handle)
    runs = collections.defaultdict(list)
    medians = {}
    for entry in report.get("benchmarks", []):
        name = entry.get("run_name", entry["name"])
        value = entry[field] * TO_MICROSECONDS[entry.get("time_unit", "ns")]
        if entry.get("run_type") == "aggregate":
            if entry.get("aggregate_name") == "median":
                medians[name] = value
        elif "error_occurred" not in entry or not entry["error_occurred"]:
            runs[name].append(value)
    times = {name: sum(values) / len(values) for name, values in runs.items()}
    times.update(medians)
    return times


def fitted_slope(sizes, times):
    """Least-squares slope of log(time) against log(H)."""
    xs = [math.log(h) for h in sizes]
    ys = [math.log(t) for t in times]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys)) / spread


def main():
    arguments = parse_arguments()
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    times = load_times(arguments.json, "real_time" if arguments.time == "real" else "cpu_time")
    mode = "shared" if arguments.cell == "RNN" else arguments.mode
    densities = [float(d) for d in arguments.densities]
    # series[density][engine] = [(H, µs)]
    series = {d: collections.defaultdict(list) for d in densities}
    for name, value in times.items():
        parsed = parse_name(name)
        if parsed is None:
            continue
        cell, name_mode, density, hidden, engine = parsed
        if cell == arguments.cell and name_mode == mode and density in series:
            series[density][engine].append((hidden, value))
    if not any(series[d] for d in densities):
        print(f"plot_scaling.py: no {arguments.cell}/{mode} results for densities {arguments.densities} "
              f"in {arguments.json}", file=sys.stderr)
        return 1

    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    markers = "osD^vP"
    figure, axes = plt.subplots(1, len(densities), figsize=(6.2 * len(densities), 5), sharey=True, squeeze=False)
    all_sizes = sorted({h for d in densities for points in series[d].values() for h, _ in points})
    print(f"{arguments.cell} {mode}: fitted slopes of log(time per step) vs log(H)")
    for axis, density in zip(axes[0], densities):
        engines = [e for e in ENGINES if e in series[density]] + sorted(set(series[density]) - set(ENGINES))
        for index, engine in enumerate(engines):
            points = sorted(series[density][engine])
            sizes, values = [h for h, _ in points], [t for _, t in points]
            if len(points) >= 2:
                slope = fitted_slope(sizes, values)
                label = f"{engine} (slope {slope:.2f})"
                print(f"  d={density:g} {engine:<9} slope {slope:5.2f} over H = {sizes}")
            else:
                label = f"{engine} (one point)"
            style = ENGINES.index(engine) if engine in ENGINES else index
            axis.plot(sizes, values, marker=markers[style % len(markers)], color=colours[style % len(colours)],
                      label=label)
        axis.set_xscale("log", base=2)
        axis.set_yscale("log")
        axis.set_xticks(all_sizes)
        axis.set_xticklabels([str(h) for h in all_sizes])
        axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axis.set_xlabel("hidden size H (units)")
        axis.set_title(f"{arguments.cell}, {'shared' if mode == 'shared' else 'per-gate'} masks, "
                       f"recurrent density {density:g}")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(fontsize="small")
    axes[0][0].set_ylabel(f"time per online step ({arguments.time} time, µs)")
    figure.suptitle("snap: step(x) + accumulate(δ), input 32, float, batch 1, one thread")
    figure.tight_layout()
    figure.savefig(arguments.output, dpi=120)
    print(f"wrote {arguments.output}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (OSError, ValueError, RuntimeError, ImportError) as error:  # a missing file or package, a bad value: no traceback
        sys.exit(f"plot_scaling.py: {error}")
