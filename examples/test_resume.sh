#!/usr/bin/env bash
# ctest check that a copy_task run cut in two (stopped with a checkpoint by --stop-at, then
# continued with --resume) ends with the same checkpoint, byte for byte, and the same CSV log (but
# for the wall times) as the run made in one go, even when the log lost rows and gained rows after
# the checkpoint, as kill -9 leaves it (docs/reliability.md).
#
#   test_resume.sh PROGRAM "FLAGS" ["OTHER FLAGS" "MESSAGE"]
#
# With OTHER FLAGS, a resume of the cut run with FLAGS and OTHER FLAGS must be refused with MESSAGE.
set -euo pipefail
program=$1
flags=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
fail() {
  echo "test_resume: $*" >&2
  exit 1
}

# shellcheck disable=SC2086  # the flags are meant to split
{
  "$program" $flags --steps 4000 --checkpoint whole.npz --csv whole.csv >/dev/null
  "$program" $flags --steps 4000 --checkpoint cut.npz --checkpoint-every 700 --stop-at 1500 --csv cut.csv >/dev/null
}
cp cut.npz stopped.npz
# What kill -9 leaves: rows logged after the checkpoint, and rows that never reached the file.
sed -i '3d' cut.csv
echo "999999,1,0,1,1,1" >>cut.csv
# shellcheck disable=SC2086
"$program" $flags --steps 4000 --checkpoint cut.npz --resume cut.npz --csv cut.csv >/dev/null
cmp -s whole.npz cut.npz || fail "the resumed run ended elsewhere than the whole run ($flags)"
without_wall() { cut -d, -f1-3,5- "$1"; }
diff <(without_wall whole.csv) <(without_wall cut.csv) >/dev/null ||
  fail "the resumed run's CSV log differs from the whole run's ($flags): $(diff <(without_wall whole.csv) <(without_wall cut.csv) | head -5)"
echo "resume exact, checkpoint and log: $flags"

if [[ $# -ge 4 ]]; then
  # shellcheck disable=SC2086
  if "$program" $flags $3 --steps 4000 --resume stopped.npz 2>mismatch.log >/dev/null; then
    fail "a resume with $3 added to $flags was accepted"
  fi
  grep -qF -- "$4" mismatch.log || fail "the resume with $3 was refused without '$4': $(cat mismatch.log)"
  echo "resume with $3 refused: $4"
fi
echo "test_resume: passed"
