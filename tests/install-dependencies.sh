#!/usr/bin/env bash
# Installs what snap's build and tests need, with apt-get, when it is missing. Idempotent: when
# everything is present it changes nothing. As root it installs; otherwise it prints the
# apt-get command to run and exits nonzero.
set -euo pipefail

# True when any of the given files exists (globs allowed, e.g. a multiarch lib folder).
has_file() {
  local pattern file
  for pattern in "$@"; do
    for file in $pattern; do
      [[ -e "$file" ]] && return 0
    done
  done
  return 1
}

# True when the Debian package is installed.
has_package() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

# The packages to install, one dependency at a time: a tool or file that is there is enough.
missing=()
command -v g++ >/dev/null 2>&1 || has_package g++ || missing+=(g++)
command -v cmake >/dev/null 2>&1 || has_package cmake || missing+=(cmake)
command -v make >/dev/null 2>&1 || has_package make || missing+=(make)
has_file /usr/include/eigen3/Eigen/Core /usr/local/include/eigen3/Eigen/Core || has_package libeigen3-dev ||
  missing+=(libeigen3-dev)
has_file "/usr/lib/*/cmake/GTest/GTestConfig.cmake" /usr/lib/cmake/GTest/GTestConfig.cmake \
  "/usr/local/lib*/cmake/GTest/GTestConfig.cmake" || missing+=(googletest libgtest-dev)
has_file "/usr/lib/*/cmake/benchmark/benchmarkConfig.cmake" /usr/lib/cmake/benchmark/benchmarkConfig.cmake \
  "/usr/local/lib*/cmake/benchmark/benchmarkConfig.cmake" || missing+=(libbenchmark-dev)
# The tests of the PyTorch path (tests/io) and of numpy.load on checkpoints run with Debian's Python.
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import numpy' >/dev/null 2>&1 || missing+=(python3-numpy)
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || missing+=(python3-torch)
# The API reference, whose generated pages the suite checks for broken links (tests/docs).
command -v doxygen >/dev/null 2>&1 || missing+=(doxygen)
# The Python module (python/, pybind11) and its pytest suite and example (matplotlib).
has_file "/usr/lib/cmake/pybind11/pybind11Config.cmake" "/usr/share/cmake/pybind11/pybind11Config.cmake" ||
  missing+=(pybind11-dev)
has_file "/usr/include/python3*/Python.h" || missing+=(python3-dev)
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import pytest' >/dev/null 2>&1 || missing+=(python3-pytest)
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || missing+=(python3-matplotlib)

if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-dependencies: all present (g++, cmake, make, Eigen 3, GoogleTest, Google Benchmark, NumPy, PyTorch, Doxygen, pybind11, pytest, matplotlib)"
  exit 0
fi

command_line="apt-get install -y --no-install-recommends ${missing[*]}"
if [[ $(id -u) -ne 0 ]]; then
  echo "install-dependencies: missing ${missing[*]}; as root, run:" >&2
  echo "  apt-get update && $command_line" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-dependencies: missing ${missing[*]}, and there is no apt-get to install them" >&2
  exit 1
fi

echo "install-dependencies: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086  # the package list is meant to split
$command_line
