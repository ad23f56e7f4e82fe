"""Shared fixtures of the pytest suite: the work folder (in the build tree under ctest, never
the checkout) and small helpers."""

import os
import pathlib

import numpy as np
import pytest


@pytest.fixture
def work(tmp_path, request):
    """A fresh folder for the files a test writes: $SNAP_PYTHON_WORK/<test> under ctest, else
    pytest's tmp_path."""
    root = os.environ.get("SNAP_PYTHON_WORK")
    if not root:
        return tmp_path
    folder = pathlib.Path(root) / request.node.name.replace("[", "_").replace("]", "").replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    return folder


def random_inputs(steps, size, seed, dtype=np.float64):
    """Inputs uniform in [-1, 1), steps x size, C-contiguous."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, (steps, size)).astype(dtype)
