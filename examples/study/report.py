"""The report step of study.py: reads every run's CSV under --out and writes docs/results.md's
figures (PNG, into --docs) and tables (between the <!-- table:NAME:begin/end --> markers of
docs/results.md, next to --docs). A stage whose runs are missing is skipped with a line saying so,
and its tables say "not run". Called as `study.py report`."""
import math
import os
import re
import statistics
import sys

from study import (FIRST_LOOK_ENGINES, FIRST_LOOK_LR, FIRST_LOOK_SEEDS, FIRST_LOOK_STEPS, COPY_ENGINES, COPY_LRS, COPY_SEEDS, COPY_SETTINGS, COPY_STEPS, COPY_TUNE_SEEDS, LM_ENGINES,
                   LM_LRS, LM_NETWORKS, LM_SEEDS, LM_SMALL, LM_SMALL_ENGINES, LM_STEPS, LM_WHY, QUALITY_RUNS,
                   copy_engines, copy_run, copy_tune_scores, length_at, lm_tune_scores, read_csv)


# One colour per engine in every panel of the gradient-quality figures.
QUALITY_COLOURS = ["SnAp-1", "SnAp-2", "SnAp-3", "SnAp-4", "UORO", "e-prop", "RFLO", "rolling BPTT(16)"]


def spread(values, digits=1):
    """'mean ± sd (min–max)' of a list of numbers."""
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.{digits}f} ± {sd:.{digits}f} ({min(values):.{digits}f}–{max(values):.{digits}f})"


class Report:
    def __init__(self, args):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        self.plt = plt
        self.out = args.out
        self.docs = args.docs
        self.tables = {}
        os.makedirs(self.docs, exist_ok=True)

    def path(self, *parts):
        return os.path.join(self.out, *parts)

    def save(self, figure, name):
        figure.tight_layout()
        figure.savefig(os.path.join(self.docs, name), dpi=100)
        self.plt.close(figure)
        print(f"report: wrote {os.path.join(self.docs, name)}", file=sys.stderr)

    # -----------------------------------------------------------------------------------------
    def first_look(self):
        names = {"bptt:4": "BPTT(4)", "bptt:16": "BPTT(16)", "uoro": "UORO", "snap:1": "SnAp-1", "snap:2": "SnAp-2",
                 "snap:3": "SnAp-3", "rtrl": "RTRL"}
        results = {}
        for density, engines in FIRST_LOOK_ENGINES.items():
            for engine in engines:
                for seed in FIRST_LOOK_SEEDS:
                    path = self.path("first-look", f"d{density:g}_{engine.replace(':', '')}_s{seed}.csv")
                    if os.path.exists(path):
                        results.setdefault((density, engine), []).append(copy_run(path))
        if not results:
            return
        plt = self.plt
        densities = [d for d in FIRST_LOOK_ENGINES if any(k[0] == d for k in results)]
        figure, axes = plt.subplots(1, len(densities), figsize=(6.5 * len(densities), 4.8), sharey=True, squeeze=False)
        grid = [FIRST_LOOK_STEPS * i // 200 for i in range(201)]
        fractions = [0.1, 0.25, 0.5, 1.0]
        final = ["| engine | cell | density | final L (mean, min–max) | wall time per run | steps/s |",
                 "|---|---|---|---|---|---|"]
        along = ["| engine | density | " + " | ".join(f"{int(x * FIRST_LOOK_STEPS):,} steps" for x in fractions) + " |",
                 "|---|---|" + "---|" * len(fractions)]
        for axis, density in zip(axes[0], densities):
            for index, engine in enumerate(FIRST_LOOK_ENGINES[0.25]):
                runs = results.get((density, engine))
                if not runs:
                    continue
                curves = [[length_at(rows, t) for t in grid] for rows, _ in runs]
                axis.plot(grid, [statistics.mean(c[i] for c in curves) for i in range(len(grid))], color=f"C{index}",
                          label=names[engine])
                axis.fill_between(grid, [min(c[i] for c in curves) for i in range(len(grid))],
                                  [max(c[i] for c in curves) for i in range(len(grid))], color=f"C{index}", alpha=0.2)
                finals = [rows[-1][1] for rows, _ in runs]
                wall = statistics.mean(w for _, w in runs)
                rate = sum(rows[-1][0] for rows, _ in runs) / sum(w for _, w in runs)
                final.append(f"| {names[engine]} | GRU 64 | {density:g} | {statistics.mean(finals):.1f} "
                             f"({min(finals)}–{max(finals)}) | {wall:.0f} s | {rate:,.0f} |")
                cells = [statistics.mean(length_at(rows, x * FIRST_LOOK_STEPS) for rows, _ in runs) for x in fractions]
                along.append(f"| {names[engine]} | {density:g} | " + " | ".join(f"{c:.1f}" for c in cells) + " |")
            axis.set_title(f"GRU, H = 64, recurrent density {density:g}" + (" (shared masks)" if density < 1 else ""))
            axis.set_xlabel("data time (input steps)")
            axis.grid(alpha=0.3)
            axis.legend(loc="upper left")
        axes[0][0].set_ylabel("curriculum length L reached")
        figure.suptitle(f"Copy task, online updates, Adam lr {FIRST_LOOK_LR:g} for every engine: mean over "
                        f"{len(FIRST_LOOK_SEEDS)} seeds, shaded min–max")
        self.save(figure, "first_look.png")
        self.tables["first-look"] = "\n".join(final)
        self.tables["first-look-along"] = "\n".join(along)

    def copy_tune(self):
        scores = copy_tune_scores(self.out)
        if not scores:
            return
        lines = ["| setting | engine | " + " | ".join(f"lr {lr:g}" for lr in COPY_LRS) + " |",
                 "|---|---|" + "---|" * len(COPY_LRS)]
        for setting, (_, _, label) in COPY_SETTINGS.items():
            for key, name, _ in copy_engines(setting, reported=False):
                grid = scores.get((setting, key), {})
                best = max(grid, key=lambda lr: (grid[lr][0], grid[lr][1])) if grid else None
                cells = []
                for lr in COPY_LRS:
                    if lr not in grid:
                        cells.append("–")
                        continue
                    text = f"{grid[lr][0]:.1f} ({grid[lr][1]:.2f})"
                    cells.append(f"**{text}**" if lr == best else text)
                lines.append(f"| {label} | {name} | " + " | ".join(cells) + " |")
        self.tables["copy-tune"] = "\n".join(lines)

    def copy_runs(self):
        """{(setting, key): [(seed, rows, wall)]} of the reported runs present."""
        runs = {}
        for setting in COPY_SETTINGS:
            for key, _, _ in copy_engines(setting):
                for seed in COPY_SEEDS:
                    path = self.path("copy", f"{setting}_{key}_s{seed}.csv")
                    if os.path.exists(path):
                        rows, wall = copy_run(path)
                        runs.setdefault((setting, key), []).append((seed, rows, wall))
        return runs

    def copy(self):
        runs = self.copy_runs()
        if not runs:
            print("report: no copy runs yet", file=sys.stderr)
            return
        try:
            from study import copy_tuned_rates
            rates = copy_tuned_rates(self.out)
        except RuntimeError:
            rates = {}
        plt = self.plt
        settings = [s for s in COPY_SETTINGS if any(k[0] == s for k in runs)]
        figure, axes = plt.subplots(1, len(settings), figsize=(6.5 * len(settings), 4.8), sharey=True, squeeze=False)
        colors = dict(zip([k for k, _, _ in COPY_ENGINES], plt.get_cmap("tab10").colors))
        grid = [COPY_STEPS * i // 300 for i in range(301)]
        lines = ["| setting | engine | lr | final L per seed | final L: mean ± sd (min–max) | L at 6 × 10⁵ steps | "
                 "mean L over the budget | steps/s |", "|---|---|---|---|---|---|---|---|"]
        for axis, setting in zip(axes[0], settings):
            label = COPY_SETTINGS[setting][2]
            for key, name, _ in copy_engines(setting):
                found = runs.get((setting, key))
                if not found:
                    continue
                curves = [[length_at(rows, t) for t in grid] for _, rows, _ in found]
                mean = [statistics.mean(c[i] for c in curves) for i in range(len(grid))]
                style = "--" if key.endswith("seq") else "-"
                axis.plot(grid, mean, style, color=colors[key], label=name)
                axis.fill_between(grid, [min(c[i] for c in curves) for i in range(len(grid))],
                                  [max(c[i] for c in curves) for i in range(len(grid))], color=colors[key], alpha=0.15)
                finals = [rows[-1][1] for _, rows, _ in found]
                area = [statistics.mean(c) for c in curves]
                rate = sum(rows[-1][0] for _, rows, _ in found) / sum(w for _, _, w in found)
                early = [length_at(rows, 600_000) for _, rows, _ in found]
                lr = rates.get((setting, key))
                lines.append(f"| {label} | {name} | {lr:g} | " + ", ".join(str(f) for f in finals) +
                             f" | {spread(finals)} | {statistics.mean(early):.1f} | {spread(area)} | {rate:,.0f} |")
            axis.set_title(f"{label} (shared masks)")
            axis.set_xlabel("data time (input steps)")
            axis.grid(alpha=0.3)
            axis.legend(loc="upper left", fontsize=8)
        axes[0][0].set_ylabel("curriculum length L reached")
        figure.suptitle(f"Copy task, tuned rates: mean over seeds {COPY_SEEDS[0]}–{COPY_SEEDS[-1]}, shaded min–max")
        self.save(figure, "copy_curves.png")
        self.tables["copy"] = "\n".join(lines)

        # The BPTT(T) sweep against SnAp-2: final L against T, SnAp-2's band across.
        figure, axes = plt.subplots(1, len(settings), figsize=(5.5 * len(settings), 4), squeeze=False)
        for axis, setting in zip(axes[0], settings):
            xs, means, lows, highs = [], [], [], []
            for key, _, flags in copy_engines(setting):
                if not re.fullmatch(r"bptt[0-9]+", key) or (setting, key) not in runs:
                    continue
                finals = [rows[-1][1] for _, rows, _ in runs[(setting, key)]]
                xs.append(int(key[4:]))
                means.append(statistics.mean(finals))
                lows.append(min(finals))
                highs.append(max(finals))
            if xs:
                axis.errorbar(xs, means, yerr=[[m - lo for m, lo in zip(means, lows)],
                                               [hi - m for m, hi in zip(means, highs)]],
                              marker="o", capsize=3, label="BPTT(T), an update per window")
            for key, color in (("snap2", "C1"), ("snap1", "C2"), ("uoro", "C3")):
                if (setting, key) in runs:
                    finals = [rows[-1][1] for _, rows, _ in runs[(setting, key)]]
                    name = dict((k, n) for k, n, _ in COPY_ENGINES)[key]
                    axis.axhspan(min(finals), max(finals), color=color, alpha=0.15)
                    axis.axhline(statistics.mean(finals), color=color, label=f"{name} (online), mean and range")
            axis.set_xscale("log", base=2)
            if xs:
                axis.set_xticks(xs, [str(x) for x in xs])
            axis.set_xlabel("truncation T (steps)")
            axis.set_ylabel(f"final L after {COPY_STEPS:,} steps")
            axis.set_title(COPY_SETTINGS[setting][2])
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        self.save(figure, "copy_bptt_sweep.png")

    # -----------------------------------------------------------------------------------------
    def lm_curve(self, path):
        rows = read_csv(path)
        return ([int(r["characters"]) for r in rows], [float(r["heldout_bits"]) for r in rows],
                [float(r["train_bits"]) for r in rows], float(rows[-1]["wall_seconds"]))

    def lm_why(self):
        found = [(key, self.path("lm-why", f"{key}.csv")) for key, *_ in LM_WHY]
        found = [(k, p) for k, p in found if os.path.exists(p)]
        if not found:
            return
        plt = self.plt
        figure, axes = plt.subplots(1, 2, figsize=(13, 4.5), sharey=True)
        lines = ["| run | split | engine, lr, updates | held-out bits/char at 200k → 400k | "
                 "training bits/char, last 20k | steps/s |", "|---|---|---|---|---|---|"]
        for key, path in found:
            x, held, train, wall = self.lm_curve(path)
            flags, lr, split = next((f, l, s) for k, f, l, s in LM_WHY if k == key)
            first = key in ("bptt16_tail", "snap1_tail", "bptt16_ordered", "snap1_ordered", "bptt16_chapters",
                            "snap1_chapters")
            for axis in ([axes[0]] if first else []) + ([axes[1]] if not first or key == "snap1_chapters" else []):
                line, = axis.plot(x, held, marker=".", label=f"{key}: held-out")
                if first and axis is axes[0]:
                    axis.plot(x[1:], train[1:], ":", color=line.get_color(), label=f"{key}: training (last 20k)")
            at = {c: h for c, h in zip(x, held)}
            mid = at.get(200_000, float("nan"))
            engine = " ".join(flags[1:]).replace("--update-every 16", "update every 16")
            lines.append(f"| {key} | {split} | {engine}, lr {lr:g} | {mid:.2f} → {held[-1]:.2f} | {train[-1]:.2f} | "
                         f"{x[-1] / wall:,.0f} |")
        for axis in axes:
            axis.set_xlabel("characters of training data")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=7)
        axes[0].set_ylabel("held-out bits per character")
        axes[0].set_title("the split and the order of the training text (lr 0.002)")
        axes[1].set_title("chapters shuffled: learning rate, updates every 16, UORO")
        figure.suptitle("Why held-out bits per character rose: GRU H = 128, density 0.25, one factor at a time")
        self.save(figure, "lm_why.png")
        self.tables["lm-why"] = "\n".join(lines)

    def lm_tune(self):
        scores = lm_tune_scores(self.out)
        if not scores:
            return
        lines = ["| engine | " + " | ".join(f"lr {lr:g}" for lr in LM_LRS) + " |", "|---|" + "---|" * len(LM_LRS)]
        for key, name, _ in LM_ENGINES:
            grid = scores.get(key, {})
            finite = {lr: v for lr, v in grid.items() if math.isfinite(v)}
            best = min(finite, key=finite.get) if finite else None
            cells = [("–" if lr not in grid else (f"**{grid[lr]:.3f}**" if lr == best else f"{grid[lr]:.3f}"))
                     for lr in LM_LRS]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        self.tables["lm-tune"] = "\n".join(lines)

    def lm(self):
        panels = [(network, label, [(k, n) for k, n, _ in LM_ENGINES]) for network, (_, _, label) in LM_NETWORKS.items()]
        panels += [(network, label, [(k, n) for k, n, _ in LM_SMALL_ENGINES])
                   for network, (_, _, _, label) in LM_SMALL.items()]
        present = [p for p in panels if any(os.path.exists(self.path("lm", f"{p[0]}_{k}_s{s}.csv"))
                                              for k, _ in p[2] for s in LM_SEEDS)]
        if not present:
            return
        try:
            from study import lm_tuned_rates, LM_SMALL_LR
            rates = lm_tuned_rates(self.out)
        except RuntimeError:
            rates = {}
        plt = self.plt
        columns = min(2, len(present))
        rows = (len(present) + columns - 1) // columns
        figure, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.6 * rows), squeeze=False)
        for axis in axes.flat[len(present):]:
            axis.set_visible(False)
        lines = ["| network | engine | lr | held-out bits/char per seed | mean | training bits/char (last "
                 "interval, mean) | steps/s |", "|---|---|---|---|---|---|---|"]
        order = list(dict.fromkeys([k for k, _, _ in LM_ENGINES] + [k for k, _, _ in LM_SMALL_ENGINES]))
        for axis, (network, label, engines) in zip(axes.flat, present):
            for key, name in engines:
                index = order.index(key)  # one colour per engine in every panel
                curves = []
                for seed in LM_SEEDS:
                    path = self.path("lm", f"{network}_{key}_s{seed}.csv")
                    if os.path.exists(path):
                        curves.append(self.lm_curve(path))
                if not curves:
                    continue
                x = curves[0][0]
                length = min(len(c[1]) for c in curves)
                mean = [statistics.mean(c[1][i] for c in curves) for i in range(length)]
                axis.plot(x[:length], mean, marker=".", color=f"C{index}", label=name)
                if len(curves) > 1:
                    axis.fill_between(x[:length], [min(c[1][i] for c in curves) for i in range(length)],
                                      [max(c[1][i] for c in curves) for i in range(length)], color=f"C{index}",
                                      alpha=0.15)
                finals = [c[1][-1] for c in curves]
                rate = sum(c[0][-1] for c in curves) / sum(c[3] for c in curves)
                lr = LM_SMALL_LR if network in LM_SMALL else rates.get(key, float("nan"))
                lines.append(f"| {label} | {name} | {lr:g} | " + ", ".join(f"{f:.3f}" for f in finals) +
                             f" | {statistics.mean(finals):.3f} | {statistics.mean(c[2][-1] for c in curves):.3f} "
                             f"| {rate:,.0f} |")
            axis.set_title(f"{label}, density {LM_SMALL[network][2] if network in LM_SMALL else 0.1:g}")
            axis.set_xlabel("characters of training data")
            axis.set_ylabel("held-out bits per character")
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8)
        figure.suptitle("King James Bible, every tenth chapter held out: held-out bits per character "
                        f"(mean over seeds {LM_SEEDS[0]}–{LM_SEEDS[-1]}, shaded min–max)")
        self.save(figure, "lm_curves.png")
        self.tables["lm"] = "\n".join(lines)

    # -----------------------------------------------------------------------------------------
    def quality(self):
        found = {name: self.path("quality", f"{name}.csv") for name, _ in QUALITY_RUNS}
        found = {n: read_csv(p) for n, p in found.items() if os.path.exists(p)}
        if not found:
            return
        plt = self.plt
        along = [n for n in found if n.startswith("train_")]
        titles = {"train_copy_h64d25": "copy task, GRU H = 64, density 0.25",
                  "train_copy_h128d10": "copy task, GRU H = 128, density 0.1",
                  "train_text_h32d25": "Bible text, GRU H = 32, density 0.25",
                  "train_copy_rnn_h64d25": "copy task, leaky RNN (α = 0.5) H = 64, density 0.25"}
        if along:
            figure, axes = plt.subplots(2, len(along), figsize=(5 * len(along), 7.5), squeeze=False, sharey="row")
            for column, name in enumerate(along):
                rows = found[name]
                engines = list(dict.fromkeys(r["engine"] for r in rows))
                for engine in engines:
                    index = QUALITY_COLOURS.index(engine) if engine in QUALITY_COLOURS else len(QUALITY_COLOURS)
                    mine = [r for r in rows if r["engine"] == engine]
                    steps = [int(r["step"]) for r in mine]
                    axes[0][column].plot(steps, [float(r["cos_step"]) for r in mine], color=f"C{index}", label=engine)
                    axes[1][column].plot(steps, [float(r["cos_sum"]) for r in mine], color=f"C{index}", label=engine)
                axes[0][column].set_title(titles.get(name, name), fontsize=10)
                axes[1][column].set_xlabel("training step (trained with RTRL)")
                for row in range(2):
                    axes[row][column].grid(alpha=0.3)
            axes[0][0].set_ylabel("mean per-step cosine with RTRL")
            axes[1][0].set_ylabel("cosine of the interval's summed gradient")
            handles = {}
            for axis in axes[0]:
                handles.update(zip(*reversed(axis.get_legend_handles_labels())))
            axes[0][-1].legend([handles[e] for e in QUALITY_COLOURS if e in handles],
                               [e for e in QUALITY_COLOURS if e in handles], fontsize=8)
            self.save(figure, "quality_training.png")
            lines = ["| run | engine | per-step cosine, first / last interval | relative error, first / last | "
                     "summed-gradient cosine, last |", "|---|---|---|---|---|"]
            for name in along:
                rows = found[name]
                for engine in dict.fromkeys(r["engine"] for r in rows):
                    mine = [r for r in rows if r["engine"] == engine]
                    lines.append(f"| {titles.get(name, name)} | {engine} | {float(mine[0]['cos_step']):.3f} / "
                                 f"{float(mine[-1]['cos_step']):.3f} | {float(mine[0]['relerr_step']):.3f} / "
                                 f"{float(mine[-1]['relerr_step']):.3f} | {float(mine[-1]['cos_sum']):.3f} |")
            self.tables["quality-training"] = "\n".join(lines)
        sweeps = [n for n in found if not n.startswith("train_")]
        if sweeps:
            figure, axes = plt.subplots(1, 2, figsize=(12, 4.3), sharey=True)
            columns = [e for e in QUALITY_COLOURS if e != "RFLO"]  # the sweep's cells are GRUs
            lines = ["| network | " + " | ".join(columns) + " |", "|---|" + "---|" * len(columns)]
            for axis, prefix, label in ((axes[0], "density_h64d", "H = 64, density {}"),
                                        (axes[1], "hidden_h", "H = {}, density 0.25")):
                names = sorted((n for n in sweeps if n.startswith(prefix) or
                                (prefix == "hidden_h" and n == "density_h64d0.25")),
                               key=lambda n: float(re.findall(r"[0-9.]+", n.split("_")[1])[0 if prefix == "hidden_h" else 1]))
                for name in names:
                    rows = found[name]
                    value = re.findall(r"[0-9.]+", name.split("_")[1])
                    shown = label.format(value[1] if prefix == "density_h64d" else value[0])
                    cos = {r["engine"]: float(r["cos_step"]) for r in rows}
                    ns = [n for n in range(1, 5) if f"SnAp-{n}" in cos]
                    axis.plot(ns, [cos[f"SnAp-{n}"] for n in ns], marker="o", label=shown)
                    if prefix == "density_h64d" or name != "density_h64d0.25":
                        lines.append(f"| GRU {shown} | " + " | ".join(
                            f"{cos[e]:.3f}" if e in cos else "–" for e in columns) + " |")
                axis.set_xlabel("n of SnAp-n")
                axis.set_xticks([1, 2, 3, 4])
                axis.grid(alpha=0.3)
                axis.legend(fontsize=8)
            axes[0].set_ylabel("mean per-step cosine with RTRL")
            axes[0].set_title("against density (GRU H = 64)")
            axes[1].set_title("against H (GRU, density 0.25)")
            figure.suptitle("Copy task, the first 20,000 steps of training with RTRL: SnAp-n's gradient against RTRL's")
            self.save(figure, "quality_sweep.png")
            self.tables["quality-sweep"] = "\n".join(lines)

    # -----------------------------------------------------------------------------------------
    def costs(self):
        """What each stage cost: its runs and their wall times summed (each run is one process on one core)."""
        lines = ["| stage | runs | run time summed | elapsed on 2 cores (sum / 2) |", "|---|---|---|---|"]
        for stage in ("first-look", "copy-tune", "copy", "lm-why", "lm-tune", "lm", "quality"):
            folder = self.path(stage)
            if not os.path.isdir(folder):
                continue
            total, count = 0.0, 0
            for name in sorted(os.listdir(folder)):
                if not name.endswith(".csv"):
                    continue
                count += 1
                seconds = os.path.join(folder, name[:-4] + ".seconds")
                if os.path.exists(seconds):
                    with open(seconds) as f:
                        total += float(f.read())
                else:
                    rows = read_csv(os.path.join(folder, name))
                    total += float(rows[-1].get("wall_seconds") or 0)
            if count:
                lines.append(f"| {stage} | {count} | {total / 60:,.0f} min | {total / 120:,.0f} min |")
        self.tables["costs"] = "\n".join(lines)

    def write_tables(self, markdown):
        with open(markdown) as f:
            text = f.read()
        for name, table in self.tables.items():
            pattern = re.compile(rf"(<!-- table:{re.escape(name)}:begin -->\n).*?(<!-- table:{re.escape(name)}:end -->)",
                                 re.S)
            if not pattern.search(text):
                print(f"report: {markdown} has no markers for the table '{name}'", file=sys.stderr)
                continue
            text = pattern.sub(lambda m: m.group(1) + table + "\n" + m.group(2), text)
        with open(markdown, "w") as f:
            f.write(text)
        print(f"report: wrote {len(self.tables)} tables into {markdown}", file=sys.stderr)


def main(args):
    report = Report(args)
    for part in (report.first_look, report.copy_tune, report.copy, report.lm_why, report.lm_tune, report.lm, report.quality, report.costs):
        part()
    markdown = os.path.join(os.path.dirname(os.path.abspath(args.docs)), "results.md")
    if os.path.exists(markdown):
        report.write_tables(markdown)
    else:
        for name, table in report.tables.items():
            print(f"\n{name}:\n{table}")
