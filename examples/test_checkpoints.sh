#!/usr/bin/env bash
# ctest smoke test of copy_task's checkpoints (docs/reliability.md): a run cut in two (saved,
# then continued with --resume) ends with the same checkpoint, byte for byte, as the run made in
# one go; SIGINT and SIGTERM save and stop cleanly, and the saved run continues; a resume with
# other flags is refused with the flags named.
set -euo pipefail
program=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() {
  echo "test_checkpoints: $*" >&2
  exit 1
}

for flags in "--hidden 16 --batch 2" "--hidden 12 --cell lstm --engine bptt:8" \
             "--hidden 12 --engine uoro --update sequence --optimizer sgd" "--hidden 12 --engine rtrl --on-nonfinite skip"; do
  # shellcheck disable=SC2086  # the flags are meant to split
  {
    "$program" $flags --steps 4000 --checkpoint whole.npz >/dev/null
    "$program" $flags --steps 1500 --checkpoint cut.npz --checkpoint-every 700 >/dev/null
    "$program" $flags --steps 4000 --checkpoint cut.npz --resume cut.npz >/dev/null
  }
  cmp -s whole.npz cut.npz || fail "the resumed run ended elsewhere than the whole run ($flags)"
  echo "resume exact: $flags"
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
echo "test_checkpoints: passed"
