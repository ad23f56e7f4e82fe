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
ctest --test-dir build --output-on-failure -j"$jobs"

echo "tests/run.sh: passed in $((SECONDS - start)) s"
