#!/usr/bin/env python3
"""The study of docs/results.md: the SnAp paper's claims checked on the copy task (tuned), on
character-level language modelling of the King James Bible, and by the gradient's quality
against exact RTRL. Each stage is a list of independent runs of the example programs; this
script writes them as a jobs file (one shell command per line, each writing its own CSV) and
hands the file to a scheduler that already exists:

    study.py run STAGE                      every core of this machine (xargs -P)
    study.py run STAGE --via slurm          writes a SLURM job array (sbatch --array) and says how to submit it
    study.py run STAGE --via parallel --hosts FILE
                                            GNU parallel over the ssh hosts listed in FILE
    study.py report                         gathers every CSV into docs/results.md's figures and tables

A run whose CSV exists is skipped, so a stage can be interrupted and run again, and runs made on
a cluster are gathered like local ones (the output folder must be on a file system every host
sees). Stages, in order (copy needs copy-tune's results, lm needs lm-tune's):

    first-look the copy task before tuning: one learning rate, 6e5 steps, 3 seeds

    copy-tune  copy task: each engine's learning rate on a grid, on seeds not reported
    copy       copy task: each engine at its learning rate, 5 reported seeds, 3e6 steps
    lm-why     language modelling: why held-out bits per character rose (split, rate, updates)
    lm-tune    language modelling: each engine's learning rate
    lm         language modelling: every engine, GRU and LSTM at equal parameter counts
    quality    gradient cosine and relative error against exact RTRL, along training and
               against n, density and H

Needs the programs built (cmake --build build --target copy_task char_lm gradient_quality), the
corpus for the lm stages (examples/study/bible.py), and for the report Debian's
python3-matplotlib (run with /usr/bin/python3).
"""
import argparse
import csv
import math
import os
import shlex
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# ---------------------------------------------------------------------------------------------
# What is run.

COPY_SETTINGS = {  # name: (hidden, recurrent density, label)
    "h64d25": (64, 0.25, "GRU H = 64, density 0.25"),
    "h128d10": (128, 0.1, "GRU H = 128, density 0.1"),
}
# (key, label, flags); the per-sequence variants run in the first setting only (docs/results.md says why).
COPY_ENGINES = [
    ("bptt4", "BPTT(4)", ["--engine", "bptt:4"]),
    ("bptt8", "BPTT(8)", ["--engine", "bptt:8"]),
    ("bptt16", "BPTT(16)", ["--engine", "bptt:16"]),
    ("bptt32", "BPTT(32)", ["--engine", "bptt:32"]),
    ("uoro", "UORO", ["--engine", "uoro"]),
    ("snap1", "SnAp-1", ["--engine", "snap:1"]),
    ("snap2", "SnAp-2", ["--engine", "snap:2"]),
    ("snap2seq", "SnAp-2 per sequence", ["--engine", "snap:2", "--update", "sequence"]),
    ("bpttseq", "BPTT per sequence", ["--engine", "bptt", "--update", "sequence"]),
]
PER_SEQUENCE_SETTINGS = {"h64d25"}
# The BPTT(T) sweep's ends run in the first setting only (the machine's time; the middle T are in both).
SWEEP_END_SETTINGS = {"h64d25"}
COPY_LRS = [0.0003, 0.001, 0.003, 0.01]
COPY_TUNE_SEEDS = [101, 102]
COPY_TUNE_STEPS = 500_000
COPY_SEEDS = [1, 2, 3, 4, 5]
COPY_STEPS = 3_000_000


def copy_engines(setting, reported=True):
    """The engines run in `setting`: for tuning every one, for the reported runs (`reported`) the
    per-sequence variants and the sweep's ends in the first setting only."""
    return [e for e in COPY_ENGINES if (not e[0].endswith("seq") or setting in PER_SEQUENCE_SETTINGS) and
            (not reported or e[0] not in ("bptt4", "bptt32") or setting in SWEEP_END_SETTINGS)]


def copy_command(setting, flags, lr, seed, steps):
    hidden, density, _ = COPY_SETTINGS[setting]
    return ["copy_task", "--cell", "gru", *flags, "--hidden", str(hidden), "--density", str(density),
            "--masks", "shared", "--lr", f"{lr:g}", "--steps", str(steps), "--seed", str(seed)]


def stage_copy_tune(args):
    for setting in COPY_SETTINGS:
        for key, _, flags in copy_engines(setting, reported=False):
            for lr in COPY_LRS:
                for seed in COPY_TUNE_SEEDS:
                    yield f"copy-tune/{setting}_{key}_lr{lr:g}_s{seed}", copy_command(setting, flags, lr, seed,
                                                                                      COPY_TUNE_STEPS)


# The first look (before this study): one learning rate for every engine, 6e5 steps, seeds 1-3,
# GRU H = 64 dense and at density 0.25. copy_task prints these as its published results.
FIRST_LOOK_ENGINES = {1.0: ["bptt:4", "bptt:16", "uoro", "snap:1"],
                      0.25: ["bptt:4", "bptt:16", "uoro", "snap:1", "snap:2", "snap:3", "rtrl"]}
FIRST_LOOK_SEEDS = [1, 2, 3]
FIRST_LOOK_STEPS = 600_000
FIRST_LOOK_LR = 0.003


def stage_first_look(args):
    for density, engines in FIRST_LOOK_ENGINES.items():
        for engine in engines:
            for seed in FIRST_LOOK_SEEDS:
                yield (f"first-look/d{density:g}_{engine.replace(':', '')}_s{seed}",
                       ["copy_task", "--cell", "gru", "--engine", engine, "--hidden", "64", "--density", f"{density:g}",
                        "--masks", "shared", "--lr", f"{FIRST_LOOK_LR:g}", "--steps", str(FIRST_LOOK_STEPS),
                        "--seed", str(seed)])


def stage_copy(args):
    chosen = copy_tuned_rates(args.out)
    for setting in COPY_SETTINGS:  # seed by seed, so that a stage stopped early has every engine
        for seed in COPY_SEEDS:
            for key, _, flags in copy_engines(setting):
                yield (f"copy/{setting}_{key}_s{seed}",
                       copy_command(setting, flags, chosen[(setting, key)], seed, COPY_STEPS))


LM_CORPUS = "bible"  # examples/study/bible.py writes train.txt, valid.txt and whole.txt here, under --out
LM_NETWORKS = {  # name: (cell, hidden, label); equal parameter counts at density 0.1 and 63 symbols
    "gru": ("gru", 128, "GRU H = 128"),
    "lstm": ("lstm", 100, "LSTM H = 100"),
}
LM_DENSITY = 0.1
LM_ENGINES = [
    ("bptt16", "BPTT(16)", ["--engine", "bptt:16"]),
    ("bptt128", "BPTT(128)", ["--engine", "bptt:128"]),
    ("uoro", "UORO", ["--engine", "uoro"]),
    ("snap1", "SnAp-1", ["--engine", "snap:1"]),
    ("snap2", "SnAp-2", ["--engine", "snap:2"]),
]
LM_LRS = [0.0001, 0.0003, 0.001, 0.003, 0.01]
LM_TUNE_SEED = 101
LM_TUNE_STEPS = 150_000
LM_SEEDS = [1, 2]
LM_STEPS = 400_000
LM_EVAL_CHARS = 30_000  # held-out characters scored at each report: 10 pieces spread over the held-out text
# A network small enough for exact RTRL: the same comparison with RTRL in it.
LM_SMALL = {"small": ("gru", 32, 0.25, "GRU H = 32"),  # 7008 and 7124 parameters
            "small_lstm": ("lstm", 25, 0.25, "LSTM H = 25")}
LM_SMALL_ENGINES = [e for e in LM_ENGINES if e[0] != "bptt128"] + [("rtrl", "RTRL", ["--engine", "rtrl"])]
LM_SMALL_STEPS = 200_000
LM_SMALL_LR = 0.003


def corpus_files(args, *names):
    paths = [os.path.join(os.path.abspath(args.out), LM_CORPUS, name) for name in names]
    for path in paths:
        if not os.path.exists(path):
            raise OSError(f"no corpus at '{path}': make it first (python3 examples/study/bible.py --out "
                          f"{os.path.join(args.out, LM_CORPUS)})")
    return paths


def lm_command(args, cell, hidden, density, flags, lr, seed, steps, split="chapters", report=50_000):
    if split in ("chapters", "ordered"):  # the training chapters shuffled, or in the book's order
        train, valid = corpus_files(args, "train.txt" if split == "chapters" else "train_ordered.txt", "valid.txt")
        text = ["--text", train, "--valid", valid]
    else:  # char_lm's own split: the whole text's last 10 % held out
        text = ["--text", corpus_files(args, "whole.txt")[0]]
    return ["char_lm", *text, "--cell", cell, "--hidden", str(hidden), "--density", str(density), *flags,
            "--lr", f"{lr:g}", "--steps", str(steps), "--seed", str(seed), "--report", str(report),
            "--eval-chars", str(LM_EVAL_CHARS), "--sample", "0"]


# Why held-out bits per character rose in the trial (GRU H = 128, density 0.25, lr 0.002,
# 400,000 characters): one factor changed at a time. (key, engine flags, lr, split): split "tail"
# is char_lm's own (the last 10 % held out), "ordered" every tenth chapter held out and the rest
# read in the book's order, "chapters" the same with the training chapters shuffled.
LM_WHY = [
    ("bptt16_tail", ["--engine", "bptt:16"], 0.002, "tail"),
    ("snap1_tail", ["--engine", "snap:1"], 0.002, "tail"),
    ("bptt16_ordered", ["--engine", "bptt:16"], 0.002, "ordered"),
    ("snap1_ordered", ["--engine", "snap:1"], 0.002, "ordered"),
    ("bptt16_chapters", ["--engine", "bptt:16"], 0.002, "chapters"),
    ("snap1_chapters", ["--engine", "snap:1"], 0.002, "chapters"),
    ("bptt16_chapters_lr0.0005", ["--engine", "bptt:16"], 0.0005, "chapters"),
    ("snap1_chapters_lr0.0005", ["--engine", "snap:1"], 0.0005, "chapters"),
    ("snap1_chapters_every16", ["--engine", "snap:1", "--update-every", "16"], 0.002, "chapters"),
    ("uoro_chapters", ["--engine", "uoro"], 0.002, "chapters"),
    ("uoro_chapters_lr0.0002", ["--engine", "uoro"], 0.0002, "chapters"),
    ("uoro_chapters_noclip", ["--engine", "uoro", "--clip", "0"], 0.002, "chapters"),
]
LM_WHY_STEPS = 400_000


def stage_lm_why(args):
    for key, flags, lr, split in LM_WHY:
        yield f"lm-why/{key}", lm_command(args, "gru", 128, 0.25, flags, lr, 1, LM_WHY_STEPS, split, report=20_000)


def stage_lm_tune(args):
    cell, hidden, _ = LM_NETWORKS["gru"]
    for key, _, flags in LM_ENGINES:
        for lr in LM_LRS:
            yield (f"lm-tune/gru_{key}_lr{lr:g}",
                   lm_command(args, cell, hidden, LM_DENSITY, flags, lr, LM_TUNE_SEED, LM_TUNE_STEPS, report=20_000))


def stage_lm(args):
    chosen = lm_tuned_rates(args.out)
    for seed in LM_SEEDS:
        for network, (cell, hidden, _) in LM_NETWORKS.items():
            for key, _, flags in LM_ENGINES:
                yield (f"lm/{network}_{key}_s{seed}",
                       lm_command(args, cell, hidden, LM_DENSITY, flags, chosen[key], seed, LM_STEPS, report=20_000))
        for network, (cell, hidden, density, _) in LM_SMALL.items():
            for key, _, flags in LM_SMALL_ENGINES:
                yield (f"lm/{network}_{key}_s{seed}",
                       lm_command(args, cell, hidden, density, flags, LM_SMALL_LR, seed, LM_SMALL_STEPS,
                                  report=20_000))


# Gradient quality: (name, flags). Along training on the copy task and on the text, then short runs
# across density, H (and n, SnAp-1 ... SnAp-4) at the copy task's start.
QUALITY_RUNS = [
    ("train_copy_h64d25", ["--task", "copy", "--hidden", "64", "--density", "0.25", "--steps", "100000",
                           "--every", "2000"]),
    ("train_copy_h128d10", ["--task", "copy", "--hidden", "128", "--density", "0.1", "--steps", "50000",
                            "--every", "2000"]),
    ("train_text_h32d25", ["--task", "text", "--hidden", "32", "--density", "0.25", "--steps", "50000",
                           "--every", "2000"]),
    ("train_copy_rnn_h64d25", ["--task", "copy", "--cell", "rnn", "--leak", "0.5", "--hidden", "64",
                               "--density", "0.25", "--steps", "50000", "--every", "2000"]),
] + [(f"density_h64d{d:g}", ["--task", "copy", "--hidden", "64", "--density", f"{d:g}", "--steps", "20000",
                             "--every", "20000", "--snap-max", "4"]) for d in (0.1, 0.25, 0.5, 1.0)] + [
    (f"hidden_h{h}d25", ["--task", "copy", "--hidden", str(h), "--density", "0.25", "--steps", "20000",
                         "--every", "20000", "--snap-max", "4"]) for h in (16, 32)]


def stage_quality(args):
    for name, flags in QUALITY_RUNS:
        if "text" in flags:
            flags = flags + ["--text", corpus_files(args, "train.txt")[0]]
        yield f"quality/{name}", ["gradient_quality", *flags, "--seed", "1"]


# ---------------------------------------------------------------------------------------------
# Scheduling.

def binary(args, name):
    return os.path.join(os.path.abspath(args.build), "examples", name)


def job_line(args, name, command):
    """One shell line: runs `command` unless its CSV is there, writing the CSV only when it succeeds."""
    path = os.path.join(os.path.abspath(args.out), name)
    program = binary(args, command[0])
    argv = " ".join(shlex.quote(a) for a in [program, *command[1:], "--csv", path + ".csv.part"])
    # The run's wall time goes to NAME.seconds (the report's cost table).
    return (f"test -s {shlex.quote(path + '.csv')} || {{ start=$(date +%s); {argv} > {shlex.quote(path + '.log')} "
            f"2>&1 && mv {shlex.quote(path + '.csv.part')} {shlex.quote(path + '.csv')} && "
            f"echo $(( $(date +%s) - start )) > {shlex.quote(path + '.seconds')}; }}")


STAGES = {"first-look": stage_first_look, "copy-tune": stage_copy_tune, "copy": stage_copy, "lm-why": stage_lm_why, "lm-tune": stage_lm_tune,
          "lm": stage_lm, "quality": stage_quality}


def write_jobs(args):
    runs = [run for run in STAGES[args.stage](args) if not args.only or any(o in run[0] for o in args.only)]
    for program in sorted({command[0] for _, command in runs}):
        if not os.access(binary(args, program), os.X_OK):
            raise OSError(f"no {program} program at '{binary(args, program)}' (build it: cmake --build {args.build} "
                          f"--target {program})")
    for name, _ in runs:
        os.makedirs(os.path.join(args.out, os.path.dirname(name)), exist_ok=True)
    path = os.path.join(args.out, f"{args.stage}.jobs")
    with open(path, "w") as f:
        for name, command in runs:
            f.write(job_line(args, name, command) + "\n")
    done = sum(os.path.exists(os.path.join(args.out, name + ".csv")) for name, _ in runs)
    print(f"study: {args.stage}: {len(runs)} runs ({done} done already), one per line of {path}", file=sys.stderr)
    return path, len(runs)


def run_stage(args):
    jobs, count = write_jobs(args)
    if args.via == "local":
        workers = args.jobs or os.cpu_count() or 1
        # xargs runs each line as one `sh -c` script, `workers` at a time; it exits non-zero if any run failed.
        with open(jobs) as f:
            result = subprocess.run(["xargs", "-d", "\n", "-n", "1", "-P", str(workers), "sh", "-c"], stdin=f)
        if result.returncode != 0:
            raise RuntimeError(f"some runs of {args.stage} failed: see the .log files in {args.out}/{args.stage}")
    elif args.via == "slurm":
        script = os.path.join(args.out, f"{args.stage}.sbatch")
        limit = f"%{args.jobs}" if args.jobs else ""
        with open(script, "w") as f:
            f.write("#!/bin/bash\n"
                    f"#SBATCH --job-name=snap-{args.stage}\n"
                    f"#SBATCH --array=1-{count}{limit}\n"
                    "#SBATCH --cpus-per-task=1\n"
                    "#SBATCH --time=04:00:00\n"
                    f"#SBATCH --output={os.path.abspath(args.out)}/slurm-%A_%a.out\n"
                    f"sed -n \"${{SLURM_ARRAY_TASK_ID}}p\" {shlex.quote(os.path.abspath(jobs))} | bash\n")
        print(f"study: submit the {count} runs as one job array: sbatch {script}\n"
              f"       then, when the array is done: {os.path.join(HERE, 'study.py')} report --out {args.out}", file=sys.stderr)
    else:  # GNU parallel over ssh; the hosts see this folder at the same path
        if not args.hosts:
            raise ValueError("--via parallel needs --hosts FILE (GNU parallel's --sshloginfile)")
        if not shutil.which("parallel"):
            raise OSError("GNU parallel is not installed (apt-get install parallel)")
        with open(jobs) as f:
            result = subprocess.run(["parallel", "--sshloginfile", args.hosts, "--halt", "never"], stdin=f)
        if result.returncode != 0:
            raise RuntimeError(f"some runs of {args.stage} failed: see the .log files in {args.out}/{args.stage}")


# ---------------------------------------------------------------------------------------------
# Reading results.

def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def copy_run(path):
    rows = read_csv(path)
    return [(int(r["data_time"]), int(r["length"])) for r in rows], float(rows[-1]["wall_seconds"])


def length_at(rows, t):
    """L reached by data time t (the last recorded point at or before t)."""
    reached = 1
    for data_time, length in rows:
        if data_time > t:
            break
        reached = length
    return reached


def mean_length(rows, steps):
    """L averaged over data time, 0..steps: the area under the curriculum curve, per step."""
    area, last_t, last_l = 0.0, 0, 1
    for data_time, length in rows:
        data_time = min(data_time, steps)
        area += (data_time - last_t) * last_l
        last_t, last_l = data_time, length
    return (area + (steps - last_t) * last_l) / steps


def copy_tune_scores(out):
    """{(setting, engine key): {lr: (mean final L, mean area, count)}} from the tuning runs present."""
    scores = {}
    for setting in COPY_SETTINGS:
        for key, _, _ in copy_engines(setting, reported=False):
            for lr in COPY_LRS:
                runs = []
                for seed in COPY_TUNE_SEEDS:
                    path = os.path.join(out, "copy-tune", f"{setting}_{key}_lr{lr:g}_s{seed}.csv")
                    if os.path.exists(path):
                        runs.append(copy_run(path)[0])
                if runs:
                    scores.setdefault((setting, key), {})[lr] = (
                        statistics.mean(r[-1][1] for r in runs),
                        statistics.mean(mean_length(r, COPY_TUNE_STEPS) for r in runs), len(runs))
    return scores


def copy_tuned_rates(out):
    """Each engine's learning rate: the best mean final L over the tuning seeds, ties broken by the
    mean L over the budget (faster learning)."""
    scores = copy_tune_scores(out)
    chosen = {}
    for setting in COPY_SETTINGS:
        for key, _, _ in copy_engines(setting, reported=False):
            grid = scores.get((setting, key), {})
            if len(grid) < len(COPY_LRS) or any(v[2] < len(COPY_TUNE_SEEDS) for v in grid.values()):
                raise RuntimeError(f"copy-tune is not complete for {setting} {key}: run 'study.py run copy-tune'")
            chosen[(setting, key)] = max(grid, key=lambda lr: (grid[lr][0], grid[lr][1]))
    return chosen


def lm_tune_scores(out):
    """{engine key: {lr: held-out bits per character at the end of the tuning run}} (NaN when it diverged)."""
    scores = {}
    for key, _, _ in LM_ENGINES:
        for lr in LM_LRS:
            path = os.path.join(out, "lm-tune", f"gru_{key}_lr{lr:g}.csv")
            if os.path.exists(path):
                scores.setdefault(key, {})[lr] = float(read_csv(path)[-1]["heldout_bits"])
    return scores


def lm_tuned_rates(out):
    """Each engine's learning rate for language modelling: the lowest held-out bits per character
    at the end of the tuning run on the GRU (used for the LSTM too)."""
    scores = lm_tune_scores(out)
    chosen = {}
    for key, _, _ in LM_ENGINES:
        grid = scores.get(key, {})
        if len(grid) < len(LM_LRS):
            raise RuntimeError(f"lm-tune is not complete for {key}: run 'study.py run lm-tune'")
        finite = {lr: v for lr, v in grid.items() if math.isfinite(v)}
        chosen[key] = min(finite, key=finite.get) if finite else min(LM_LRS)
    return chosen


def main():
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--out", default=os.path.join(ROOT, "build", "study"),
                        help="folder of the runs' CSVs and logs (default: %(default)s)")
    common.add_argument("--build", default=os.path.join(ROOT, "build"), help="CMake build folder (default: %(default)s)")
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", parents=[common], help="run a stage's runs through a scheduler")
    run.add_argument("stage", choices=sorted(STAGES))
    run.add_argument("--via", choices=["local", "slurm", "parallel"], default="local")
    run.add_argument("--jobs", type=int, default=0,
                     help="runs at a time (local: default every core; slurm: the array's % limit)")
    run.add_argument("--hosts", help="with --via parallel: GNU parallel's --sshloginfile")
    run.add_argument("--only", action="append", default=[],
                     help="only the runs whose name contains this text (repeatable), e.g. --only h64d25")
    report = commands.add_parser("report", parents=[common],
                                 help="write docs/results.md's figures and tables from the runs present")
    report.add_argument("--docs", default=os.path.join(ROOT, "docs", "results"),
                        help="folder for the figures (PNG) and tables (Markdown) (default: %(default)s)")
    args = parser.parse_args()
    if args.command == "run":
        run_stage(args)
    else:
        sys.path.insert(0, HERE)
        import report
        report.main(args)


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, RuntimeError, ImportError) as error:  # a missing file or package: no traceback
        sys.exit(f"study.py: {error}")
