"""Tests of the study's tools (examples/study): the corpus loader bible.py and the scheduling and
tuning logic of study.py. Run by ctest (study_tools) with the standard library's unittest."""
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "examples", "study"))

import bible  # noqa: E402
import study  # noqa: E402

SAMPLE = os.path.join(HERE, "data", "bible_sample.txt")


class BibleLoader(unittest.TestCase):
    def chapters(self):
        with open(SAMPLE) as f:
            return bible.parse_chapters(f.read().splitlines())

    def test_parses_books_chapters_and_verses_without_labels(self):
        chapters = self.chapters()
        self.assertEqual([(b, c, len(v)) for b, c, v in chapters],
                         [("Ge", 1, 2), ("Ge", 2, 2), ("Ge", 3, 1), ("Ex", 1, 2), ("Ex", 2, 1), ("1Co", 1, 2)])
        self.assertEqual(chapters[0][2][0], "In the beginning the test made a small world.")
        self.assertEqual(chapters[3][2][0], "Now a second book, with a colon: here.")  # a colon inside a verse stays
        self.assertEqual(chapters[5][2][1], "Its chapters are split like the others.")

    def test_holds_out_every_nth_chapter_in_order(self):
        train, held_out = bible.split_chapters(self.chapters(), 3)
        # chapters 3 (Ge 3) and 6 (1Co 1) are held out; the rest, in order, is for training
        self.assertEqual(held_out, "The third chapter has one verse only; it is held out at every 3.\n"
                                   "A numbered book, whose label starts with a digit.\n"
                                   "Its chapters are split like the others.\n")
        self.assertTrue(train.startswith("In the beginning the test made a small world.\nAnd the world"))
        self.assertIn("Another chapter of the second book.\n", train)
        self.assertNotIn("held out at every 3", train)
        self.assertNotIn("Ge1:1", train + held_out)
        self.assertEqual(len(train) + len(held_out), sum(len(v) + 1 for _, _, vs in self.chapters() for v in vs))

    def test_shuffles_the_training_chapters_only_with_a_seed(self):
        ordered, held_out = bible.split_chapters(self.chapters(), 2)
        shuffled, same_held_out = bible.split_chapters(self.chapters(), 2, shuffle_seed=1)
        self.assertEqual(held_out, same_held_out)
        self.assertNotEqual(ordered, shuffled)
        # the same chapters (Ge 1, Ge 3, Ex 2), each whole, in another order
        chapters = ["In the beginning the test made a small world.\nAnd the world was short, and the lines were few.\n",
                    "The third chapter has one verse only; it is held out at every 3.\n",
                    "Another chapter of the second book.\n"]
        self.assertEqual(ordered, "".join(chapters))
        self.assertEqual(sorted(c for c in chapters if c in shuffled), sorted(chapters))
        self.assertEqual(len(shuffled), len(ordered))
        self.assertEqual(shuffled, bible.split_chapters(self.chapters(), 2, shuffle_seed=1)[0])  # reproducible

    def test_refuses_what_is_not_bible_output(self):
        with self.assertRaisesRegex(bible.CorpusError, r"line 2: expected '<Book><chapter>:<verse> <text>', got 'oops"):
            bible.parse_chapters(["Ge1:1 fine", "oops, a line without a label"])
        with self.assertRaisesRegex(bible.CorpusError, "line 2: Ge 1:3 follows verse 1"):
            bible.parse_chapters(["Ge1:1 a", "Ge1:3 c"])
        with self.assertRaisesRegex(bible.CorpusError, "line 1: Ge 2 starts at verse 2, expected 1"):
            bible.parse_chapters(["Ge2:2 b"])
        with self.assertRaisesRegex(bible.CorpusError, "no verses"):
            bible.parse_chapters(["", "  "])
        with self.assertRaisesRegex(bible.CorpusError, "every: expected an integer >= 2, got 1"):
            bible.split_chapters(self.chapters(), 1)
        with self.assertRaisesRegex(bible.CorpusError, "6 chapters: need at least every = 7"):
            bible.split_chapters(self.chapters(), 7)

    def test_the_script_writes_the_three_files(self):
        with tempfile.TemporaryDirectory() as out:
            result = subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "examples", "study", "bible.py"),
                                     "--input", SAMPLE, "--every", "3", "--out", out], capture_output=True, text=True)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn("6 chapters", result.stdout)
            with open(os.path.join(out, "valid.txt")) as f:
                self.assertTrue(f.read().startswith("The third chapter"))
            with open(os.path.join(out, "train_ordered.txt")) as f:
                self.assertTrue(f.read().startswith("In the beginning"))
            with open(os.path.join(out, "whole.txt")) as f:
                self.assertTrue(f.read().endswith("Its chapters are split like the others.\n"))
            bad = os.path.join(out, "bad.txt")
            with open(bad, "w") as f:
                f.write("no label here\n")
            result = subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "examples", "study", "bible.py"),
                                     "--input", bad, "--out", out], capture_output=True, text=True)
            self.assertEqual(result.returncode, 1)
            self.assertIn("bible.py: line 1: expected", result.stderr)
            self.assertNotIn("Traceback", result.stderr)


class Scheduling(unittest.TestCase):
    def setUp(self):
        self.directory = tempfile.mkdtemp()
        self.addCleanup(shutil.rmtree, self.directory)
        # A stand-in copy_task: writes its --csv argument, or fails when its --seed is 13.
        os.makedirs(os.path.join(self.directory, "build", "examples"))
        self.program = os.path.join(self.directory, "build", "examples", "copy_task")
        with open(self.program, "w") as f:
            f.write("#!/bin/sh\nwhile [ $# -gt 0 ]; do case $1 in --csv) csv=$2;; --seed) seed=$2;; esac; shift; done\n"
                    "[ \"$seed\" = 13 ] && { echo failed >&2; printf 'half' > \"$csv\"; exit 1; }\n"
                    "echo ran >> \"$csv.count\"; printf 'data_time,length\\n0,1\\n' > \"$csv\"\n")
        os.chmod(self.program, os.stat(self.program).st_mode | stat.S_IEXEC)
        self.args = type("Args", (), {"out": os.path.join(self.directory, "out"),
                                      "build": os.path.join(self.directory, "build")})()

    def run_line(self, name, seed):
        line = study.job_line(self.args, name, ["copy_task", "--seed", str(seed)])
        os.makedirs(os.path.dirname(os.path.join(self.args.out, name)), exist_ok=True)
        return subprocess.run(["sh", "-c", line]).returncode

    def test_a_run_writes_its_csv_only_when_it_succeeds_and_is_not_run_again(self):
        csv = os.path.join(self.args.out, "stage", "good.csv")
        self.assertEqual(self.run_line("stage/good", 1), 0)
        self.assertTrue(os.path.exists(csv))
        with open(os.path.join(self.args.out, "stage", "good.seconds")) as f:
            self.assertGreaterEqual(int(f.read()), 0)  # the run's wall time, for the report
        self.assertEqual(self.run_line("stage/good", 1), 0)  # its CSV is there: skipped
        with open(csv + ".part.count") as f:
            self.assertEqual(f.read(), "ran\n")
        self.assertNotEqual(self.run_line("stage/bad", 13), 0)
        self.assertFalse(os.path.exists(os.path.join(self.args.out, "stage", "bad.csv")))
        self.assertFalse(os.path.exists(os.path.join(self.args.out, "stage", "bad.seconds")))
        with open(os.path.join(self.args.out, "stage", "bad.log")) as f:
            self.assertIn("failed", f.read())

    def test_slurm_gets_one_array_task_per_run(self):
        args = type("Args", (), {"out": self.args.out, "build": self.args.build, "stage": "copy-tune",
                                 "via": "slurm", "jobs": 4, "only": ["h64d25_uoro"], "hosts": None})()
        study.run_stage(args)
        with open(os.path.join(self.args.out, "copy-tune.jobs")) as f:
            jobs = f.read().splitlines()
        self.assertEqual(len(jobs), len(study.COPY_LRS) * len(study.COPY_TUNE_SEEDS))
        self.assertTrue(all("--engine uoro" in j and "--hidden 64" in j for j in jobs))
        with open(os.path.join(self.args.out, "copy-tune.sbatch")) as f:
            script = f.read()
        self.assertIn(f"#SBATCH --array=1-{len(jobs)}%4\n", script)
        self.assertIn('sed -n "${SLURM_ARRAY_TASK_ID}p"', script)

    def test_local_runs_every_line(self):
        args = type("Args", (), {"out": self.args.out, "build": self.args.build, "stage": "copy-tune",
                                 "via": "local", "jobs": 2, "only": ["h128d10_snap1"], "hosts": None})()
        study.run_stage(args)
        done = os.listdir(os.path.join(self.args.out, "copy-tune"))
        self.assertEqual(len([d for d in done if d.endswith(".csv")]), len(study.COPY_LRS) * len(study.COPY_TUNE_SEEDS))

    def test_a_missing_program_is_named(self):
        os.remove(self.program)
        args = type("Args", (), {"out": self.args.out, "build": self.args.build, "stage": "copy-tune",
                                 "via": "local", "jobs": 1, "only": [], "hosts": None})()
        with self.assertRaisesRegex(OSError, "no copy_task program at .*build/examples/copy_task"):
            study.run_stage(args)


class Tuning(unittest.TestCase):
    def test_curriculum_summaries(self):
        rows = [(0, 1), (100, 2), (300, 3)]
        self.assertEqual(study.length_at(rows, 99), 1)
        self.assertEqual(study.length_at(rows, 100), 2)
        self.assertEqual(study.length_at(rows, 10 ** 9), 3)
        self.assertAlmostEqual(study.mean_length(rows, 400), (100 * 1 + 200 * 2 + 100 * 3) / 400)

    def test_the_best_final_length_wins_ties_go_to_the_faster(self):
        with tempfile.TemporaryDirectory() as out:
            os.makedirs(os.path.join(out, "copy-tune"))
            steps = study.COPY_TUNE_STEPS
            for setting in study.COPY_SETTINGS:
                for key, _, _ in study.copy_engines(setting, reported=False):
                    for lr in study.COPY_LRS:
                        for seed in study.COPY_TUNE_SEEDS:
                            # lr 0.001 and 0.003 both end at L = 5; 0.003 gets there first
                            final = 5 if lr in (0.001, 0.003) else 4
                            rise = steps // 2 if lr == 0.001 else steps // 4
                            with open(os.path.join(out, "copy-tune", f"{setting}_{key}_lr{lr:g}_s{seed}.csv"), "w") as f:
                                f.write(f"data_time,length,recent_loss_bits,wall_seconds,sequences,updates\n"
                                        f"0,1,0,0,0,0\n{rise},{final},0,1,0,0\n{steps},{final},0,2,0,0\n")
            chosen = study.copy_tuned_rates(out)
            self.assertEqual(set(chosen.values()), {0.003})
            os.remove(os.path.join(out, "copy-tune", f"h64d25_uoro_lr0.01_s{study.COPY_TUNE_SEEDS[0]}.csv"))
            with self.assertRaisesRegex(RuntimeError, "copy-tune is not complete for h64d25 uoro"):
                study.copy_tuned_rates(out)


if __name__ == "__main__":
    unittest.main()
