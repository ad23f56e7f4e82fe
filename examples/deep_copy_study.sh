#!/usr/bin/env bash
# Issue 13's copy-task comparison of depth at equal parameter count (docs/results.md, "Depth"):
# a 1-layer GRU of H = 64 against 2-layer GRUs of H = 28 (4032 and 4116 parameters), recurrent
# density 0.25 (shared masks), SnAp-2 (over the stack's joint graph, and per layer), the same
# budget, learning rate and seeds. Prints the L each run reaches and their mean and range.
#
#   bash examples/deep_copy_study.sh [build dir] [steps] [seeds...]   (defaults: build 600000 1 2 3)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
build=${1:-build}
steps=${2:-600000}
shift $(( $# > 2 ? 2 : $# ))
seeds=("$@")
[[ ${#seeds[@]} -gt 0 ]] || seeds=(1 2 3)
program="$build/examples/copy_task"
[[ -x "$program" ]] || { echo "deep_copy_study: $program not built (cmake --build $build --target copy_task)" >&2; exit 1; }
out="$build/deep_study"
mkdir -p "$out"
configs=(
  "1 x GRU H=64, SnAp-2|--layers 1 --hidden 64 --engine snap:2"
  "2 x GRU H=28, SnAp-2 joint|--layers 2 --hidden 28 --engine snap:2"
  "2 x GRU H=28, SnAp-2 per layer|--layers 2 --hidden 28 --engine snap:2 --per-layer"
)
printf '%-34s %-10s %s\n' "network, engine" "parameters" "L reached per seed (mean, range)"
for config in "${configs[@]}"; do
  label=${config%%|*}
  flags=${config#*|}
  reached=()
  parameters=
  for seed in "${seeds[@]}"; do
    name=$(echo "$label" | tr -c 'A-Za-z0-9' '_')_seed$seed
    # shellcheck disable=SC2086  # the flags are meant to split
    "$program" $flags --density 0.25 --steps "$steps" --seed "$seed" --csv "$out/$name.csv" >"$out/$name.log"
    reached+=("$(sed -n 's/^reached L = \([0-9]*\) .*/\1/p' "$out/$name.log")")
    parameters=$(sed -n 's/.* \([0-9]*\) parameters,.*/\1/p' "$out/$name.log" | head -1)
  done
  summary=$(printf '%s\n' "${reached[@]}" | awk '{ s += $1; if (NR == 1 || $1 < lo) lo = $1; if (NR == 1 || $1 > hi) hi = $1 }
    END { printf "%.1f (%d-%d)", s / NR, lo, hi }')
  printf '%-34s %-10s %s  %s\n' "$label" "$parameters" "${reached[*]}" "$summary"
done
