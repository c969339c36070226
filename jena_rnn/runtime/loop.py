"""The epoch loop shared by ``train.fit`` (the Jena forecaster) and ``imdb.fit`` (the classifier).

One place owns what a run directory promises, whatever is trained in it:
- ``lock_run``: one writer at a time. The lock is ``jena-rnn.lock`` in the run directory, an
  ``fcntl.flock`` on that open file, and the file holds the holder's pid, host and start time for the
  message that refuses a second writer at once (``FileExistsError``). flock rather than an
  ``O_CREAT | O_EXCL`` file because the kernel drops a flock when its process dies, kill -9 included:
  a killed trainer never leaves a lock that blocks the next one, and no pid has to be guessed alive (a
  reused pid, a pid in another container or on another host would fool that). A lock file left by a
  dead holder is taken over with a warning naming it; the file is removed on release, also after an
  exception. Where the file system has no flock, the file's pid decides (same host, pid gone: stale).
  Under ``jax.distributed`` process 0 alone takes it and tells the others whether it got it.
- ``open_run``: a run directory that holds checkpoints is continued only when asked (``resume``) and only
  with the configuration it was started with; otherwise it is refused, never overwritten.
- ``run_epochs``: every epoch is timed, checked for a non-finite loss (``TrainingDiverged``, naming the
  last good checkpoint, which stays the latest one), checkpointed (``checkpoint.save``: BEST follows the
  best ``score``, the lowest or with ``minimize=False`` the highest) and logged; ``patience`` epochs
  without a better score stop the run. The count of epochs since the best one is recomputed from the
  history, so a resumed run stops exactly where an uninterrupted one would.
Under ``jax.distributed`` every process runs the loop alike (``checkpoint.save`` is a collective) and
process 0 writes the files.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import math
import os
import socket
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterator

from jena_rnn.runtime import checkpoint, distributed, report

LOCK = "jena-rnn.lock"
MARKER = "jena-rnn-run.json"  # written into every run directory this project creates or continues
# what makes an existing folder one of ours (run directories written before MARKER existed have these)
_OURS = (MARKER, LOCK, "checkpoints", "sweep.json")


def _kind_of(run_dir: Path) -> str | None:
    """The kind of run ``run_dir`` holds: its marker's, else guessed from an older layout, else None."""
    marker = run_dir / MARKER
    if marker.is_file():
        saved = checkpoint.read_json(marker, what="run marker")
        return saved.get("kind") if isinstance(saved, dict) else None
    if (run_dir / "sweep.json").exists():
        return "sweep"
    config = run_dir / "config.json"
    if config.is_file():
        with contextlib.suppress(ValueError):
            saved = checkpoint.read_json(config, what="run configuration")
            if isinstance(saved, dict):
                return "imdb" if "max_features" in saved else "forecast" if "model" in saved else None
    return None


def check_run_folder(run_dir: Path, kind: str | None = None) -> None:
    """Refuse ``run_dir`` unless it is new, empty or a run directory of this project (of this ``kind``).

    A folder that already holds other things (a user's ``config.json`` or ``history.csv``, the current
    folder for ``--out ""``) would have them overwritten by the run's files, so it is refused.

    Raises:
      FileExistsError: ``run_dir`` is a file, or a non-empty folder that is not a jena-rnn run.
    """
    if str(run_dir) in ("", "."):
        raise FileExistsError(f"run directory {str(run_dir)!r}: give a new or empty folder, not the current one")
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"{run_dir}: is a file, not a run directory")
    if not run_dir.is_dir():
        return
    entries = sorted(p.name for p in run_dir.iterdir())
    nested = any((run_dir / e).is_dir() and any((run_dir / e / n).exists() for n in _OURS) for e in entries)
    if entries and not nested and not any(name in entries for name in _OURS):  # nested: a study of runs
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FileExistsError(f"{run_dir}: holds files that are not a jena-rnn run ({shown}); the run would "
                              "overwrite them: choose a new or empty folder")
    found = _kind_of(run_dir) if entries else None
    if kind is not None and found is not None and found != kind:
        raise FileExistsError(f"{run_dir}: holds a {found} run, not a {kind} one; its files would be overwritten: "
                              "choose another folder")
_held: dict[str, list] = {}  # lock path -> [fd, depth, thread id]: re-entrant within one thread


class TrainingDiverged(FloatingPointError):
    """Raised when a loss becomes NaN or infinite; the last good checkpoint is kept."""


def _holder(text: str) -> dict:
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) else {}
    except ValueError:
        return {}


def _describe(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since {info.get('since', '?')}"
            if info else "an unknown holder (the lock file is empty or unreadable)")


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, TypeError):
        return True  # exists but not ours, or not a pid: do not assume it is gone
    return True


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _acquire(path: Path) -> int:
    """Take the lock file ``path``; return its open descriptor (see the module docstring)."""
    import fcntl

    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": _now()}
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except BlockingIOError:
                info = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                raise FileExistsError(f"{path.parent} is in use by another training: {path} is held by "
                                      f"{_describe(info)}; wait for it to end or use another output directory"
                                      ) from None
            except OSError as e:  # no flock on this file system: the pid in the file decides
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                flocked = False
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder released (unlinked) it between our open and flock: try again
                os.close(fd)
                continue
            info = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            if info and not flocked and (info.get("host") != me["host"] or _alive(info.get("pid"))):
                raise FileExistsError(f"{path.parent} is in use by another training: {path} is held by "
                                      f"{_describe(info)} (no flock here, so a lock of a live process or of "
                                      "another host counts); remove the file if that training is gone")
            if info or os.fstat(fd).st_size:
                warnings.warn(f"taking over the stale lock {path} of {_describe(info)}: that process ended "
                              "without releasing it (killed?)", stacklevel=4)
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
            os.fsync(fd)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise


@contextlib.contextmanager
def lock_run(run_dir: str | Path | None, kind: str | None = None) -> Iterator[None]:
    """Hold ``run_dir``'s writer lock for the block (None: nothing to lock); re-entrant in one thread.

    First ``check_run_folder(run_dir, kind)``; a run directory is marked ``MARKER`` with its ``kind``
    ("forecast", "imdb", "sweep", "reproduce"), so that one kind of run never writes into another's folder.

    Raises:
      FileExistsError: another process (or thread) holds it; names its pid, host and start time.
    """
    if run_dir is None:
        yield
        return
    run_dir = Path(run_dir)
    path = run_dir.absolute() / LOCK
    key, me = str(path), threading.get_ident()
    if key in _held and _held[key][2] == me:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    fd, error = None, None
    if distributed.is_main():
        try:
            check_run_folder(run_dir, kind)
            run_dir.mkdir(parents=True, exist_ok=True)
            fd = _acquire(path)
            if not (run_dir / MARKER).exists():
                report.write_json(run_dir / MARKER, {"written_by": "jena_rnn", "kind": kind, "since": _now()})
        except FileExistsError as e:
            error = e
    if _processes() > 1:  # every process learns whether process 0 got it, so all stop alike
        from jax.experimental import multihost_utils
        import numpy as np

        ok = int(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
        if not ok and error is None:
            error = FileExistsError(f"{run_dir} is in use by another training (process 0 could not lock {path})")
    if error is not None:
        raise error
    _held[key] = [fd, 1, me]
    try:
        yield
    finally:
        del _held[key]
        if fd is not None:
            with contextlib.suppress(OSError):
                path.unlink()  # before the close: a waiting writer then sees a new file (inode check)
            os.close(fd)


def _processes() -> int:
    import jax

    return jax.process_count()


def open_run(run_dir: Path | None, state: Any, *, resume: bool,
             check_config: Callable[[dict], None]) -> tuple[Any, list[dict]]:
    """Return ``(state, history)``: restored from ``run_dir``'s latest checkpoint, or as given and ``[]``.

    Call it inside ``lock_run(run_dir)``. A damaged latest checkpoint is set aside and the newest
    readable one continued, with a warning (``checkpoint.resume``).

    Args:
      run_dir: the run directory (None: no files, a fresh run).
      state: a freshly initialised state, the template the checkpoint is restored into.
      resume: continue a run directory that holds checkpoints (one without any starts afresh).
      check_config: called with the saved ``config.json`` before anything is restored; raises
        ValueError naming what differs.
    Raises:
      FileExistsError: ``run_dir`` holds checkpoints and not ``resume``.
      ValueError: config.json is not valid JSON or UTF-8 (names the file), or ``check_config``'s.
    """
    if run_dir is None or not checkpoint.has_checkpoint(run_dir):
        if resume and run_dir is not None and (Path(run_dir) / "history.json").is_file():
            warnings.warn(f"{run_dir} has a history.json but no checkpoint to resume from: starting afresh "
                          "(its history will be rewritten)", stacklevel=2)
        return state, []
    if not resume:
        raise FileExistsError(f"{run_dir} already holds checkpoints: pass resume=True (--resume) "
                              "to continue it, or choose another output directory")
    check_config(checkpoint.read_json(Path(run_dir) / "config.json", what="run configuration"))
    state, meta = checkpoint.resume(run_dir, state)
    return state, list(meta["history"])


def config_differences(now: dict, saved: dict, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """Top-level keys whose values differ between two JSON-like configs (tuples equal lists)."""
    now, saved = json.loads(json.dumps(now)), json.loads(json.dumps(saved))
    return sorted(k for k in set(now) | set(saved) if k not in ignore and now.get(k) != saved.get(k))


def run_epochs(state: Any, history: list[dict], one_epoch: Callable[[Any], tuple[Any, dict]], *,
               epochs: int, score: str, finite: dict[str, str], run_dir: Path | None = None,
               config: dict | None = None, write_history: Callable[[Path, list[dict]], None] | None = None,
               log: Callable[[str], None] | None = None, line: Callable[[dict, list[dict]], str] | None = None,
               patience: int | None = None, minimize: bool = True, hint: str = "") -> tuple[Any, list[dict]]:
    """Run epochs ``len(history) + 1 .. epochs`` of ``one_epoch``; return the final state and history.

    Args:
      one_epoch: ``state -> (state, metrics)``, one epoch of training plus validation; ``metrics`` is a
        dict of floats. The loop makes each history row ``{"epoch", **metrics, "epoch_seconds"}``.
      score: the metric that picks the best checkpoint and drives early stopping.
      finite: ``{metric: label}`` of the metrics that must be finite, else ``TrainingDiverged``
        (e.g. ``{"val_mae": "validation MAE"}``); the labels also name ``score`` in the log.
      run_dir, config: where ``checkpoint.save`` writes every epoch, and the config it records.
      write_history: ``(run_dir, history) -> None``, e.g. the CSV and plot (process 0 only).
      log, line: ``log(line(row, history))`` once per epoch; ``log`` also gets the early-stop notice.
      patience: stop after this many epochs without a better ``score`` (None: never).
      minimize: lower ``score`` is better (False: higher, e.g. accuracy).
      hint: appended to the divergence message (e.g. "Try a lower --lr.").
    """
    if run_dir is not None and config is None:
        raise ValueError("run_epochs: a run_dir needs the config to record beside its checkpoints")
    sign = 1.0 if minimize else -1.0
    values = [sign * h[score] for h in history]
    best = min(values, default=math.inf)
    stale = len(values) - 1 - values.index(best) if values else 0
    if patience is not None and stale >= patience:
        if log is not None:
            log(f"nothing to train: the run stopped early at epoch {len(history)} (patience {patience})")
        return state, history
    if len(history) >= epochs and log is not None:
        log(f"nothing to train: the run already has {len(history)} epochs (epochs={epochs}); raise --epochs to "
            "continue it")
    for epoch in range(len(history) + 1, epochs + 1):
        t0 = time.perf_counter()
        state, metrics = one_epoch(state)
        if not all(math.isfinite(metrics[k]) for k in finite):
            kept = checkpoint.latest(run_dir) if run_dir is not None else None
            values = ", ".join(f"{label} {metrics[k]}" for k, label in finite.items())
            raise TrainingDiverged(f"epoch {epoch}: {values} (not finite); stopped. Last good "
                                   f"checkpoint: {f'epoch {kept} in {run_dir}' if kept else 'none saved'}."
                                   + (f" {hint}" if hint else ""))
        row = {"epoch": epoch, **metrics, "epoch_seconds": time.perf_counter() - t0}
        history.append(row)
        is_best = sign * row[score] < best
        best, stale = (sign * row[score], 0) if is_best else (best, stale + 1)
        if run_dir is not None:  # every process saves (a collective); process 0 writes
            checkpoint.save(run_dir, state, epoch=epoch, history=history, config=config, is_best=is_best)
            if write_history is not None and distributed.is_main():
                write_history(run_dir, history)
        if log is not None and line is not None:
            log(line(row, history))
        if patience is not None and stale >= patience:
            if log is not None:
                log(f"early stop: no better {finite.get(score, score)} for {stale} epochs")
            break
    distributed.barrier("run_epochs: checkpoints written")  # the other processes may read them next
    return state, history
