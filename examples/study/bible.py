#!/usr/bin/env python3
"""The language-modelling corpus of docs/results.md: the King James Bible from Debian's bible-kjv
package, verse labels stripped, split by chapter so that training and held-out text come from the
same distribution: every tenth chapter (the 10th, 20th, ... of the 1189, in the book's order) is
held out, the rest is for training. An online learner reads its training text in order, so that
order matters too: train.txt holds the training chapters shuffled (a fixed seed), so that every
stretch of it is drawn from the distribution of the held-out text, valid.txt the held-out chapters
(one verse per line). It also writes train_ordered.txt, the training chapters in the book's order,
and whole.txt, the whole text in order (char_lm's own split of it holds out its last 10 %, the
epistles and Revelation); the text is never committed, this script makes it.

    python3 examples/study/bible.py [--out build/study/bible] [--every 10]

Needs the `bible` program (apt-get install bible-kjv; as root this script installs it).
"""
import argparse
import os
import random
import re
import shutil
import subprocess
import sys

# "Ge1:1 In the beginning ...", "1Co13:4 Charity ...": a book's abbreviation (with a leading 1-3 for
# numbered books), the chapter, the verse, one space, the verse's text.
VERSE = re.compile(r"([1-3]?[A-Za-z]+)([0-9]+):([0-9]+) (.*)")


class CorpusError(ValueError):
    pass


def parse_chapters(lines):
    """[(book, chapter, [verse texts])] in the order of `lines`, from `bible -f` output.

    Refuses (CorpusError naming the line) a line that is not "<Book><chapter>:<verse> <text>", a
    verse that does not follow its predecessor (1, 2, 3, ... within a chapter), and no verses."""
    chapters = []
    for number, line in enumerate(lines, 1):
        line = line.rstrip("\n")
        if not line.strip():
            continue
        match = VERSE.fullmatch(line)
        if not match:
            raise CorpusError(f"line {number}: expected '<Book><chapter>:<verse> <text>', got {line[:60]!r}")
        book, chapter, verse, text = match.group(1), int(match.group(2)), int(match.group(3)), match.group(4)
        if not chapters or (chapters[-1][0], chapters[-1][1]) != (book, chapter):
            if verse != 1:
                raise CorpusError(f"line {number}: {book} {chapter} starts at verse {verse}, expected 1")
            chapters.append((book, chapter, []))
        elif verse != len(chapters[-1][2]) + 1:
            raise CorpusError(f"line {number}: {book} {chapter}:{verse} follows verse {len(chapters[-1][2])}")
        chapters[-1][2].append(text)
    if not chapters:
        raise CorpusError("no verses in the input")
    return chapters


def split_chapters(chapters, every, shuffle_seed=None):
    """(training text, held-out text): chapter i (from 1) is held out when i is a multiple of `every`.
    With `shuffle_seed`, the training chapters come in an order shuffled with that seed (the
    held-out ones stay in the book's order)."""
    if every < 2:
        raise CorpusError(f"every: expected an integer >= 2, got {every}")
    if len(chapters) < every:
        raise CorpusError(f"{len(chapters)} chapters: need at least every = {every} to hold one out")
    train, held_out = [], []
    for i, (_, _, verses) in enumerate(chapters, 1):
        (held_out if i % every == 0 else train).append("".join(v + "\n" for v in verses))
    if shuffle_seed is not None:
        random.Random(shuffle_seed).shuffle(train)
    return "".join(train), "".join(held_out)


def read_bible():
    if not shutil.which("bible"):
        if os.geteuid() != 0:
            raise OSError("the `bible` program is missing: apt-get install bible-kjv (as root)")
        subprocess.run(["apt-get", "install", "-y", "-q", "bible-kjv"], check=True, stdout=subprocess.DEVNULL)
    output = subprocess.run(["bible", "-f", "Genesis 1:1-Revelation 22:21"], check=True, capture_output=True,
                            text=True).stdout
    return output.splitlines()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                                                      "build", "study", "bible"))
    parser.add_argument("--every", type=int, default=10, help="hold out every N-th chapter (default: %(default)s)")
    parser.add_argument("--shuffle-seed", type=int, default=1,
                        help="order of the training chapters in train.txt (default: %(default)s)")
    parser.add_argument("--input", help="read `bible -f` output from this file instead of running bible")
    args = parser.parse_args()
    if args.input:
        with open(args.input) as f:
            lines = f.read().splitlines()
    else:
        lines = read_bible()
    chapters = parse_chapters(lines)
    train, held_out = split_chapters(chapters, args.every, shuffle_seed=args.shuffle_seed)
    ordered, _ = split_chapters(chapters, args.every)
    os.makedirs(args.out, exist_ok=True)
    whole = "".join(v + "\n" for _, _, verses in chapters for v in verses)
    for name, text in (("train.txt", train), ("train_ordered.txt", ordered), ("valid.txt", held_out),
                       ("whole.txt", whole)):
        with open(os.path.join(args.out, name), "w") as f:
            f.write(text)
    print(f"bible: {len(chapters)} chapters, {len(train):,} training and {len(held_out):,} held-out characters "
          f"(every {args.every}th chapter) in {os.path.normpath(args.out)}")


if __name__ == "__main__":
    try:
        main()
    except (OSError, ValueError, subprocess.CalledProcessError) as error:
        sys.exit(f"bible.py: {error}")
