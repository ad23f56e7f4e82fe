"""char_lm with a held-out file (--valid), as the study runs it: the corpus made by bible.py from a
small sample in `bible -f`'s format, every third chapter held out. Checks that char_lm trains on
all of --text, scores all of --valid (the alphabet covers both: ';' occurs only in the held-out
text) and writes one CSV row before training and one per report.

    check_char_lm_valid.py CHAR_LM WORK_DIR"""
import csv
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
char_lm, work = sys.argv[1], sys.argv[2]
os.makedirs(work, exist_ok=True)
subprocess.run([sys.executable, os.path.join(HERE, "..", "..", "examples", "study", "bible.py"), "--input",
                os.path.join(HERE, "data", "bible_sample.txt"), "--every", "3", "--out", work], check=True)
train, valid = os.path.join(work, "train.txt"), os.path.join(work, "valid.txt")
with open(train) as f:
    train_text = f.read()
with open(valid) as f:
    valid_text = f.read()
assert ";" in valid_text and ";" not in train_text, "the sample should have a character only in its held-out text"
table = os.path.join(work, "log.csv")
output = subprocess.run([char_lm, "--text", train, "--valid", valid, "--hidden", "8", "--steps", "200", "--report",
                         "100", "--eval-chars", "100000", "--sample", "0", "--csv", table],
                        check=True, capture_output=True, text=True).stdout
print(output)
header = re.search(r"(\d+) training and (\d+) held-out characters, (\d+) symbols", output)
assert header, "char_lm's first line names its corpus"
assert int(header.group(1)) == len(train_text), (header.group(1), len(train_text))
assert int(header.group(2)) == len(valid_text), (header.group(2), len(valid_text))
assert int(header.group(3)) == len(set(train_text + valid_text)), (header.group(3), len(set(train_text + valid_text)))
with open(table) as f:
    rows = list(csv.DictReader(f))
assert [int(r["step"]) for r in rows] == [0, 100, 200], rows
assert [int(r["characters"]) for r in rows] == [0, 100, 200], rows
reported = [float(x) for x in re.findall(r"held-out ([0-9.]+) bits/char", output)]
assert len(reported) == 3 and all(abs(float(r["heldout_bits"]) - x) < 5e-4 for r, x in zip(rows, reported)), (rows, reported)
print("char_lm --valid: trained on all of --text, scored --valid, logged", len(rows), "rows")
