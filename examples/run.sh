#!/usr/bin/env bash
# The main job: builds the copy-task example and trains a sparse GRU (H = 128, 10 % of the
# recurrent weights, shared masks) online with SnAp-2 for about 1.5 minutes, showing the
# curriculum length L climbing. Extra arguments go to copy_task (see --help).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash tests/install-dependencies.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" --target copy_task
exec build/examples/copy_task "$@"
