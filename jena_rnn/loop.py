"""The epoch loop shared by ``train.fit`` (the Jena forecaster) and ``imdb.fit`` (the classifier).

One place owns what a run directory promises, whatever is trained in it:
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

import json
import math
import time
from pathlib import Path
from typing import Any, Callable

from jena_rnn import checkpoint, distributed


class TrainingDiverged(FloatingPointError):
    """Raised when a loss becomes NaN or infinite; the last good checkpoint is kept."""


def open_run(run_dir: Path | None, state: Any, *, resume: bool,
             check_config: Callable[[dict], None]) -> tuple[Any, list[dict]]:
    """Return ``(state, history)``: restored from ``run_dir``'s latest checkpoint, or as given and ``[]``.

    Args:
      run_dir: the run directory (None: no files, a fresh run).
      state: a freshly initialised state, the template the checkpoint is restored into.
      resume: continue a run directory that holds checkpoints (one without any starts afresh).
      check_config: called with the saved ``config.json`` before anything is restored; raises
        ValueError naming what differs.
    Raises:
      FileExistsError: ``run_dir`` holds checkpoints and not ``resume``.
    """
    if run_dir is None or checkpoint.latest(run_dir) is None:
        return state, []
    if not resume:
        raise FileExistsError(f"{run_dir} already holds checkpoints: pass resume=True (--resume) "
                              "to continue it, or choose another output directory")
    check_config(json.loads((Path(run_dir) / "config.json").read_text()))
    state, meta = checkpoint.restore(run_dir, state, which="latest", resume=True)
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
        return state, history
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
