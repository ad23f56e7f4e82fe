#!/usr/bin/env bash
# The whole study of docs/results.md on this machine: builds the programs, makes the corpus, runs
# every stage (each run on one core, as many at a time as there are cores) and writes the figures
# and tables. Stages already run are skipped run by run, so this can be stopped and started again.
# On a cluster, run the stages one by one instead (docs/results.md, "Running the study").
#
#   bash examples/study/run.sh [stage...]      (default: every stage, in order)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
stages=("$@")
[[ ${#stages[@]} -gt 0 ]] || stages=(copy-tune copy lm-why lm-tune lm quality)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build --target copy_task char_lm gradient_quality -j "$(nproc)"
[[ -s build/study/bible/valid.txt ]] || /usr/bin/python3 examples/study/bible.py --out build/study/bible
for stage in "${stages[@]}"; do
  start=$(date +%s)
  /usr/bin/python3 examples/study/study.py run "$stage"
  echo "study: $stage took $(( $(date +%s) - start )) s" >&2
done
/usr/bin/python3 examples/study/study.py report
