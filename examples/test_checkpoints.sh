#!/usr/bin/env bash
# ctest smoke test of copy_task's checkpoints (docs/reliability.md): a run cut in two (stopped
# with a checkpoint by --stop-at, then continued with --resume) ends with the same checkpoint,
# byte for byte, and the same CSV log (but for the wall times) as the run made in one go, even
# when the log lost rows and gained rows after the checkpoint, as kill -9 leaves it
# (test_resume.sh, also run alone for stacks, the LRU and the newer engines); SIGINT and
# SIGTERM save and stop cleanly, and the saved run continues; a resume with other flags is
# refused with the flags named; a checkpoint, log or model path that cannot be written is
# refused before training.
set -euo pipefail
program=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() {
  echo "test_checkpoints: $*" >&2
  exit 1
}

for flags in "--hidden 16 --batch 2" "--hidden 12 --cell lstm --engine bptt:8" \
             "--hidden 12 --engine uoro --update sequence --optimizer sgd" "--hidden 12 --engine rtrl --on-nonfinite skip"; do
  bash "$here/test_resume.sh" "$program" "$flags" || fail "the resume test failed ($flags)"
done

for signal in INT TERM; do
  "$program" --hidden 16 --steps 1000000000 --checkpoint stopped.npz --checkpoint-every 0 >stopped.log &
  pid=$!
  sleep 2
  kill -"$signal" "$pid"
  status=0
  wait "$pid" || status=$?
  expected=$([[ $signal == INT ]] && echo 130 || echo 143)
  [[ $status -eq $expected ]] || fail "SIG$signal: exit status $status, expected $expected"
  grep -q "stopped by SIG$signal at data time" stopped.log || fail "SIG$signal: no stop message"
  at=$(sed -n "s/.*stopped by SIG$signal at data time \([0-9]*\).*/\1/p" stopped.log)
  "$program" --hidden 16 --steps $((at + 2000)) --checkpoint stopped.npz --resume stopped.npz >resumed.log ||
    fail "SIG$signal: the saved run did not resume"
  grep -q "resumed stopped.npz at data time $at" resumed.log || fail "SIG$signal: resumed elsewhere"
  echo "SIG$signal at data time $at: saved, stopped with status $status, resumed"
done

if "$program" --hidden 17 --steps 10 --resume stopped.npz 2>mismatch.log; then
  fail "a resume with other flags was accepted"
fi
grep -q -- "--hidden 16 in the checkpoint, --hidden 17 here" mismatch.log || fail "the mismatch is not named"
for target in "--checkpoint $work/missing/run.npz" "--csv $work" "--save /proc/version"; do
  # shellcheck disable=SC2086
  if "$program" --hidden 8 --steps 100 $target 2>unwritable.log >/dev/null; then
    fail "an unwritable $target was accepted"
  fi
  grep -q "checked before the run starts" unwritable.log || fail "the unwritable $target was not refused before training"
  grep -q "data time" unwritable.log && fail "the run trained before refusing $target"
done
echo "unwritable checkpoint, log and model paths refused before training"

"$program" --hidden 16 --steps 3000 --save model.npz >/dev/null
"$program" --evaluate model.npz --eval-lengths 3 --eval-sequences 20 >evaluation.log
grep -q "learned every length up to L = " evaluation.log || fail "--evaluate printed no verdict"
[[ $(grep -c '%' evaluation.log) -eq 3 ]] || fail "--evaluate did not score the lengths 1..3"
echo "saved model evaluated"
echo "test_checkpoints: passed"
