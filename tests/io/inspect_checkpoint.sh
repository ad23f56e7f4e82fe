#!/usr/bin/env bash
# Writes a checkpoint with resume_helper and opens it with NumPy (inspect_checkpoint.py).
# Exit 77 (skipped) when no Python with NumPy is installed.
set -euo pipefail
helper=$1
checkpoint=$2
python=""
for candidate in /usr/bin/python3 python3; do
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c "import numpy" 2>/dev/null; then
    python=$candidate
    break
  fi
done
if [[ -z $python ]]; then
  echo "inspect_checkpoint: no Python with NumPy; skipped"
  exit 77
fi
"$helper" snap2-lstm 0 9 --save "$checkpoint"
"$python" "$(dirname "${BASH_SOURCE[0]}")/inspect_checkpoint.py" "$checkpoint"
