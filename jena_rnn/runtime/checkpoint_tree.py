"""Host-side pytree handling shared by both checkpoint layouts: leaf paths, digests, older-layout conversions.

A saved leaf is named by its *path*, the names of the keys leading to it rendered as ``['params']['head']['w']``
(a NamedTuple field, a dict key and a list index all render alike, so a tree restored by orbax as plain
dicts and lists matches the caller's `like` tree of NamedTuples). `assemble` puts the saved leaves into
the structure and leaf types of `like`, converting leaves of an older layout on the way:

``LEGACY_LEAVES`` lists leaves that changed name and layout between versions; a checkpoint holding the old
form is converted on restore when the target wants the new one (so runs saved by an older jena_rnn still
resume, evaluate and predict). ``LEGACY_FOLDS`` lists leaves that disappeared into a sibling (e.g. the
reset-before GRU's second bias ``b_h``, folded into ``b_x``): the fold is exact for the parameters, so such
a run still evaluates and predicts, but not for the optimiser's copies of them (RMSprop's running average
of each), so a restore for ``resume`` refuses it with a ``ValueError`` saying why. Suffixes of both tables
also match the optimiser's copies of a parameter (e.g. RMSprop's nu) and a sweep's stacked leaves [S, ...].
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import sys
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jena_rnn.runtime import distributed

# (old path suffix, new path suffix, old value -> new value)
LEGACY_LEAVES = (
    # the MLP's hidden kernel was stored as w_t [units, T*F] for a while; the canonical layout is
    # w [T*F, units] (nn/models.py), so w = w_t.T
    ("['hidden']['w_t']", "['hidden']['w']", lambda a: np.swapaxes(a, -1, -2)),
)
# (path suffix of a leaf that no longer exists, suffix of the sibling it folds into, (into, old) -> new value
# of into, why a resumed run cannot use the result). Folded only when the target lacks it and wants the sibling.
LEGACY_FOLDS = (
    # before 2026-12 a reset-before GRU had a second bias b_h; b_x + b_h is the same GRU (cells.py)
    ("['b_h']", "['b_x']", np.add,
     "it was written by an older jena_rnn whose reset-before GRU (reset_after=False) had two biases, "
     "b_x and b_h; they are folded into the one bias b_x exactly, but the optimiser's running averages "
     "of the two cannot be combined into the one the new layout would have had, so training cannot "
     "continue from it. Evaluate and predict still work; start a new run to train"),
)


class Damaged(ValueError):
    """A checkpoint's files are unreadable or differ from what was written (message: which and why)."""


@contextlib.contextmanager
def quiet_orbax(level=None):
    """Silence orbax's absl logging (below ERROR, or below ``level``) for the block, then restore it.

    ``level=logging.CRITICAL + 1`` (a read that may meet damage) also silences the error reports of
    orbax and asyncio: the damage becomes the one warning or error of `checkpoint.restore`.
    """
    from absl import logging as absl_logging

    old = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.ERROR if level is None else absl_logging.FATAL)
    loggers = [logging.getLogger(n) for n in ("absl", "asyncio", "orbax")] if level is not None else []
    before = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(level)
    try:
        yield
    finally:
        absl_logging.set_verbosity(old)
        for lg, lv in zip(loggers, before):
            lg.setLevel(lv)


def _quiet_closed_loop() -> None:
    """Drop Python's "Exception ignored ... Event loop is closed" report from here on (installed once).

    When orbax fails on a damaged file, tensorstore's reads still in flight may call back into the event
    loop orbax has already closed, and Python prints that traceback to stderr at some later moment. The
    checkpoint is reported as damaged already (one warning line), so the traceback is noise; every other
    unraisable exception still reaches the previous hook.
    """
    previous = sys.unraisablehook
    if getattr(previous, "jena_rnn_closed_loop", False):
        return

    def hook(unraisable) -> None:
        exc = unraisable.exc_value
        if isinstance(exc, RuntimeError) and str(exc) == "Event loop is closed":
            return
        previous(unraisable)

    hook.jena_rnn_closed_loop = True
    sys.unraisablehook = hook


def unreadable(where: Path, error: Exception) -> Damaged:
    """The ``Damaged`` for files orbax could not read: ``where`` and the first line of its error."""
    _quiet_closed_loop()
    first = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
    return Damaged(f"{where} is unreadable ({type(error).__name__}: {first})")


def render(names) -> str:
    """``('params', 'layers', '0', 'w_x')`` -> ``"['params']['layers']['0']['w_x']"``."""
    return "".join(f"['{n}']" for n in names)


def path_of(key_path) -> str:
    """The rendered path of a jax key path: dict keys, NamedTuple fields and list indices by name alone."""
    names = []
    for k in key_path:
        for attr in ("key", "name", "idx"):
            if hasattr(k, attr):
                names.append(str(getattr(k, attr)))
                break
        else:
            names.append(str(k))
    return render(names)


def is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def digest(a: np.ndarray) -> str:
    """SHA-256 of an array's dtype, shape and bytes: a flipped byte that zstd still decodes shows here."""
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def to_host(state: Any) -> tuple[Any, dict]:
    """Copy every leaf to host memory; return (the tree to save, {path: {"shape", "dtype", "sha256"}}).

    Typed keys are saved as their key data. Zero-size leaves (orbax refuses them) become None in the
    saved tree; the record alone describes them. Scalars become 0-d arrays (orbax would give back ints).
    Every process calls this under ``jax.distributed``: a leaf spanning processes is gathered.
    """
    record = {}

    def one(path, x):
        if isinstance(x, jax.ShapeDtypeStruct):
            raise TypeError("abstract leaf (jax.ShapeDtypeStruct) has no value to save")
        a = np.asarray(distributed.to_host(jax.random.key_data(x) if is_key(x) else x))
        record[path_of(path)] = {"shape": list(a.shape), "dtype": str(a.dtype), "sha256": digest(a)}
        return a if a.size else None

    return jax.tree_util.tree_map_with_path(one, state), record


def _spec(x: Any) -> tuple[tuple, np.dtype]:
    """Shape and dtype a saved leaf must have to fill the leaf `x` of `like` (typed keys: their key data)."""
    if is_key(x):
        data = jax.eval_shape(jax.random.key_data, x)
        return tuple(data.shape), np.dtype(data.dtype)
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return tuple(x.shape), np.dtype(x.dtype)
    value = np.asarray(x)
    return value.shape, value.dtype


def assemble(saved: dict[str, np.ndarray], like: Any, where: Path, *, resume: bool = False) -> Any:
    """Build a tree with `like`'s structure and leaf types from ``saved`` ({path: array}).

    Raises:
      ValueError: the leaves do not match (names the leaf path and both shapes/dtypes), or ``resume`` and
        the checkpoint needs a ``LEGACY_FOLDS`` conversion, which is exact for evaluation only.
    """
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    paths = [path_of(p) for p, _ in path_leaves]
    wanted, used, values = set(paths), set(), {}
    for path in paths:
        if path in saved:
            values[path] = saved[path]
            used.add(path)
            continue
        for old, new, fn in LEGACY_LEAVES:
            src = path[:-len(new)] + old if path.endswith(new) else None
            if src in saved and src not in wanted:
                values[path] = np.ascontiguousarray(fn(saved[src]))
                used.add(src)
                break
    for path in list(values):
        for old, into, combine, why in LEGACY_FOLDS:
            src = path[:-len(into)] + old if path.endswith(into) else None
            if src in saved and src not in wanted:
                if resume:
                    raise ValueError(f"cannot resume from checkpoint {where}: {why}")
                values[path] = np.asarray(combine(values[path], saved[src]), values[path].dtype)
                used.add(src)
    only_saved = [p for p in saved if p not in used]
    only_like = [jax.tree_util.keystr(k) for (k, _), p in zip(path_leaves, paths) if p not in values]
    if only_saved or only_like:
        raise ValueError(f"checkpoint {where} does not match the target tree: leaves only in the "
                         f"checkpoint {only_saved}, only in the target {only_like} "
                         f"({len(saved)} saved leaves, {len(paths)} target leaves)")
    leaves = []
    for (key_path, leaf), path in zip(path_leaves, paths):
        value, (shape, dtype) = values[path], _spec(leaf)
        if (value.shape, value.dtype) != (shape, dtype):
            raise ValueError(f"checkpoint {where}: leaf {jax.tree_util.keystr(key_path)} was saved with shape "
                             f"{value.shape} dtype {value.dtype} but the target has shape {shape} dtype {dtype}")
        leaves.append(_like_type(leaf, value))
    return jax.tree_util.tree_unflatten(treedef, leaves)


def _like_type(leaf: Any, value: np.ndarray) -> Any:
    """Convert a loaded numpy value to the kind of object `leaf` is."""
    if is_key(leaf):  # an abstract key leaf carries no impl: the default impl is used
        impl = None if isinstance(leaf, jax.ShapeDtypeStruct) else jax.random.key_impl(leaf)
        return jax.random.wrap_key_data(value, impl=impl)
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
        return jnp.asarray(value)
    if isinstance(leaf, (np.ndarray, np.generic)):
        return value if isinstance(leaf, np.ndarray) else value[()]
    return type(leaf)(value.item())
