"""Save and restore training state with orbax, crash-safe, with latest/best pointers for `--resume`.

On-disk layout of one run directory::

    run_dir/
      config.json              the run's config dict (rewritten atomically on every save)
      history.json             the per-epoch history list (rewritten atomically on every save)
      checkpoints/
        LATEST                 one line: the directory name of the newest committed checkpoint
        BEST                   one line: the directory name of the best-by-validation checkpoint
        epoch_0003/
          state/               orbax PyTree checkpoint of the flattened leaves {"leaf_0000": ..., ...}
          tree.json            one entry per leaf of the saved pytree: key path, shape, dtype, kind
          meta.json            {"epoch", "history", "config"}
          files.json           size and SHA-256 of every file under state/, checked before a restore
        .jena-rnn-tmp-epoch_0004.<pid>.<uuid>   a save in progress (or abandoned by a crash); never read
        damaged-epoch_0005.<uuid>               a damaged checkpoint set aside by a resume; never deleted

Crash-safety argument. A checkpoint is built completely inside a fresh temporary directory in
`checkpoints/` (same file system as its final name), fsynced file by file, and only then renamed
to `epoch_NNNN` with `os.replace`, which is atomic on POSIX: a reader sees either no `epoch_NNNN`
or a complete one. The `LATEST`/`BEST` pointers are the commit records; each is replaced atomically
(temp file, fsync, `os.replace`, fsync of the directory) only after the rename. Old checkpoints are
pruned only after the new pointers are durable, and the directories that `LATEST` or `BEST` name are
never pruned. Hence a process killed at any instant leaves `LATEST` naming a complete checkpoint
(the previous one, or the new one once its pointer is written), and no step deletes the last good
checkpoint before its successor is committed. A complete `epoch_NNNN` newer than `LATEST` (killed
between rename and pointer update) is not used by `latest`: the pointer decides. If the pointer
itself is missing or names a broken directory, `latest` falls back to the newest complete
directory and warns. `save` never overwrites a committed checkpoint (epoch <= LATEST): it raises
`FileExistsError`. One writer per run directory is assumed (`jena_rnn.runtime.loop.lock_run` enforces it).

What is deleted. Only names this module made itself, and only inside `checkpoints/`: checkpoints beyond
`keep` that no pointer names, and stale temporaries of its own unmistakable pattern
``.jena-rnn-tmp-<what>.<pid>.<32 hex digits>`` whose writing process (the pid) is no longer alive or is
this one. Anything else in the run directory or in `checkpoints/` (a user's `.tmp-notes`, say) is never
touched. Temporaries beside `config.json` and `history.json` are removed by the writer on an error; one
left by a killed process stays (it is outside `checkpoints/`).

Damage. A checkpoint whose files are unreadable, truncated or altered (`files.json` records each file's
size and SHA-256; orbax's zstd chunks can decode silently to wrong numbers after a flipped byte) is
skipped with a warning naming it: `restore` falls back to the newest readable checkpoint (also for
``which="best"``), and raises one clear error naming the run directory and every damaged checkpoint
only when none is readable. Checkpoints written before `files.json` are read as they are (a damaged
one still falls back, but orbax may then print its own noise).

Leaves are stored as numpy arrays through `ocp.PyTreeCheckpointer` (synchronous: `save` returns
after the data is on disk, with no background threads). `restore` rebuilds the tree with the
treedef of a caller-supplied `like` pytree, so NamedTuples such as `TrainState` or optax states
come back as the same types. PRNG keys: raw `uint32[2]` keys (`jax.random.PRNGKey`) are ordinary
arrays; typed keys (`jax.random.key`) are saved as their key data and re-wrapped with the impl of
the matching leaf of `like`.

Older layouts. ``LEGACY_LEAVES`` lists leaves that changed name and layout between versions; a
checkpoint holding the old form is converted on restore when the target wants the new one (so runs
saved by an older jena_rnn still resume, evaluate and predict). ``LEGACY_FOLDS`` lists leaves that
disappeared into a sibling (e.g. the reset-before GRU's second bias ``b_h``, folded into ``b_x``): the
fold is exact for the parameters, so such a run still evaluates and predicts, but not for the
optimiser's copies of them (RMSprop's running average of each), so ``restore(..., resume=True)``
refuses it with a ``ValueError`` saying why.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import uuid
import warnings
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jena_rnn.runtime import distributed, report

_CKPT = "checkpoints"
# (old key-path suffix, new key-path suffix, old value -> new value); suffixes also match the optimiser's
# copies of a parameter (e.g. RMSprop's nu) and a sweep's stacked leaves [S, ...]. A new name must keep
# the leaf's place in the sorted key order (restore still checks the order and refuses otherwise).
LEGACY_LEAVES = (
    # before 2026-11-26 the MLP's hidden kernel was stored as w [T*F, units]; now w_t = w.T (models.py)
    ("['hidden']['w']", "['hidden']['w_t']", lambda a: np.swapaxes(a, -1, -2)),
)
# (key-path suffix of a leaf that no longer exists, suffix of the sibling it folds into, (into, old) ->
# new value of into, why a resumed run cannot use the result). A leaf is folded only when the target
# lacks it and wants the sibling; suffixes also match optimiser copies and stacked sweep leaves.
LEGACY_FOLDS = (
    # before 2026-12 a reset-before GRU had a second bias b_h; b_x + b_h is the same GRU (cells.py)
    ("['b_h']", "['b_x']", np.add,
     "it was written by an older jena_rnn whose reset-before GRU (reset_after=False) had two biases, "
     "b_x and b_h; they are folded into the one bias b_x exactly, but the optimiser's running averages "
     "of the two cannot be combined into the one the new layout would have had, so training cannot "
     "continue from it. Evaluate and predict still work; start a new run to train"),
)
_PREFIX = "epoch_"
_TMP = report.TMP_PREFIX  # the project's own temporaries (`report.tmp_name`), pruned only when stale
_TMP_RE = re.compile(r"\.jena-rnn-tmp-.+\.(\d+)\.[0-9a-f]{32}")
_DAMAGED = "damaged-"
_FILES = "files.json"


def _stale(name: str) -> bool:
    """Whether ``name`` is one of this module's temporaries whose writer is gone (or is this process)."""
    m = _TMP_RE.fullmatch(name)
    if m is None:
        return False
    pid = int(m.group(1))
    if pid == os.getpid():  # saves are synchronous: one of ours is left over from an earlier failure
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


class Damaged(ValueError):
    """A checkpoint's files are unreadable or differ from what was written (message: which and why)."""


def read_json(path: str | os.PathLike, *, what: str = "file") -> Any:
    """Parse a JSON file; raise one clear error naming it.

    Raises:
      FileNotFoundError: ``path`` does not exist.   ValueError: it is not UTF-8 text or not valid JSON.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); the {what} is damaged") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected a JSON {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                         f"the {what} is damaged") from None


def _on_stage(stage: str) -> None:
    """Test hook called at each commit stage of `save`; tests replace it to simulate a crash."""


def _dir_name(epoch: int) -> str:
    return f"{_PREFIX}{epoch:04d}"


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.generic, np.ndarray, jax.Array)) and np.ndim(obj) == 0:
        return np.asarray(obj).item()
    raise TypeError(f"cannot store {type(obj).__name__} in JSON: {obj!r}")


def _dump(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=_json_default) + "\n"


@contextlib.contextmanager
def _quiet_absl(level=None):
    """Silence orbax's absl logging (below ERROR, or below ``level``) for the block, then restore it.

    ``level=logging.CRITICAL + 1`` (a restore that may meet damage) also silences the error reports of
    orbax and asyncio: the damage becomes the one warning or error ``restore`` gives.
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


def _checkpointer():
    """Return an orbax PyTree checkpointer private to this process.

    The leaves are host numpy copies, so no other process takes part: under ``jax.distributed`` only
    process 0 saves (orbax's default would wait for every process at a barrier), and each process
    restores on its own.
    """
    import orbax.checkpoint as ocp

    me = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(), active_processes={jax.process_index()})
    return ocp.Checkpointer(ocp.PyTreeCheckpointHandler(multiprocessing_options=me), multiprocessing_options=me)


def _is_key(x: Any) -> bool:
    return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _spec(x: Any) -> dict:
    """Describe one leaf for tree.json without copying it: shape, dtype, kind (typed keys: key data)."""
    if _is_key(x):
        data = jax.eval_shape(jax.random.key_data, x)
        return {"shape": list(data.shape), "dtype": str(data.dtype), "kind": "typed_key"}
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return {"shape": list(x.shape), "dtype": str(np.dtype(x.dtype)), "kind": "array"}
    value = np.asarray(x)
    return {"shape": list(value.shape), "dtype": str(value.dtype), "kind": "array"}


def _to_numpy(x: Any) -> np.ndarray:
    """Copy one concrete leaf to host memory as a numpy array (typed keys as their key data)."""
    if isinstance(x, jax.ShapeDtypeStruct):
        raise TypeError("abstract leaf (jax.ShapeDtypeStruct) has no value to save")
    return distributed.to_host(jax.random.key_data(x) if _is_key(x) else x)


def _complete(ckpt_dir: Path) -> bool:
    return (ckpt_dir / "meta.json").is_file() and (ckpt_dir / "tree.json").is_file()


def _epochs(run_dir: Path) -> list[int]:
    """Epochs that have a complete checkpoint directory, ascending."""
    root = Path(run_dir) / _CKPT
    if not root.is_dir():
        return []
    found = []
    for p in root.iterdir():
        suffix = p.name[len(_PREFIX):]
        if p.name.startswith(_PREFIX) and suffix.isdigit() and _complete(p):
            found.append(int(suffix))
    return sorted(found)


def _read_pointer(run_dir: Path, name: str) -> tuple[bool, int | None]:
    """Return (pointer file exists, epoch it names if that checkpoint is complete else None).

    A pointer that is not a short UTF-8 line naming ``epoch_NNNN`` (binary garbage, say) counts as broken.
    """
    pointer = Path(run_dir) / _CKPT / name
    if not pointer.is_file():
        return False, None
    try:
        target = pointer.read_bytes()[:64].decode("utf-8").strip()
    except (UnicodeDecodeError, OSError):
        return True, None
    suffix = target[len(_PREFIX):]
    if target.startswith(_PREFIX) and suffix.isdigit() and _complete(pointer.parent / target):
        return True, int(suffix)
    return True, None


def _committed(run_dir: Path) -> int | None:
    """The newest committed epoch: LATEST's, or (LATEST broken) the newest complete one, as `latest`."""
    epoch = _read_pointer(run_dir, "LATEST")[1]
    if epoch is None:
        epochs = _epochs(run_dir)
        epoch = epochs[-1] if epochs else None
    return epoch


def _file_digests(state_dir: Path) -> dict[str, dict]:
    """{path relative to ``state_dir``: {"bytes", "sha256"}} of every file below it."""
    out = {}
    for dirpath, _, filenames in os.walk(state_dir):
        for name in sorted(filenames):
            f = Path(dirpath) / name
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    h.update(block)
            out[f.relative_to(state_dir).as_posix()] = {"bytes": f.stat().st_size, "sha256": h.hexdigest()}
    return dict(sorted(out.items()))


def _verify_files(ckpt_dir: Path) -> None:
    """Raise `Damaged` if a file under state/ is missing or differs from ``files.json`` (if recorded)."""
    manifest = ckpt_dir / _FILES
    if not manifest.is_file():
        return  # written before files.json existed: nothing to check against
    try:
        want = read_json(manifest, what="checkpoint file list")
    except ValueError as e:
        raise Damaged(str(e)) from None
    state = ckpt_dir / "state"
    for rel, spec in want.items():
        f = state / rel
        if not f.is_file():
            raise Damaged(f"{f} is missing")
        if f.stat().st_size != spec["bytes"]:
            raise Damaged(f"{f} has {f.stat().st_size} bytes, {spec['bytes']} were written (truncated?)")
    got = _file_digests(state) if want else {}
    for rel, spec in want.items():
        if got[rel]["sha256"] != spec["sha256"]:
            raise Damaged(f"{state / rel} differs from what was written (SHA-256 mismatch)")


def save(run_dir: str | os.PathLike, state: Any, *, epoch: int, history: list[dict],
         config: dict, is_best: bool, keep: int = 2, collective: bool = True) -> Path:
    """Write a checkpoint of `state` for `epoch` and commit it as LATEST (and BEST if `is_best`).

    Args:
      run_dir: the run directory; created if missing.
      state: any pytree of arrays (e.g. `TrainState(params, opt_state, step, key)`).
      epoch: epoch number (>= 0) the state was reached after; names `epoch_{epoch:04d}`.
      history: the per-epoch metric dicts so far (JSON-serialisable).
      config: the run configuration, e.g. `dataclasses.asdict(config)` (JSON-serialisable).
      is_best: also point BEST at this checkpoint.
      keep: number of newest checkpoints to keep; LATEST and BEST are kept in addition.
      collective: under ``jax.distributed``, every process calls ``save`` (the default): every process
        checks ``epoch`` against LATEST, then all meet at a barrier before process 0 writes (so all
        refuse alike); leaves that span processes are gathered (a collective), and only process 0
        writes. False: only this process calls it (e.g. process 0 exporting host copies): no barrier,
        and it writes.
    Returns:
      The committed checkpoint directory (on the other processes: where process 0 commits it).
    Raises:
      FileExistsError: `epoch_{epoch:04d}` exists and is not newer than LATEST, i.e. was committed.
    """
    import orbax.checkpoint as ocp

    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    run_dir = Path(run_dir)
    root = run_dir / _CKPT
    final = root / _dir_name(epoch)
    committed = _committed(run_dir)
    if final.exists() and committed is not None and epoch <= committed:
        raise FileExistsError(f"{final} is already committed (LATEST is epoch {committed}); "
                              "continue from the latest checkpoint or use a new run directory")
    # every process has decided before process 0 commits: a process that checked after the commit would
    # see its own epoch as committed, refuse, and leave its partners waiting in their next collective
    if collective:
        distributed.barrier(f"checkpoint.save: epoch {epoch} checked")

    path_leaves, _ = jax.tree_util.tree_flatten_with_path(state)
    arrays, entries = {}, []
    for i, (path, leaf) in enumerate(path_leaves):
        value = _to_numpy(leaf)  # every process: a leaf spanning processes is gathered
        entries.append({"path": jax.tree_util.keystr(path), **_spec(leaf)})
        if value.size:  # orbax refuses zero-size arrays; tree.json alone describes them
            arrays[f"leaf_{i:04d}"] = value
    if collective and not distributed.is_main():
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / report.tmp_name(final.name)
    tmp.mkdir()
    if arrays:
        with _quiet_absl():
            _checkpointer().save((tmp / "state").absolute(), args=ocp.args.PyTreeSave(arrays))
    meta = {"epoch": epoch, "history": history, "config": config}
    (tmp / _FILES).write_text(_dump(_file_digests(tmp / "state")))
    (tmp / "tree.json").write_text(_dump(entries))
    (tmp / "meta.json").write_text(_dump(meta))
    for dirpath, _, filenames in os.walk(tmp):
        for name in filenames:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))
    _on_stage("before_rename")

    if final.exists():  # newer than LATEST, so never committed (a crash before the pointer)
        old = root / report.tmp_name(f"old-{final.name}")
        os.replace(final, old)
    os.replace(tmp, final)
    _fsync_path(root)
    _on_stage("before_pointer")

    report.write_atomic(root / "LATEST", final.name + "\n")
    if is_best:
        _on_stage("before_best")
        report.write_atomic(root / "BEST", final.name + "\n")
    report.write_atomic(run_dir / "config.json", _dump(config))
    report.write_atomic(run_dir / "history.json", _dump(history))
    _on_stage("before_prune")
    _prune(run_dir, keep)
    return final


def _prune(run_dir: Path, keep: int) -> None:
    """Delete checkpoints beyond the newest `keep` that neither pointer names, and our stale temporaries.

    Only inside `checkpoints/`, and only names of this module's own patterns (`_stale`): a user's files,
    whatever they are called, are never touched.
    """
    root = run_dir / _CKPT
    protected = {_read_pointer(run_dir, name)[1] for name in ("LATEST", "BEST")}
    epochs = _epochs(run_dir)
    for epoch in epochs[:-keep]:
        if epoch not in protected:
            shutil.rmtree(root / _dir_name(epoch), ignore_errors=True)
    for p in root.iterdir():
        if _stale(p.name):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)
            else:
                p.unlink(missing_ok=True)


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds at least one complete checkpoint (no pointer is read, nothing warns)."""
    return bool(_epochs(Path(run_dir)))


def latest(run_dir: str | os.PathLike) -> int | None:
    """Return the epoch named by the LATEST pointer, or None if the run has no checkpoint.

    If the pointer is missing, unreadable or names an incomplete directory while complete checkpoints
    exist, warn and return the newest complete epoch.
    """
    exists, epoch = _read_pointer(Path(run_dir), "LATEST")
    if epoch is not None:
        return epoch
    epochs = _epochs(Path(run_dir))
    if not epochs:
        return None
    why = "is unreadable or names a missing or incomplete checkpoint" if exists else "is missing"
    warnings.warn(f"{Path(run_dir) / _CKPT / 'LATEST'} {why}; "
                  f"falling back to the newest complete checkpoint, epoch {epochs[-1]}", stacklevel=2)
    return epochs[-1]


def best(run_dir: str | os.PathLike) -> int | None:
    """Return the epoch named by the BEST pointer, or None if there is none (warns if it is broken)."""
    exists, epoch = _read_pointer(Path(run_dir), "BEST")
    if exists and epoch is None:
        warnings.warn(f"{Path(run_dir) / _CKPT / 'BEST'} is unreadable or names a missing or incomplete "
                      "checkpoint", stacklevel=2)
    return epoch


def restore(run_dir: str | os.PathLike, like: Any, *, which: str | int = "latest",
            resume: bool = False) -> tuple[Any, dict]:
    """Load a checkpoint into a pytree with the structure and leaf types of `like`.

    A damaged checkpoint (unreadable, truncated or altered files, see the module docstring) is skipped
    with a warning naming it, for ``"latest"`` and ``"best"``: the newest readable committed one older
    than it is used instead (``meta["epoch"]`` says which). A missing or broken BEST falls back alike.

    Args:
      run_dir: the run directory given to `save`.
      like: a pytree with the saved structure (e.g. a freshly initialised `TrainState`); its leaves
        may be arrays or `jax.ShapeDtypeStruct`s. Only its treedef, shapes, dtypes and key impls are used.
      which: "latest", "best", or an epoch number (no fallback: that epoch or an error).
      resume: the state will continue training (``--resume``): refuse a checkpoint that needs a
        ``LEGACY_FOLDS`` conversion, which is exact for evaluation only. False: evaluate or predict.
    Returns:
      (state, meta): state has `like`'s treedef (jax arrays where `like` has jax arrays or abstract
      leaves, numpy arrays for numpy leaves, Python scalars for Python scalars); meta is the saved
      {"epoch", "history", "config"}.
    Raises:
      FileNotFoundError: no such checkpoint in `run_dir`.
      Damaged (a ValueError): no readable checkpoint (names the run directory and what is damaged).
      ValueError: the saved tree does not match `like` (names the leaf path and both shapes/dtypes),
        or `resume` and the checkpoint's older layout cannot be continued (says why).
    """
    state, meta, _ = _restore_readable(Path(run_dir), like, which, resume=resume)
    return state, meta


def resume(run_dir: str | os.PathLike, like: Any) -> tuple[Any, dict]:
    """`restore` the latest readable checkpoint for a writer that goes on from it.

    Damaged checkpoints newer than the one restored are set aside (renamed ``damaged-epoch_NNNN.<uuid>``
    in `checkpoints/`, never deleted) and LATEST is pointed at the restored one, so the next `save`
    writes the epoch after it. A BEST that named a set-aside checkpoint is removed (the next better
    epoch sets it again). Warns naming what was set aside.
    """
    run_dir = Path(run_dir)
    state, meta, damaged = _restore_readable(run_dir, like, "latest", resume=True)
    if damaged and distributed.is_main():  # under jax.distributed, process 0 alone writes
        root = run_dir / _CKPT
        moved = []
        for epoch, _ in damaged:
            target = root / f"{_DAMAGED}{_dir_name(epoch)}.{uuid.uuid4().hex[:8]}"
            os.replace(root / _dir_name(epoch), target)
            moved.append(target.name)
        _fsync_path(root)
        report.write_atomic(root / "LATEST", _dir_name(meta["epoch"]) + "\n")
        if _read_pointer(run_dir, "BEST")[1] is None and (root / "BEST").exists():
            (root / "BEST").unlink()
        warnings.warn(f"resuming {run_dir} from epoch {meta['epoch']}: the damaged checkpoints were set aside "
                      f"as {', '.join(moved)} in {root} (kept for inspection; delete them when done)",
                      stacklevel=2)
    return state, meta


def _restore_readable(run_dir: Path, like: Any, which, *, resume: bool = False
                      ) -> tuple[Any, dict, list[tuple[int, str]]]:
    """Restore the first readable of the candidates for ``which``; return (state, meta, damaged ones)."""
    epochs = _epochs(run_dir)
    if which == "latest":
        first = latest(run_dir)
        candidates = [] if first is None else [first] + [e for e in reversed(epochs) if e < first]
    elif which == "best":
        first, newest = best(run_dir), _committed(run_dir)
        if first is None and newest is not None:
            warnings.warn(f"{run_dir / _CKPT}: no usable BEST pointer; using the newest readable checkpoint "
                          "instead", stacklevel=3)
        head = [] if first is None else [first]
        candidates = head + [e for e in reversed(epochs) if newest is not None and e <= newest and e != first]
    elif isinstance(which, int) and not isinstance(which, bool):
        candidates = [which] if which in epochs else []
    else:
        raise ValueError(f"which must be 'latest', 'best' or an epoch number, got {which!r}")
    if not candidates:
        raise FileNotFoundError(f"no {which!r} checkpoint in run directory {run_dir} "
                                f"(complete epochs: {epochs})")
    damaged: list[tuple[int, str]] = []
    for epoch in candidates:
        try:
            state, meta = _restore_one(run_dir / _CKPT / _dir_name(epoch), like, resume=resume)
        except Damaged as e:
            damaged.append((epoch, str(e)))
            continue
        if damaged:
            warnings.warn(f"damaged checkpoint(s) in {run_dir}: " + "; ".join(why for _, why in damaged)
                          + f"; falling back to the newest readable one, epoch {epoch}", stacklevel=3)
        return state, meta, damaged
    raise Damaged(f"no readable {which!r} checkpoint in run directory {run_dir}: "
                  + "; ".join(why for _, why in damaged))


def _read_entries(ckpt_dir: Path) -> tuple[list[dict], dict]:
    """Read and check the form of tree.json and meta.json; raise `Damaged` naming the file."""
    try:
        entries = read_json(ckpt_dir / "tree.json", what="checkpoint tree")
        meta = read_json(ckpt_dir / "meta.json", what="checkpoint metadata")
    except (ValueError, FileNotFoundError) as e:
        raise Damaged(str(e)) from None
    ok = isinstance(entries, list) and all(
        isinstance(e, dict) and isinstance(e.get("path"), str) and isinstance(e.get("dtype"), str)
        and isinstance(e.get("shape"), list) and all(isinstance(n, int) and n >= 0 for n in e["shape"])
        for e in entries)
    if not ok:
        raise Damaged(f"{ckpt_dir / 'tree.json'}: not a list of leaf entries (path, shape, dtype)")
    try:
        for e in entries:
            np.dtype(e["dtype"])
    except TypeError:
        raise Damaged(f"{ckpt_dir / 'tree.json'}: unknown dtype {e['dtype']!r}") from None
    if not (isinstance(meta, dict) and isinstance(meta.get("epoch"), int) and isinstance(meta.get("history"), list)):
        raise Damaged(f"{ckpt_dir / 'meta.json'}: not a checkpoint's metadata (epoch, history, config)")
    return entries, meta


def _restore_one(ckpt_dir: Path, like: Any, *, resume: bool = False) -> tuple[Any, dict]:
    """Restore one checkpoint directory; `Damaged` if its files are, ValueError if `like` does not fit
    (or, with `resume`, if its older layout can be evaluated but not trained on: ``LEGACY_FOLDS``)."""
    import orbax.checkpoint as ocp

    entries, meta = _read_entries(ckpt_dir)
    path_leaves, treedef = jax.tree_util.tree_flatten_with_path(like)
    like_paths = [jax.tree_util.keystr(p) for p, _ in path_leaves]
    entries, convert, folded = _upgrade(entries, set(like_paths))
    if folded and resume:
        why = next(why for old, _, _, why in LEGACY_FOLDS if folded[0].endswith(old))
        raise ValueError(f"cannot resume from checkpoint {ckpt_dir}: {why}")
    saved_paths = [e["path"] for e in entries]
    if like_paths != saved_paths:
        missing = [p for p in saved_paths if p not in like_paths]
        extra = [p for p in like_paths if p not in saved_paths]
        raise ValueError(f"checkpoint {ckpt_dir} does not match the target tree: leaves only in the "
                         f"checkpoint {missing}, only in the target {extra} "
                         f"({len(saved_paths)} saved leaves, {len(like_paths)} target leaves)")
    for path, (_, leaf), entry in zip(like_paths, path_leaves, entries):
        want = _spec(leaf)
        if (want["shape"], want["dtype"]) != (entry["shape"], entry["dtype"]):
            raise ValueError(f"checkpoint {ckpt_dir}: leaf {path} was saved with shape "
                             f"{tuple(entry['shape'])} dtype {entry['dtype']} but the target has shape "
                             f"{tuple(want['shape'])} dtype {want['dtype']}")

    stored = [e for entry in entries for e in (entry, *(src for src, _ in entry.get("folds", ())))]
    names = [e["leaf"] for e in stored if int(np.prod(e["shape"]))]
    loaded: dict[str, np.ndarray] = {}
    if names:
        _verify_files(ckpt_dir)
        restore_args = {n: ocp.RestoreArgs(restore_type=np.ndarray) for n in names}
        try:
            with _quiet_absl(logging.CRITICAL + 1):
                loaded = _checkpointer().restore(
                    (ckpt_dir / "state").absolute(), args=ocp.args.PyTreeRestore(restore_args=restore_args))
        except Exception as e:  # noqa: BLE001 -- whatever orbax/tensorstore raise, the files are unreadable
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
            raise Damaged(f"{ckpt_dir / 'state'} is unreadable ({type(e).__name__}: {first})") from None
        for e in stored:  # the size: a converted leaf (LEGACY_LEAVES) has another shape
            size = int(np.prod(e["shape"]))
            if size and (loaded.get(e["leaf"]) is None or np.size(loaded[e["leaf"]]) != size):
                raise Damaged(f"{ckpt_dir / 'state'}: leaf {e['leaf']} is missing or has the wrong size")

    def value_of(entry: dict) -> np.ndarray:
        value = loaded.get(entry["leaf"])
        return np.zeros(entry["shape"], np.dtype(entry["dtype"])) if value is None else value

    leaves = []
    for i, ((_, leaf), entry) in enumerate(zip(path_leaves, entries)):
        value = value_of(entry)
        if i in convert:
            value = np.ascontiguousarray(convert[i](value))
        for src, combine in entry.get("folds", ()):
            value = np.asarray(combine(value, value_of(src)), value.dtype)
        leaves.append(_like_type(leaf, value))
    return jax.tree_util.tree_unflatten(treedef, leaves), meta


def _upgrade(entries: list[dict], wanted: set[str]) -> tuple[list[dict], dict, list[str]]:
    """Convert saved leaves of an older layout that the target wants in the new one.

    Renames (``LEGACY_LEAVES``) change an entry's path and shape; folds (``LEGACY_FOLDS``) drop an entry
    the target lacks and attach it, as ``entry["folds"] = [(dropped entry, combine)]``, to the sibling
    it folds into. Every entry gets ``"leaf"``, the name of its stored array.

    Returns:
      (entries in the target's order, {position: conversion of the loaded value}, saved paths folded).
    """
    entries = [{**e, "leaf": f"leaf_{i:04d}"} for i, e in enumerate(entries)]
    saved = {e["path"] for e in entries}
    into: dict[str, list] = {}
    for entry in entries:
        for old, new, combine, _ in LEGACY_FOLDS:
            target = entry["path"][:-len(old)] + new if entry["path"].endswith(old) else None
            if target is not None and entry["path"] not in wanted and target in wanted and target in saved:
                into.setdefault(target, []).append((entry, combine))
                break
    folded = [src["path"] for pairs in into.values() for src, _ in pairs]
    out, convert = [], {}
    for entry in entries:
        if entry["path"] in folded:
            continue
        if entry["path"] in into:
            entry = {**entry, "folds": into[entry["path"]]}
        for old, new, fn in LEGACY_LEAVES:
            path = entry["path"][:-len(old)] + new if entry["path"].endswith(old) else None
            if path is not None and path in wanted and entry["path"] not in wanted:
                shape = list(fn(np.broadcast_to(np.zeros((), entry["dtype"]), entry["shape"])).shape)
                entry, convert[len(out)] = {**entry, "path": path, "shape": shape}, fn
                break
        out.append(entry)
    return out, convert, folded


def _like_type(leaf: Any, value: np.ndarray) -> Any:
    """Convert a loaded numpy value to the kind of object `leaf` is."""
    if _is_key(leaf):  # an abstract key leaf carries no impl: the default impl is used
        impl = None if isinstance(leaf, jax.ShapeDtypeStruct) else jax.random.key_impl(leaf)
        return jax.random.wrap_key_data(value, impl=impl)
    if isinstance(leaf, (jax.Array, jax.ShapeDtypeStruct)):
        return jnp.asarray(value)
    if isinstance(leaf, (np.ndarray, np.generic)):
        return value if isinstance(leaf, np.ndarray) else value[()]
    return type(leaf)(value.item())
