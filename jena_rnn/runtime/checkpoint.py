"""Save and restore training state through orbax's CheckpointManager: latest and best kept, damage survived.

On-disk layout of one run directory::

    run_dir/
      config.json              the run's config dict (rewritten atomically on every save)
      history.json             the per-epoch history list (rewritten atomically on every save)
      checkpoints/             one ``ocp.CheckpointManager`` directory, steps named epoch_NNNN
        epoch_0003/
          state/               orbax PyTree item: the state as saved (NamedTuples as dicts), orbax's metadata
          meta/metadata        orbax JSON item: {"epoch", "history", "config", "leaves": {path: {"shape",
                               "dtype", "sha256"}}}, the digest of every leaf as saved
          metrics/metrics      orbax's metrics item {"best": epoch}, only in the epochs saved with is_best
          _CHECKPOINT_METADATA, commit_success.txt   orbax's step metadata and commit record
        epoch_0004.orbax-checkpoint-tmp-<n>   orbax's save in progress (or abandoned by a crash); never read
        damaged-epoch_0005.<uuid>             a damaged checkpoint set aside by a resume; never deleted

Run directories of the layout before this one (LATEST/BEST pointers, tree.json) are read transparently by
`legacy_checkpoint`, and a resumed one gets its new epochs in this layout beside the old ones.

Kept: the newest ``keep`` epochs and the best one, by one preservation policy
(``AnyPreservationPolicy([LatestN(keep), BestN(n=1)])``): orbax's ``best_fn`` alone would keep the best
``max_to_keep`` by metric and could prune the latest, which ``--resume`` needs. The metric is the epoch of
a save with ``is_best`` (an epoch better than all before it), so the best epoch is the newest such one.

Crash safety (checked in orbax 0.12.8's ``path/atomicity.py``, ``AtomicRenameTemporaryPath``): a step is
written into ``epoch_NNNN.orbax-checkpoint-tmp-<n>``, its commit record ``commit_success.txt`` and step
metadata are written there, then it is renamed to ``epoch_NNNN``, atomically on POSIX; old steps are
deleted only after that (``CheckpointManager.save``, synchronous here: no background threads, no async
save). Only steps that hold ``commit_success.txt`` are steps (`orbax_checkpoint._Steps`), so a process
killed at any instant leaves the previous committed epoch intact and, until its successor is renamed
into place, the latest (tests/test_checkpoint.py kills a writer at each stage and at random instants).
Orbax does not fsync (no call to it outside its experimental v1 API), so this is safety against
a killed process, not a power loss; a torn step after one shows as damage (below). `save` never
overwrites a committed epoch: it raises `FileExistsError`. One writer per run directory is assumed
(`jena_rnn.runtime.rundir.lock` enforces it).

What is deleted: orbax's own old steps (the policy above), its own temporaries (``cleanup_tmp_directories``
when a save starts), and the old layout's stale temporaries (`legacy_checkpoint.prune_stale`). Anything
else in the run directory or in `checkpoints/` (a user's `.tmp-notes`, a stray `epoch_0009/`) is not.

Damage. Orbax's zstd chunks can decode silently to wrong numbers after a flipped byte, so every leaf's
SHA-256 is recorded at save time and checked after the restore. Orbax reads every step's metrics item
when a manager opens, so a step whose best-epoch record is damaged is hidden from orbax and counted as
damaged here (`orbax_checkpoint.metrics_problem`). A checkpoint that is unreadable, truncated
or altered is skipped with a warning naming it: `restore` falls back to the newest readable checkpoint
(also for ``which="best"``), and raises one clear error naming the run directory and every damaged
checkpoint only when none is readable.

Leaves are host numpy copies (typed keys as their key data, see `checkpoint_tree.to_host`); `restore`
rebuilds the tree with the treedef of a caller-supplied `like` pytree, so NamedTuples such as `TrainState`
or optax states come back as the same types and typed keys are re-wrapped with `like`'s impl. Older
layouts of the leaves are converted on the way (``LEGACY_LEAVES``, ``LEGACY_FOLDS``: `checkpoint_tree`).
"""
from __future__ import annotations

import json
import os
import uuid
import warnings
from pathlib import Path
from typing import Any

from jena_rnn.runtime import distributed, report, rundir
from jena_rnn.runtime import legacy_checkpoint as legacy
from jena_rnn.runtime import orbax_checkpoint as orbax
from jena_rnn.runtime.checkpoint_tree import LEGACY_FOLDS, LEGACY_LEAVES, Damaged, assemble, to_host
from jena_rnn.runtime.report import read_json

__all__ = ["save", "restore", "resume", "latest", "best", "has_checkpoint", "read_json", "Damaged",
           "LEGACY_LEAVES", "LEGACY_FOLDS"]

_CKPT = "checkpoints"
_DAMAGED = "damaged-"


def _on_stage(stage: str) -> None:
    """Test hook called at `save`'s stages ("before_save", "before_run_files"); tests make it crash."""


def _dir_name(epoch: int) -> str:
    return f"{orbax.PREFIX}_{epoch:04d}"


def _epochs(run_dir: Path, *, warn: bool = False) -> dict[int, str]:
    """{epoch: "orbax" or "legacy"} of every committed checkpoint, ascending."""
    root = Path(run_dir) / _CKPT
    new = orbax.steps(root)[0] + list(orbax.hidden(root))  # hidden ones are damaged: restore skips them
    old = legacy.committed(root, warn=warn and not new)
    return dict(sorted({**{e: "legacy" for e in old}, **{e: "orbax" for e in new}}.items()))


def has_checkpoint(run_dir: str | os.PathLike) -> bool:
    """Whether ``run_dir`` holds at least one committed checkpoint (nothing warns)."""
    return bool(_epochs(Path(run_dir)))


def latest(run_dir: str | os.PathLike) -> int | None:
    """Return the newest committed epoch, or None if the run has no checkpoint."""
    epochs = _epochs(Path(run_dir), warn=True)
    return max(epochs) if epochs else None


def best(run_dir: str | os.PathLike) -> int | None:
    """Return the best epoch (the newest saved with ``is_best``), or None if there is none."""
    root = Path(run_dir) / _CKPT
    new = orbax.steps(root)[1]
    old = legacy.best(root, warn=new is None)
    return max((e for e in (new, old) if e is not None), default=None)


def save(run_dir: str | os.PathLike, state: Any, *, epoch: int, history: list[dict],
         config: dict, is_best: bool, keep: int = 2, collective: bool = True) -> Path:
    """Write a checkpoint of `state` for `epoch`, kept as the latest (and as the best if `is_best`).

    Args:
      run_dir: the run directory; created if missing.
      state: any pytree of arrays (e.g. `TrainState(params, opt_state, step, key)`).
      epoch: epoch number (>= 0) the state was reached after; names `epoch_{epoch:04d}`.
      history: the per-epoch metric dicts so far (JSON-serialisable).
      config: the run configuration, e.g. `dataclasses.asdict(config)` (JSON-serialisable).
      is_best: this epoch is better than all before it: keep it as the best.
      keep: number of newest checkpoints to keep; the best is kept in addition.
      collective: under ``jax.distributed``, every process calls ``save`` (the default): every process
        checks ``epoch`` against the committed ones, then all meet at a barrier before process 0 writes
        (so all refuse alike); leaves that span processes are gathered (a collective), and only process 0
        writes. False: only this process calls it (e.g. process 0 exporting host copies): no barrier.
    Returns:
      The committed checkpoint directory (on the other processes: where process 0 commits it).
    Raises:
      FileExistsError: `epoch_{epoch:04d}` is already committed.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    run_dir = Path(run_dir)
    root = run_dir / _CKPT
    final = root / _dir_name(epoch)
    epochs = _epochs(run_dir)
    if epoch in epochs:
        raise FileExistsError(f"{final} is already committed (the latest is epoch {max(epochs)}); "
                              "continue from the latest checkpoint or use a new run directory")
    # every process has decided before process 0 commits: a process that checked after the commit would
    # see its own epoch as committed, refuse, and leave its partners waiting in their next collective
    if collective:
        distributed.barrier(f"checkpoint.save: epoch {epoch} checked")
    tree, leaves = to_host(state)  # every process: a leaf spanning processes is gathered
    if collective and not distributed.is_main():
        return final
    meta = json.loads(report.json_text({"epoch": epoch, "history": history, "config": config, "leaves": leaves}))
    _on_stage("before_save")
    legacy.make_room(root, final.name)
    if final.exists():
        raise FileExistsError(f"{final} exists but is no checkpoint of this run; move it away to save epoch {epoch}")
    orbax.write(root, epoch, tree, meta, is_best=is_best, keep=keep)
    _on_stage("before_run_files")
    rundir.write_config(run_dir, config)
    rundir.write_history(run_dir, history)
    legacy.prune_stale(root)
    return final


def restore(run_dir: str | os.PathLike, like: Any, *, which: str | int = "latest",
            resume: bool = False) -> tuple[Any, dict]:
    """Load a checkpoint into a pytree with the structure and leaf types of `like`.

    A damaged checkpoint (unreadable, truncated or altered files, see the module docstring) is skipped
    with a warning naming it, for ``"latest"`` and ``"best"``: the newest readable committed one older
    than it is used instead (``meta["epoch"]`` says which). No best epoch falls back alike.

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
    in `checkpoints/`, never deleted), so the next `save` writes the epoch after it and the best is
    chosen among the others. Warns naming what was set aside.
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
        legacy.forget_best(root)
        warnings.warn(f"resuming {run_dir} from epoch {meta['epoch']}: the damaged checkpoints were set aside "
                      f"as {', '.join(moved)} in {root} (kept for inspection; delete them when done)",
                      stacklevel=2)
    return state, meta


def _restore_readable(run_dir: Path, like: Any, which, *, resume: bool = False
                      ) -> tuple[Any, dict, list[tuple[int, str]]]:
    """Restore the first readable of the candidates for ``which``; return (state, meta, damaged ones)."""
    epochs = _epochs(run_dir, warn=which == "latest")
    newest = sorted(epochs, reverse=True)
    if which == "latest":
        candidates = newest
    elif which == "best":
        first = best(run_dir)
        if first is None and epochs:
            warnings.warn(f"{run_dir / _CKPT}: no best checkpoint; using the newest readable checkpoint "
                          "instead", stacklevel=3)
        # a damaged step newer than the best found may have been the best (its record is what is damaged)
        suspect = [e for e in sorted(orbax.hidden(run_dir / _CKPT), reverse=True) if first is None or e > first]
        candidates = suspect + ([] if first is None else [first])
        candidates += [e for e in newest if e not in candidates]
    elif isinstance(which, int) and not isinstance(which, bool):
        candidates = [which] if which in epochs else []
    else:
        raise ValueError(f"which must be 'latest', 'best' or an epoch number, got {which!r}")
    if not candidates:
        raise FileNotFoundError(f"no {which!r} checkpoint in run directory {run_dir} "
                                f"(complete epochs: {list(epochs)})")
    damaged: list[tuple[int, str]] = []
    for epoch in candidates:
        d = run_dir / _CKPT / _dir_name(epoch)
        try:
            saved, meta = orbax.read(d, epoch) if epochs[epoch] == "orbax" else legacy.read(d)
        except Damaged as e:
            damaged.append((epoch, str(e)))
            continue
        state = assemble(saved, like, d, resume=resume)
        if damaged:
            warnings.warn(f"damaged checkpoint(s) in {run_dir}: " + "; ".join(why for _, why in damaged)
                          + f"; falling back to the newest readable one, epoch {epoch}", stacklevel=3)
        return state, meta, damaged
    raise Damaged(f"no readable {which!r} checkpoint in run directory {run_dir}: "
                  + "; ".join(why for _, why in damaged))
