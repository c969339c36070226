"""The epoch loop shared by the forecaster (``train.fit``), the classifier (``imdb.fit``) and sweeps.

- ``open_run``: a run directory that holds checkpoints is continued only when asked (``resume``) and only
  after its caller's check (``rundir.check_resume``: the configuration and the data it was started with);
  otherwise it is refused, never overwritten. The writer's lock is ``rundir.lock``'s.
- ``run_epochs``: every epoch is timed, checked for a non-finite loss (``TrainingDiverged``, naming the
  last good checkpoint, which stays the latest one), recorded as one ``history_row``, checkpointed
  (``checkpoint.save``: BEST follows the best ``score``, the lowest or with ``minimize=False`` the
  highest) and logged; ``patience`` epochs without a better score stop the run, and so does ``until``
  (a sweep whose members have all stopped: per-member best and early stopping live in its state). The
  count of epochs since the best one is recomputed from the history, so a resumed run stops exactly
  where an uninterrupted one would.
Under ``jax.distributed`` every process runs the loop alike (``checkpoint.save`` is a collective) and
process 0 writes the files.
"""
from __future__ import annotations

import math
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from jena_rnn.runtime import checkpoint, distributed, rundir

class TrainingDiverged(FloatingPointError):
    """Raised when a loss becomes NaN or infinite; the last good checkpoint is kept."""


def open_run(run_dir: Path | None, state: Any, *, resume: bool,
             check_config: Callable[[dict], None] | None) -> tuple[Any, list[dict]]:
    """Return ``(state, history)``: restored from ``run_dir``'s latest checkpoint, or as given and ``[]``.

    Call it inside ``lock_run(run_dir)``. A damaged latest checkpoint is set aside and the newest
    readable one continued, with a warning (``checkpoint.resume``).

    Args:
      run_dir: the run directory (None: no files, a fresh run).
      state: a freshly initialised state, the template the checkpoint is restored into.
      resume: continue a run directory that holds checkpoints (one without any starts afresh).
      check_config: called with the saved ``config.json`` before anything is restored; raises
        ValueError naming what differs (e.g. ``rundir.check_resume``); None: nothing to check.
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
    saved = rundir.read_config(run_dir)
    if check_config is not None:
        check_config(saved)
    state, meta = checkpoint.resume(run_dir, state)
    return state, list(meta["history"])


def history_row(epoch: int, metrics: dict, *, train_seconds: float, steps: int, epoch_seconds: float,
                first_in_process: bool) -> dict:
    """One row of a history: ``{"epoch", **metrics, "train_seconds", "step_ms", "epoch_seconds", "first_in_process"}``.

    ``train_seconds``: the training part of the epoch (before validation), ``steps`` optimiser steps
    (``step_ms = 1000 * train_seconds / steps``); ``epoch_seconds``: the whole epoch; ``first_in_process``:
    the first epoch this process ran, whose times include jit compilation (``report.warm_step_time`` leaves
    such epochs out). Every run's rows, a sweep member's included, are built here.
    """
    return {"epoch": epoch, **metrics, "train_seconds": train_seconds, "step_ms": 1e3 * train_seconds / steps,
            "epoch_seconds": epoch_seconds, "first_in_process": bool(first_in_process)}


def run_epochs(state: Any, history: list[dict], one_epoch: Callable[[Any], tuple[Any, dict, float]], *,
               epochs: int, steps: int, score: str | None = None, finite: dict[str, str] | None = None,
               run_dir: Path | None = None, config: dict | None = None,
               write_history: Callable[[Path, list[dict]], None] | None = None,
               log: Callable[[str], None] | None = None, line: Callable[[dict, list[dict]], str] | None = None,
               patience: int | None = None, minimize: bool = True, hint: str = "",
               until: Callable[[Any], bool] | None = None) -> tuple[Any, list[dict]]:
    """Run epochs ``len(history) + 1 .. epochs`` of ``one_epoch``; return the final state and history.

    Args:
      one_epoch: ``state -> (state, metrics, train_seconds)``, one epoch of training plus validation;
        ``metrics`` is a dict of floats (or, for a sweep, of its members' rows), ``train_seconds`` the
        time its training part took. Each history row is ``history_row(epoch, metrics, ...)`` with
        ``steps`` optimiser steps per epoch.
      score: the metric that picks the best checkpoint and drives early stopping (None: no BEST, e.g. a
        sweep, whose state holds each member's best).
      finite: ``{metric: label}`` of the metrics that must be finite, else ``TrainingDiverged``
        (e.g. ``{"val_mae": "validation MAE"}``); the labels also name ``score`` in the log.
      run_dir, config: where ``checkpoint.save`` writes every epoch, and the config it records.
      write_history: ``(run_dir, history) -> None``, e.g. the CSV and plot (process 0 only).
      log, line: ``log(line(row, history))`` once per epoch; ``log`` also gets the early-stop notice.
      patience: stop after this many epochs without a better ``score`` (None: never).
      minimize: lower ``score`` is better (False: higher, e.g. accuracy).
      hint: appended to the divergence message (e.g. "Try a lower --lr.").
      until: ``state -> bool``, asked before every epoch: True stops the run (e.g. all of a sweep's
        members have stopped).
    """
    if run_dir is not None and config is None:
        raise ValueError("run_epochs: a run_dir needs the config to record beside its checkpoints")
    finite, sign = finite or {}, 1.0 if minimize else -1.0
    values = [sign * h[score] for h in history] if score is not None else []
    best = min(values, default=math.inf)
    stale = len(values) - 1 - values.index(best) if values else 0
    if patience is not None and stale >= patience:
        if log is not None:
            log(f"nothing to train: the run stopped early at epoch {len(history)} (patience {patience})")
        return state, history
    if len(history) >= epochs and log is not None:
        log(f"nothing to train: the run already has {len(history)} epochs (epochs={epochs}); raise --epochs to "
            "continue it")
    first = len(history) + 1  # the epoch this process runs first: it compiles
    for epoch in range(first, epochs + 1):
        if until is not None and until(state):
            break
        t0 = time.perf_counter()
        state, metrics, train_seconds = one_epoch(state)
        if not all(math.isfinite(metrics[k]) for k in finite):
            kept = checkpoint.latest(run_dir) if run_dir is not None else None
            values = ", ".join(f"{label} {metrics[k]}" for k, label in finite.items())
            raise TrainingDiverged(f"epoch {epoch}: {values} (not finite); stopped. Last good "
                                   f"checkpoint: {f'epoch {kept} in {run_dir}' if kept else 'none saved'}."
                                   + (f" {hint}" if hint else ""))
        row = history_row(epoch, metrics, train_seconds=train_seconds, steps=steps,
                          epoch_seconds=time.perf_counter() - t0, first_in_process=epoch == first)
        history.append(row)
        is_best = score is not None and sign * row[score] < best
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
