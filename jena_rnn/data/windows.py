"""The one window index formula, and everything that cuts, draws or lists windows with it.

A window is named by its end row ``r`` (the lecture's generator, Deep Learning with Python 1st ed.
section 6.3: ``indices = range(rows[j] - lookback, rows[j], step)``, ``target = data[rows[j] + delay][1]``):
```
inputs(r) = data[r + offsets]         offsets = arange(-lookback, 0, step)     [T], T = lookback // step
target(r) = data[r + delay, target_col]
```
``window_index`` is that formula and its only home: ``windows`` (one gather), ``windows_by_phase`` (the
same windows as contiguous blocks of ``by_phase``), ``end_rows`` (which ``r`` a split allows, hence
``sample_train_rows`` and ``eval_rows``) and ``newest_window_rows`` (the window ``predict`` feeds) all
call it. With ``lookback`` a multiple of ``step`` (``DataConfig`` requires it) the last input row is
``r - step``, so a target lies ``delay + step`` rows after the last input. End rows of a split ``[lo, hi)``
lie in ``[lo + lookback, hi)``: targets may reach ``hi - 1 + delay`` (into the next split, as in the
lecture) unless ``strict``, which keeps end rows below ``hi - delay``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["WindowIndex", "window_index", "end_rows", "newest_window_rows", "windows", "by_phase", "Phased",
           "phases_of", "windows_by_phase", "sample_train_rows", "eval_rows"]


class WindowIndex(NamedTuple):
    """Row offsets of one window, relative to its end row ``r`` (numpy: a constant under ``jit``)."""

    inputs: np.ndarray  # [T] int: the input rows are r + inputs, oldest first: arange(-lookback, 0, step)
    target: int  # the target row is r + target: delay


def window_index(*, lookback: int, step: int, delay: int) -> WindowIndex:
    """Return the offsets of the input rows and of the target row of a window ending at row ``r``.

    ``inputs = arange(-lookback, 0, step)`` [T], T = ``len(range(0, lookback, step))``; ``target = delay``.
    Numpy, so both the jitted gathers and numpy callers (``predict``) index with the same integers.
    """
    return WindowIndex(np.arange(-lookback, 0, step), int(delay))


def end_rows(lo: int, hi: int, *, lookback: int, delay: int, strict: bool = False) -> tuple[int, int]:
    """Return ``[first, top)``: the end rows ``r`` whose windows a split ``[lo, hi)`` allows.

    ``first = lo + lookback``, the smallest ``r`` whose oldest input row ``r + window_index(...).inputs[0]
    = r - lookback`` is at least ``lo`` (for every ``step``); ``top = hi``, or ``hi - delay`` when
    ``strict``, so that every target row ``r + delay`` is below ``hi``. Empty when ``first >= top``.
    """
    return lo + lookback, (hi - delay if strict else hi)


def newest_window_rows(n_rows: int, *, lookback: int, step: int) -> np.ndarray:
    """Return the rows [T] (oldest first) of the newest window whose last input is row ``n_rows - 1``.

    Its end row is ``r = n_rows - 1 - inputs[-1]`` (``n_rows - 1 + step`` when ``step`` divides
    ``lookback``), so its target ``r + delay`` lies past the file: the row a forecast predicts.
    """
    inputs = window_index(lookback=lookback, step=step, delay=0).inputs
    return (n_rows - 1 - int(inputs[-1])) + inputs


def windows(data, rows, *, lookback: int, step: int, delay: int, target_col: int = 1, reverse: bool = False):
    """Cut one window per end row with a single gather (pure, jittable with static ints).

    ``samples[b] = data[rows[b] + inputs]`` and ``targets[b] = data[rows[b] + delay, target_col]``
    (``window_index``). Rows must satisfy ``lookback <= r`` and ``r + delay < N``: JAX clamps
    out-of-range gathers silently, which is why the samplers below never produce such rows.

    Args:
      data: the series [N, F].   rows: end rows [B] (int).
      reverse: flip each window's time axis (the lecture's reversed-sequence experiment).
    Returns:
      (samples [B, T, F], targets [B]), T = lookback // step.
    """
    ix = window_index(lookback=lookback, step=step, delay=delay)
    samples = data[rows[:, None] + ix.inputs[None, :]]
    if reverse:
        samples = jnp.flip(samples, axis=1)
    return samples, data[rows + ix.target, target_col]


def by_phase(data, step: int):
    """Rearrange the series [N, F] into ``phases [step, ceil(N / step), F]`` with ``phases[p, i] = data[i * step + p]``.

    A window's input rows are ``step`` apart, so in ``phases`` they are one contiguous block
    (``windows_by_phase``): gathering B blocks of ``[T, F]`` is cheaper than B * T scattered rows, above
    all in a training step that also differentiates through the batch (benchmarks/RESULTS.md, "Every
    core, windows by phase", change 2). The tail is zero-padded; no window reads it. Jittable.
    """
    n, f = data.shape
    pad = (-n) % step
    return jnp.pad(data, ((0, pad), (0, 0))).reshape(-1, step, f).transpose(1, 0, 2)


class Phased(NamedTuple):
    """A series already rearranged by ``by_phase`` (a pytree: pass it to jitted functions as the series).

    ``train.make_train_epoch``'s and ``train.make_evaluate``'s functions accept it in place of the
    series [N, F], so that a run rearranges its series once instead of once per call (``train.fit``).
    """

    phases: jax.Array  # [step, ceil(N / step), F]


def phases_of(series, step: int):
    """``series.phases`` for a ``Phased`` (checking its stride), else ``by_phase(series, step)``."""
    if isinstance(series, Phased):
        if series.phases.shape[0] != step:
            raise ValueError(f"Phased series has stride {series.phases.shape[0]}, but the windows need step {step}")
        return series.phases
    return by_phase(series, step)


def windows_by_phase(phases, rows, *, lookback: int, step: int, delay: int, target_col: int = 1,
                     reverse: bool = False):
    """``windows`` on ``by_phase(data, step)``: the same (samples, targets), each window one contiguous slice.

    Window ``b``'s oldest input row is ``s = rows[b] + inputs[0]`` and the others follow ``step`` apart,
    so its samples are ``phases[s % step, s // step : s // step + T]``; the target row
    ``q = rows[b] + delay`` is ``phases[q % step, q // step, target_col]`` (``window_index``). Same range
    conditions as ``windows`` (``lookback <= r`` and ``r + delay < N``), which the samplers guarantee;
    outside them the result is wrong in another way than ``windows``' clamping (a target past the end
    reads the zero padding).
    """
    ix = window_index(lookback=lookback, step=step, delay=delay)
    start = rows + int(ix.inputs[0])
    size = (1, len(ix.inputs), phases.shape[2])
    samples = jax.vmap(lambda p, i: jax.lax.dynamic_slice(phases, (p, i, 0), size)[0])(start % step, start // step)
    if reverse:
        samples = jnp.flip(samples, axis=1)
    q = rows + ix.target
    return samples, phases[q % step, q // step, target_col]


def sample_train_rows(key, batch_size: int, lo: int, hi: int, *, lookback: int, delay: int, strict: bool = False):
    """Draw end rows [B] int32 uniformly in ``end_rows``: [lo + lookback, hi), or [.., hi - delay) if strict."""
    first, top = end_rows(lo, hi, lookback=lookback, delay=delay, strict=strict)
    return jax.random.randint(key, (batch_size,), first, top, dtype=jnp.int32)


def eval_rows(lo: int, hi: int, *, lookback: int, batch_size: int, mode: str = "full", delay: int = 144,
              strict: bool = False, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return evaluation end rows [nb, B] int32 and their validity mask [nb, B] bool (numpy).

    "full": every end row in ``end_rows(lo, hi)`` = [lo + lookback, top) once, chronologically (top = hi,
    or hi - delay if strict), the last batch padded. "lecture": the rows the lecture's generator yields
    (shuffle=False) in `steps` batches, default ``(top - lo - lookback) // batch_size`` (its val_steps
    formula), with its wrap-around ``if i + batch_size >= max_index: i = min_index + lookback``. The lecture
    computed test_steps from ``len(data)`` rather than its max_index; pass
    ``steps=(n_rows - lo - lookback) // batch_size`` to get its exact test batches. Padding repeats the
    first row of the batch and is marked invalid.
    """
    first, top = end_rows(lo, hi, lookback=lookback, delay=delay, strict=strict)
    if first >= top:
        raise ValueError(f"eval split [{lo}, {hi}) has no end row for lookback {lookback}"
                         + (f" and delay {delay}" if strict else ""))
    if mode == "full":
        batches = [np.arange(s, min(s + batch_size, top)) for s in range(first, top, batch_size)]
    elif mode == "lecture":
        steps = (top - first) // batch_size if steps is None else steps
        if steps < 1:
            raise ValueError(f"eval split [{lo}, {hi}) has fewer than batch_size={batch_size} end rows")
        batches, i = [], first
        for _ in range(steps):
            if i + batch_size >= top:
                i = first
            batches.append(np.arange(i, min(i + batch_size, top)))
            i += len(batches[-1])
    else:
        raise ValueError(f"eval mode must be 'full' or 'lecture', got {mode!r}")
    rows = np.empty((len(batches), batch_size), np.int32)
    valid = np.zeros((len(batches), batch_size), bool)
    for k, b in enumerate(batches):
        rows[k] = b[0]
        rows[k, :len(b)] = b
        valid[k, :len(b)] = True
    return rows, valid
