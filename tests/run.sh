#!/usr/bin/env bash
# The whole suite, as CI runs it: dependencies, a Release build with tests in build/, then ctest.
# Exits nonzero when anything fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
jobs=$(nproc)
start=$SECONDS

bash tests/install-dependencies.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DSNAP_BUILD_TESTS=ON
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs"

echo "tests/run.sh: passed in $((SECONDS - start)) s"
