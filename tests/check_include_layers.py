#!/usr/bin/env python3
"""Every include inside include/snap points down the layers (docs/design.md, "Layers").

The folders of include/snap, from the bottom: core, archive, pattern, cells, engines, train,
tasks, io; snap.hpp includes everything. A header may include headers of its own folder and of
the folders below it, never above. Exits 1 and names each include that points up."""
import pathlib
import re
import sys

LAYERS = ["core", "archive", "pattern", "cells", "engines", "train", "tasks", "io"]
root = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else pathlib.Path(__file__).resolve().parents[1] / "include")
include = re.compile(r'^\s*#\s*include\s+[<"]snap/([a-z_]+)/')
problems = []
headers = sorted((root / "snap").rglob("*.hpp"))
for header in headers:
    relative = header.relative_to(root / "snap")
    if len(relative.parts) == 1:
        continue  # snap.hpp, the umbrella, includes everything
    folder = relative.parts[0]
    if folder not in LAYERS:
        problems.append(f"{relative}: folder '{folder}' is not one of the layers {LAYERS}")
        continue
    for number, line in enumerate(header.read_text().splitlines(), 1):
        match = include.match(line)
        if match and match.group(1) in LAYERS and LAYERS.index(match.group(1)) > LAYERS.index(folder):
            problems.append(f"{relative}:{number}: includes snap/{match.group(1)}/, a layer above {folder}/")
for problem in problems:
    print(problem)
print(f"{len(headers)} headers checked, {len(problems)} includes point up")
sys.exit(1 if problems or not headers else 0)
