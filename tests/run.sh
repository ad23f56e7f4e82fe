#!/usr/bin/env bash
# The whole suite, as CI runs it: dependencies, a Release build of the tests and examples in
# build/, then ctest.
# Exits nonzero when anything fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=$(nproc)
start=$SECONDS

bash tests/install-dependencies.sh
# The benchmarks are not tests: .ci/run builds them separately (benchmarks/README.md).
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSNAP_BUILD_TESTS=ON -DSNAP_BUILD_EXAMPLES=ON -DSNAP_BUILD_BENCHMARKS=OFF
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" | tee build/ctest-summary.log
# A skipped test says why: its own output, from ctest's log.
sed -n 's/^[[:space:]]*[0-9]* - \(.*\) (Skipped)$/\1/p' build/ctest-summary.log | while read -r name; do
  reason=$(awk -v name="$name" '$0 ~ "^[0-9]+/[0-9]+ Testing: " { found = ($0 ~ ("Testing: " name "$")) }
    found && /^Output:/ { getline; printing = 1; next }
    printing && /^<end of output>/ { exit }
    printing { print }' build/Testing/Temporary/LastTest.log | tail -n 3)
  echo "tests/run.sh: $name skipped: ${reason:-(it printed no reason)}"
done

echo "tests/run.sh: passed in $((SECONDS - start)) s"
