"""Python against C++ bit for bit, and exact resume through Python. The C++ side is
tests/io/resume_helper (the run of tests/support/training.hpp): the same configuration driven
from Python must write a checkpoint whose every array equals the helper's, byte for byte;
a checkpoint written by either side resumes in the other exactly."""

import os
import subprocess

import numpy as np
import pytest

import snap

HELPER = os.environ.get("SNAP_RESUME_HELPER")
needs_helper = pytest.mark.skipif(not HELPER or not os.path.exists(HELPER),
                                  reason="SNAP_RESUME_HELPER (tests/io/resume_helper, built by ctest's build) not set")

# resume_helper's configurations: engine options and trainer options.
CONFIGS = {
    "rtrl-gru": ("GRU", snap.RTRLOptions(), dict(batch=2, clip_norm=1.0)),
    "rtrl-rnn": ("RNN", snap.RTRLOptions(), dict(batch=2, clip_norm=1.0)),
    "snap1-gru": ("GRU", snap.SnApOptions(1), dict(batch=2, clip_norm=1.0)),
    "snap2-gru": ("GRU", snap.SnApOptions(2), dict(batch=2, clip_norm=1.0)),
    "snap2-lstm": ("LSTM", snap.SnApOptions(2), dict(batch=2, clip_norm=1.0)),
    "uoro-gru": ("GRU", snap.UOROOptions(seed=7), dict(batch=2, clip_norm=1.0)),
    "bptt3-gru": ("GRU", snap.BPTTOptions(3), dict(batch=2, update_every=3)),
    "bptt-gru": ("GRU", snap.BPTTOptions(), dict(batch=2, schedule="per_sequence")),
}


class Training:
    """tests/support/training.hpp in Python: a float32 cell (3 inputs, 6 units, recurrent
    density 0.5, mask seed 31), a readout (3 classes, seed 32), Adam(0.02), B = 2 streams."""

    def __init__(self, config):
        kind, engine, options = CONFIGS[config]
        self.cell = getattr(snap, kind)(3, 6, recurrent_density=0.5, seed=31, dtype="float32")
        self.readout = snap.Readout(6, 3, 32, dtype="float32")
        self.trainer = snap.Trainer(self.cell, self.readout, snap.Adam(0.02), engine, **options)
        self.per_sequence = options.get("schedule") == "per_sequence"

    @staticmethod
    def input(t, b):
        random = snap.Random(1000 * t + b)
        return np.array([random.uniform(-1.0, 1.0) for _ in range(3)], dtype=np.float32)

    @staticmethod
    def target(t, b):
        return -1 if (t + b) % 4 == 0 else (t * 7 + b) % 3

    def run(self, start, stop):
        for t in range(start, stop):
            streams = range(self.trainer.batch)
            self.trainer.observe(np.stack([self.input(t, b) for b in streams]),
                                 np.array([self.target(t, b) for b in streams], dtype=np.int64))
            for b in streams:
                if (t + 1) % (7 + b) == 0:
                    self.trainer.reset_stream(b)
            self.trainer.end_step()
            if self.per_sequence and t % 10 == 9:
                self.trainer.end_sequence()

    def save(self, path, step):
        self.trainer.save_checkpoint(str(path), extra={"helper/step": np.array(step, dtype=np.int64)})


def helper(config, start, stop, load=None, save=None):
    command = [HELPER, config, str(start), str(stop)]
    if load:
        command += ["--load", str(load)]
    if save:
        command += ["--save", str(save)]
    subprocess.run(command, check=True)


def assert_same_checkpoint(a, b):
    """Every array of two checkpoints equal, bit for bit (the checksum covers them all)."""
    with np.load(a) as first, np.load(b) as second:
        assert sorted(first.files) == sorted(second.files)
        for name in first.files:
            assert first[name].dtype == second[name].dtype, name
            assert first[name].tobytes() == second[name].tobytes(), name


@needs_helper
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_python_equals_cpp_bit_for_bit(config, work):
    helper(config, 0, 23, save=work / "cpp.npz")
    training = Training(config)
    training.run(0, 23)
    training.save(work / "python.npz", 23)
    assert training.trainer.updates > 0
    assert_same_checkpoint(work / "cpp.npz", work / "python.npz")


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_resume_through_python_is_exact(config, work):
    straight = Training(config)
    straight.run(0, 25)
    straight.save(work / "straight.npz", 25)
    first = Training(config)
    first.run(0, 12)
    first.save(work / "cut.npz", 12)
    resumed = Training(config)  # fresh objects, as in a new process
    extra = resumed.trainer.load_checkpoint(str(work / "cut.npz"))
    assert extra == {"helper/step": np.array(12)}
    resumed.run(12, 25)
    resumed.save(work / "resumed.npz", 25)
    assert_same_checkpoint(work / "straight.npz", work / "resumed.npz")
    assert np.array_equal(resumed.cell.parameters(), straight.cell.parameters())


@needs_helper
@pytest.mark.parametrize("config", ["snap2-gru", "bptt3-gru"])
def test_checkpoints_cross_between_cpp_and_python(config, work):
    helper(config, 0, 24, save=work / "straight.npz")
    helper(config, 0, 11, save=work / "cpp_cut.npz")
    python = Training(config)
    python.trainer.load_checkpoint(str(work / "cpp_cut.npz"))
    python.run(11, 24)
    python.save(work / "python_resumed.npz", 24)
    assert_same_checkpoint(work / "straight.npz", work / "python_resumed.npz")
    python_cut = Training(config)
    python_cut.run(0, 11)
    python_cut.save(work / "python_cut.npz", 11)
    helper(config, 11, 24, load=work / "python_cut.npz", save=work / "cpp_resumed.npz")
    assert_same_checkpoint(work / "straight.npz", work / "cpp_resumed.npz")


def test_sequence_call_equals_per_step_calls(work):
    def build():
        cell = snap.GRU(3, 6, recurrent_density=0.5, seed=31, dtype="float32")
        readout = snap.Readout(6, 3, 32, dtype="float32")
        return cell, readout, snap.Trainer(cell, readout, snap.Adam(0.02), snap.SnApOptions(2), batch=2, clip_norm=1.0)

    inputs = np.stack([[Training.input(t, b) for b in range(2)] for t in range(15)])
    targets = np.array([[Training.target(t, b) for b in range(2)] for t in range(15)], dtype=np.int64)
    cell, readout, stepped = build()
    losses = np.zeros((15, 2), dtype=np.float32)
    for t in range(15):
        losses[t] = stepped.observe(inputs[t], targets[t])
        stepped.end_step()
    stepped.save_checkpoint(str(work / "stepped.npz"))
    cell2, readout2, whole = build()
    got, states = whole.run(inputs, targets, return_states=True)
    whole.save_checkpoint(str(work / "whole.npz"))
    assert got.dtype == np.float32 and got.shape == (15, 2) and states.shape == (15, 2, 6)
    assert np.array_equal(got, losses)
    assert np.array_equal(states[-1, 1], whole.state(1))
    assert_same_checkpoint(work / "stepped.npz", work / "whole.npz")


def test_checkpoint_with_copy_task_restores_the_task(work):
    cell = snap.GRU(3, 8, seed=1, dtype="float32")
    readout = snap.Readout(8, 2, 2, dtype="float32")
    trainer = snap.Trainer(cell, readout, snap.Adam(0.01), snap.SnApOptions(1))
    task = snap.CopyTask(seed=4)
    for _ in range(5):
        sequence = task.next()
        losses = trainer.run(sequence.inputs("float32")[:, None, :], sequence.targets()[:, None], end_sequence=True)
        task.record(sequence, float(losses.sum() / np.log(2)))
    trainer.save_checkpoint(str(work / "run.npz"), task)
    expected = [task.next().symbols for _ in range(3)]
    restored = snap.CopyTask(seed=99)
    other = snap.Trainer(snap.GRU(3, 8, seed=2, dtype="float32"), snap.Readout(8, 2, dtype="float32"), snap.Adam(0.01),
                         snap.SnApOptions(1))
    other.load_checkpoint(str(work / "run.npz"), restored)
    assert restored.sequences == 5 and restored.data_time == task.data_time
    assert [restored.next().symbols for _ in range(3)] == expected
