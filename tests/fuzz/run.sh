#!/usr/bin/env bash
# Builds the libFuzzer target for the checkpoint loader with clang++ (address and undefined-
# behaviour sanitizers), writes its seed corpus of valid checkpoints, and fuzzes for a bounded
# time. Exits nonzero when the fuzzer finds anything (crash, sanitizer report, an exception
# other than snap::FormatError, a refused load that changed the state, an accepted one holding
# a value out of its domain). The mutations are structure-aware (see fuzz_checkpoint.cpp);
# SNAP_FUZZ_RAW=1 restricts them to libFuzzer's byte-level ones, for comparison.
#
#   bash tests/fuzz/run.sh [seconds] [build folder]      # defaults: 60, build-fuzz
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
seconds=${1:-60}
out=${2:-build-fuzz}
compiler=$(command -v clang++ || command -v clang++-14 || true)
if [[ -z $compiler ]]; then
  echo "fuzz: clang++ not found (apt-get install clang libclang-rt-14-dev)" >&2
  exit 1
fi
eigen=$(pkg-config --cflags-only-I eigen3 2>/dev/null || echo "-I/usr/include/eigen3")
mkdir -p "$out/seeds" "$out/corpus"
start=$SECONDS
# shellcheck disable=SC2086  # $eigen holds -I flags
"$compiler" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Werror -Iinclude $eigen tests/fuzz/fuzz_checkpoint.cpp -o "$out/fuzz_checkpoint"
echo "fuzz: built $out/fuzz_checkpoint in $((SECONDS - start)) s"
rm -f "$out"/seeds/*
SNAP_FUZZ_SEEDS="$out/seeds" "$out/fuzz_checkpoint" -runs=0 "$out/seeds" >/dev/null 2>&1
echo "fuzz: seed corpus of $(find "$out/seeds" -type f | wc -l) valid checkpoints ($(du -sk "$out/seeds" | cut -f1) KiB)"
# New inputs go to corpus/; findings to $out/crash-*; the run ends after $seconds seconds.
log="$out/fuzz.log"
status=0
"$out/fuzz_checkpoint" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 -max_len=65536 \
  -print_final_stats=1 -artifact_prefix="$out/" "$out/corpus" "$out/seeds" >"$log" 2>&1 || status=$?
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
coverage=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
findings=$(find "$out" -maxdepth 1 -name 'crash-*' -o -maxdepth 1 -name 'leak-*' -o -maxdepth 1 -name 'timeout-*' \
  -o -maxdepth 1 -name 'oom-*' | wc -l)
echo "fuzz: ${runs:-?} executions in ${seconds} s (${speed:-?}/s), ${coverage:-cov: ?} edges, corpus $(find "$out/corpus" -type f | wc -l) inputs, $findings findings"
# How far the inputs got (printed by the target at exit).
grep '^fuzz_checkpoint: [0-9]' "$log" | tail -1 | sed 's/^fuzz_checkpoint:/fuzz:/' || true
if [[ $status -ne 0 || $findings -ne 0 ]]; then
  tail -60 "$log" >&2
  echo "fuzz: FAILED (status $status)" >&2
  exit 1
fi
