"""snap: online training of sparse recurrent networks (RTRL, SnAp-n, UORO, BPTT) from Python.

The classes are snap's C++ templates, bound for float32 and float64 (docs/python.md):

* every scalar-typed class exists as ``<Name>32`` and ``<Name>64`` (``GRU32``, ``Readout64``,
  ``SnAp_GRU64``, ``Trainer_SnAp_GRU64``, ...);
* the unsuffixed names are factories that pick one: ``snap.GRU(3, 8, dtype="float32")`` builds
  a ``GRU32`` (the default dtype is float64), and ``snap.SnAp(cell, n=2)`` or
  ``snap.Trainer(cell, readout, optimizer, snap.SnApOptions(n=2))`` follow the cell's type.

Arrays passed in are read in place (no copy, no conversion): they must be C-contiguous NumPy
arrays of the object's dtype, else TypeError (None, a list, another dtype), snap.ShapeError
(another shape) or snap.ValueError (a non-contiguous view). Arrays returned are copies.
"""

import numpy as _np

from . import _snap
from ._snap import (  # noqa: F401  (re-exported)
    Adam,
    BPTTOptions,
    CopySequence,
    CopyTask,
    Error,
    FormatError,
    NonFiniteError,
    Random,
    RTRLOptions,
    SGD,
    ShapeError,
    SnApOptions,
    UOROOptions,
    UsageError,
    checkpoint_version,
    read_weights_info,
    weights_format_version,
)

# snap.ValueError is snap's own (a subclass of the built-in ValueError); it is not part of
# `from snap import *`, which would shadow the built-in.
ValueError = _snap.ValueError

__all__ = [
    "Adam", "BPTT", "BPTTOptions", "CopySequence", "CopyTask", "Error", "FormatError", "GRU", "LSTM",
    "NonFiniteError", "RNN", "RTRL", "RTRLOptions", "Random", "Readout", "SGD", "ShapeError", "SnAp",
    "SnApOptions", "Trainer", "UORO", "UOROOptions", "UsageError", "checkpoint_version", "load_cell",
    "read_weights_info", "to_torch", "weights_format_version",
]

_ENGINES = {RTRLOptions: "RTRL", SnApOptions: "SnAp", UOROOptions: "UORO", BPTTOptions: "BPTT"}


def _bits(dtype):
    """ "32" or "64" for a float32 or float64 dtype; TypeError for any other."""
    try:
        kind = _np.dtype(dtype)
    except TypeError:
        kind = None
    if kind == _np.float32:
        return "32"
    if kind == _np.float64:
        return "64"
    raise TypeError(f"snap: dtype: expected float32 or float64, got {dtype!r}")


def _cell_name(cell):
    name = type(cell).__name__
    if type(cell).__module__ != "snap._snap" or not name.startswith(("RNN", "GRU", "LSTM")):
        raise TypeError(f"snap: cell: expected a snap cell (snap.RNN, snap.GRU or snap.LSTM), got {name}")
    return name


def RNN(input_size, hidden_size, *, dtype="float64", **options):
    """An Elman tanh cell (torch.nn.RNNCell): RNN32 or RNN64 by dtype. Options: input_density,
    recurrent_density, mask_sharing ("per_gate" or "shared"), seed."""
    return getattr(_snap, "RNN" + _bits(dtype))(input_size, hidden_size, **options)


def GRU(input_size, hidden_size, *, dtype="float64", **options):
    """A GRU cell (torch.nn.GRUCell): GRU32 or GRU64 by dtype; options as RNN's."""
    return getattr(_snap, "GRU" + _bits(dtype))(input_size, hidden_size, **options)


def LSTM(input_size, hidden_size, *, dtype="float64", **options):
    """An LSTM cell (torch.nn.LSTMCell), state [h; c]: LSTM32 or LSTM64 by dtype; options as RNN's."""
    return getattr(_snap, "LSTM" + _bits(dtype))(input_size, hidden_size, **options)


def Readout(hidden_size, outputs, seed=0, *, dtype="float64"):
    """A linear softmax readout of h (torch.nn.Linear's initialisation): Readout32 or Readout64."""
    return getattr(_snap, "Readout" + _bits(dtype))(hidden_size, outputs, seed)


def engine(cell, options, *, batch=1, threads=1):
    """The engine that `options` names (RTRLOptions, SnApOptions, UOROOptions, BPTTOptions) bound
    to `cell`, which it keeps alive, advancing `batch` streams together on `threads` threads
    (the results are the same for every thread count)."""
    kind = _ENGINES.get(type(options))
    if kind is None:
        raise TypeError(f"snap: options: expected snap.RTRLOptions, SnApOptions, UOROOptions or BPTTOptions, "
                        f"got {type(options).__name__}")
    return getattr(_snap, f"{kind}_{_cell_name(cell)}")(cell, options, batch=batch, threads=threads)


def RTRL(cell, *, batch=1, threads=1, **options):
    """Exact RTRL on `cell` (options: dense_dynamics_above)."""
    return engine(cell, RTRLOptions(**options), batch=batch, threads=threads)


def SnAp(cell, n=1, *, batch=1, threads=1, **options):
    """SnAp-n on `cell` (options: dense_block_above)."""
    return engine(cell, SnApOptions(n, **options), batch=batch, threads=threads)


def UORO(cell, *, batch=1, threads=1, **options):
    """UORO on `cell` (options: epsilon, seed; stream b draws its signs from seed + b)."""
    return engine(cell, UOROOptions(**options), batch=batch, threads=threads)


def BPTT(cell, window=None, *, batch=1, threads=1):
    """BPTT on `cell`, truncated to windows of `window` steps (None: untruncated)."""
    return engine(cell, BPTTOptions(window), batch=batch, threads=threads)


def Trainer(cell, readout, optimizer, engine, **options):
    """A trainer of `cell` and `readout` with `optimizer` (snap.SGD or snap.Adam) and the engine
    that `engine` names (an options object). Options: batch, threads, schedule ("online" or
    "per_sequence"), update_every, clip_norm, non_finite ("throw" or "skip")."""
    kind = _ENGINES.get(type(engine))
    if kind is None:
        raise TypeError(f"snap: engine: expected snap.RTRLOptions, SnApOptions, UOROOptions or BPTTOptions, "
                        f"got {type(engine).__name__}")
    return getattr(_snap, f"Trainer_{kind}_{_cell_name(cell)}")(cell, readout, optimizer, engine, **options)


def load_cell(path, dtype=None, **options):
    """The cell (and its readout, when the file has one) of a weights file: returns (cell,
    readout or None). The dtype defaults to the file's; options are the cell's constructor's
    (the masks and weights are then the file's)."""
    info = read_weights_info(path)
    factories = {"rnn": RNN, "gru": GRU, "lstm": LSTM}
    if info["cell"] not in factories:
        raise FormatError(f"snap: weights file '{path}': array 'cell': expected 'rnn', 'gru' or 'lstm', "
                          f"got '{info['cell']}'")
    dtype = dtype or info["dtype"]
    cell = factories[info["cell"]](info["input_size"], info["hidden_size"], dtype=dtype, **options)
    readout = Readout(info["hidden_size"], info["outputs"], dtype=dtype) if info["outputs"] else None
    cell.load_weights(path, readout)
    return cell, readout


def to_torch(cell, readout=None):
    """The PyTorch modules with the same weights (copies): torch.nn.RNNCell, GRUCell or
    LSTMCell, and torch.nn.Linear for the readout (None when not given)."""
    import torch

    kinds = {"RNN": torch.nn.RNNCell, "GRU": torch.nn.GRUCell, "LSTM": torch.nn.LSTMCell}
    name = _cell_name(cell)
    kind = kinds[name.rstrip("0123456789")]
    dtype = torch.float32 if cell.dtype == _np.float32 else torch.float64
    module = kind(cell.input_size, cell.hidden_size).to(dtype)
    with torch.no_grad():
        for key, value in cell.tensors().items():
            getattr(module, key).copy_(torch.from_numpy(value))
    linear = None
    if readout is not None:
        linear = torch.nn.Linear(readout.hidden_size, readout.outputs).to(dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(readout.weight))
            linear.bias.copy_(torch.from_numpy(readout.bias))
    return module, linear
