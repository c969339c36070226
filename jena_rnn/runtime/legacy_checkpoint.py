"""Read checkpoints of the layout jena_rnn wrote before it used orbax's CheckpointManager (read only).

That layout, inside ``run_dir/checkpoints/``::

    LATEST, BEST           one line each: the directory name of the newest / best committed checkpoint
    epoch_0003/
      state/               an orbax PyTree checkpoint of the flattened leaves {"leaf_0000": ..., ...}
      tree.json            one entry per leaf: key path (``jax.tree_util.keystr``), shape, dtype, kind
      meta.json            {"epoch", "history", "config"}
      files.json           size and SHA-256 of every file under state/ (absent in the oldest runs)
    .jena-rnn-tmp-<what>.<pid>.<32 hex digits>   a save in progress or abandoned by a crash

Such directories are never written or pruned here; new checkpoints are saved beside them in the orbax
layout (``checkpoint.py``), whose steps are told apart by orbax's ``commit_success.txt``. ``LATEST`` is the
commit record: a complete directory newer than it was never committed and is not read. The only
deletions are the old layout's own stale temporaries (`prune_stale`) and, at `make_room`, an uncommitted
old directory in the way of a new save (moved to such a temporary first).
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jena_rnn import atomic
from jena_rnn.runtime.checkpoint_tree import Damaged, quiet_orbax, render, unreadable
from jena_rnn.runtime.report import read_json

_PREFIX = "epoch_"
_KEY_RE = re.compile(r"\.([A-Za-z_]\w*)|\['((?:[^'\\]|\\.)*)'\]|\[(\d+)\]")


def _complete(d: Path) -> bool:
    return (d / "meta.json").is_file() and (d / "tree.json").is_file()


def _complete_epochs(root: Path) -> list[int]:
    if not root.is_dir():
        return []
    found = [int(p.name[len(_PREFIX):]) for p in root.iterdir()
             if p.name.startswith(_PREFIX) and p.name[len(_PREFIX):].isdigit() and _complete(p)]
    return sorted(found)


def _pointer(root: Path, name: str) -> tuple[bool, int | None]:
    """(pointer file exists, the epoch it names or None if it is not a short line naming ``epoch_NNNN``)."""
    f = root / name
    if not f.is_file():
        return False, None
    try:
        target = f.read_bytes()[:64].decode("utf-8").strip()
    except (UnicodeDecodeError, OSError):
        return True, None
    suffix = target[len(_PREFIX):]
    return True, int(suffix) if target.startswith(_PREFIX) and suffix.isdigit() else None


def committed(root: Path, *, warn: bool = False) -> list[int]:
    """Epochs of committed old-layout checkpoints in ``root``, ascending (those up to LATEST's epoch).

    A missing or unreadable LATEST makes every complete directory count (with a warning if ``warn``).
    """
    epochs = _complete_epochs(root)
    if not epochs:
        return []
    exists, last = _pointer(root, "LATEST")
    if last is None:
        if warn:
            why = "is unreadable" if exists else "is missing"
            warnings.warn(f"{root / 'LATEST'} {why}; falling back to the newest complete checkpoint, "
                          f"epoch {epochs[-1]}", stacklevel=3)
        return epochs
    return [e for e in epochs if e <= last]


def best(root: Path, *, warn: bool = False) -> int | None:
    """The epoch BEST names, if that checkpoint is still there (warns, if ``warn``, when BEST is broken)."""
    exists, epoch = _pointer(root, "BEST")
    if epoch is not None and epoch in committed(root):
        return epoch
    if exists and warn:
        warnings.warn(f"{root / 'BEST'} is unreadable or names a missing or incomplete checkpoint", stacklevel=3)
    return None


def forget_best(root: Path) -> None:
    """Remove a BEST that names a checkpoint no longer there (set aside as damaged); the file is ours."""
    if (root / "BEST").is_file() and best(root) is None:
        (root / "BEST").unlink()


def _names(keystr: str) -> tuple[str, ...]:
    """``".params['layers'][0]['w_x']"`` -> ``('params', 'layers', '0', 'w_x')`` (tree.json's paths)."""
    return tuple(next(g for g in m.groups() if g is not None) for m in _KEY_RE.finditer(keystr))


def _verify_files(d: Path) -> None:
    """Raise `Damaged` if a file under state/ is missing or differs from ``files.json`` (if recorded)."""
    if not (d / "files.json").is_file():
        return  # written before files.json existed: nothing to check against
    try:
        want = read_json(d / "files.json", what="checkpoint file list")
    except ValueError as e:
        raise Damaged(str(e)) from None
    for rel, spec in want.items():
        f = d / "state" / rel
        if not f.is_file():
            raise Damaged(f"{f} is missing")
        if f.stat().st_size != spec["bytes"]:
            raise Damaged(f"{f} has {f.stat().st_size} bytes, {spec['bytes']} were written (truncated?)")
        if hashlib.sha256(f.read_bytes()).hexdigest() != spec["sha256"]:
            raise Damaged(f"{f} differs from what was written (SHA-256 mismatch)")


def read(d: Path) -> tuple[dict[str, np.ndarray], dict]:
    """Read one old-layout checkpoint directory: ({rendered path: array}, meta); `Damaged` if it is."""
    import orbax.checkpoint as ocp

    try:
        entries = read_json(d / "tree.json", what="checkpoint tree")
        meta = read_json(d / "meta.json", what="checkpoint metadata")
    except (ValueError, FileNotFoundError) as e:
        raise Damaged(str(e)) from None
    ok = isinstance(entries, list) and all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("dtype"), str)
        and isinstance(e.get("shape"), list) and all(isinstance(n, int) and n >= 0 for n in e["shape"])
        for e in entries)
    if not ok:
        raise Damaged(f"{d / 'tree.json'}: not a list of leaf entries (path, shape, dtype)")
    try:
        dtypes = [np.dtype(e["dtype"]) for e in entries]
    except TypeError:
        raise Damaged(f"{d / 'tree.json'}: an unknown dtype") from None
    if not (isinstance(meta, dict) and isinstance(meta.get("epoch"), int) and isinstance(meta.get("history"), list)):
        raise Damaged(f"{d / 'meta.json'}: not a checkpoint's metadata (epoch, history, config)")
    names = {f"leaf_{i:04d}": e for i, e in enumerate(entries) if int(np.prod(e["shape"]))}
    loaded: dict[str, Any] = {}
    if names:
        _verify_files(d)
        me = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(),
                                                active_processes={jax.process_index()})
        reader = ocp.Checkpointer(ocp.PyTreeCheckpointHandler(multiprocessing_options=me),
                                  multiprocessing_options=me)
        args = ocp.args.PyTreeRestore(restore_args={n: ocp.RestoreArgs(restore_type=np.ndarray) for n in names})
        try:
            with quiet_orbax(logging.CRITICAL + 1):
                loaded = reader.restore((d / "state").absolute(), args=args)
        except Exception as e:  # noqa: BLE001 -- whatever orbax/tensorstore raise, the files are unreadable
            raise unreadable(d / "state", e) from None
    saved = {}
    for i, (e, dtype) in enumerate(zip(entries, dtypes)):
        value = loaded.get(f"leaf_{i:04d}") if f"leaf_{i:04d}" in names else np.zeros(e["shape"], dtype)
        if value is None or np.shape(value) != tuple(e["shape"]):
            raise Damaged(f"{d / 'state'}: leaf {e['path']} is missing or has the wrong shape")
        saved[render(_names(e["path"]))] = np.asarray(value, dtype)
    return saved, meta


def make_room(root: Path, name: str) -> None:
    """Move an uncommitted old-layout directory ``name`` (newer than LATEST) out of a new save's way."""
    d = root / name
    if d.is_dir() and _complete(d) and int(name[len(_PREFIX):]) not in committed(root):
        os.replace(d, root / atomic.tmp_name(f"old-{name}"))


def _stale(name: str) -> bool:
    """Whether ``name`` is one of the old layout's temporaries whose writer is gone (or is this process)."""
    pid = atomic.tmp_pid(name)
    if pid is None:
        return False
    # saves are synchronous: one of this process's is left over from an earlier failure
    return pid == os.getpid() or not atomic.pid_alive(pid)


def prune_stale(root: Path) -> None:
    """Delete the old layout's stale temporaries in ``root`` (their unmistakable pattern only)."""
    import shutil

    for p in root.iterdir() if root.is_dir() else ():
        if _stale(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)
