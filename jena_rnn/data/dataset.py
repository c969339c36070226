"""Load the Jena data, split it, normalise with train rows only, and cut windows.

Reading and validating CSV files lives in ``jena_rnn.data.files`` and the offline generator in
``jena_rnn.data.synthetic``; both are re-exported here, so ``data`` is the one import for data.

Window index formula (the lecture's generator, Deep Learning with Python 1st ed. section 6.3): the sample
for end row ``r`` is ``data[r - lookback + offsets]`` with ``offsets = arange(0, lookback, step)`` (so the
last input row is ``r - step``) and its target is ``data[r + delay, target_col]``. End rows of a split
``[lo, hi)`` lie in ``[lo + lookback, hi)``; targets may reach ``hi - 1 + delay`` (into the next split,
as in the lecture) unless ``strict``, which keeps end rows below ``hi - delay``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jena_rnn.config import DataConfig
from jena_rnn.data.archive import first_line
from jena_rnn.data.files import (JENA_TIME_FORMAT, JENA_URL, JENA_URL_TF, JENA_ZIP_BYTES, download_jena,  # noqa: F401
                               is_jena_like, load_csv, load_jena, parse_header)
from jena_rnn.data.synthetic import JENA_COLUMNS, Table, default_table, synthetic_jena, write_jena_csv

__all__ = ["Table", "Stats", "Dataset", "JENA_COLUMNS", "JENA_URL", "JENA_URL_TF", "JENA_ZIP_BYTES",
           "load_csv", "load_jena", "download_jena", "synthetic_jena", "write_jena_csv", "default_table",
           "normalize", "fingerprint_of", "resolve_bounds", "load_dataset", "target_scale", "windows", "sample_train_rows",
           "eval_rows"]


class Stats(NamedTuple):
    """Per-feature normalisation statistics from the train rows: mean [F], std [F] (float32)."""

    mean: np.ndarray
    std: np.ndarray


class Dataset(NamedTuple):
    """A normalised series on the device plus everything needed to cut and score windows."""

    series: jax.Array  # [N, F] float32, normalised with `stats`
    stats: Stats
    target_col: int
    columns: tuple[str, ...]
    times: np.ndarray | None  # [N] datetime64[ns]
    train: tuple[int, int]  # resolved [lo, hi) of each split
    val: tuple[int, int]
    test: tuple[int, int]
    report: dict
    source: str
    fingerprint: dict | None = None  # `fingerprint_of` the raw table: recorded with a run, checked on resume


def fingerprint_of(values: np.ndarray, stats: "Stats") -> dict:
    """Identify a raw table [N, F] (before normalisation): rows, columns, SHA-256 of its float32 bytes, stats.

    Two files that hold the same numbers (a .csv and its .csv.gz, say) get the same fingerprint; one changed
    cell changes ``sha256``. A run records this in ``stats.json`` and refuses to resume on other data.
    """
    import hashlib

    raw = np.ascontiguousarray(values, dtype=np.float32)
    return {"rows": int(raw.shape[0]), "columns": int(raw.shape[1]),
            "sha256": hashlib.sha256(raw.tobytes()).hexdigest(),
            "mean": [float(x) for x in stats.mean], "std": [float(x) for x in stats.std]}


# -------------------------------------------------------------------------------- splits, normalisation
def train_stats(values: np.ndarray, lo: int, hi: int) -> Stats:
    """Mean and std [F] of rows [lo, hi) (float64 sums, rounded to the float32 that is saved; std 0 -> 1)."""
    train = np.asarray(values[lo:hi], np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    return Stats(mean.astype(np.float32), np.where(std > 0, std, 1.0).astype(np.float32))


def normalize(values: np.ndarray, lo: int, hi: int, *, stats: Stats | None = None) -> tuple[np.ndarray, Stats]:
    """Return ``(values - mean) / std`` [N, F] float32 with mean/std [F] taken from rows [lo, hi) only.

    A constant column (std 0) is divided by 1 instead, so it normalises to zeros rather than NaN.
    ``stats`` given (a saved run's training statistics): use those instead and ignore ``lo, hi``.
    """
    if stats is None:
        stats = train_stats(values, lo, hi)
    # normalise with the float32 statistics that are saved, so that saved statistics give the same series
    mean, std = np.asarray(stats.mean, np.float32), np.asarray(stats.std, np.float32)
    normed = ((np.asarray(values, np.float64) - mean.astype(np.float64)) / std.astype(np.float64)).astype(np.float32)
    return normed, Stats(mean, std)


def resolve_bounds(n_rows: int, bounds, *, delay: int, name: str = "split") -> tuple[int, int]:
    """Turn (lo, hi) bounds into row indices: ints are rows, floats in [0, 1] fractions of `n_rows`.

    ``hi=None`` means ``n_rows - delay - 1`` (the lecture's ``max_index=None`` rule); ``lo=None`` means 0.
    """
    def row(b, default):
        if b is None:
            return default
        if isinstance(b, bool) or not isinstance(b, (int, float, np.integer, np.floating)):
            raise ValueError(f"{name} bound {b!r} must be an int row, a float fraction or None")
        if isinstance(b, (float, np.floating)):
            if not 0.0 <= b <= 1.0:
                raise ValueError(f"{name} bound {b!r} is a float, so it must be a fraction in [0, 1]")
            return int(round(b * n_rows))
        return int(b)

    lo, hi = row(bounds[0], 0), row(bounds[1], n_rows - delay - 1)
    if not 0 <= lo < hi <= n_rows:
        raise ValueError(f"{name} bounds {tuple(bounds)!r} resolve to [{lo}, {hi}), which is not a non-empty "
                         f"range inside the file's {n_rows} rows")
    return lo, hi


def target_scale(ds: Dataset) -> float:
    """Return the target column's train std, which turns a normalised MAE into the column's unit."""
    return float(ds.stats.std[ds.target_col])


def load_table(cfg: DataConfig) -> tuple[Table, str]:
    """Load `cfg.path` (or the synthetic default) with `cfg.columns` selected; return (table, source).

    A file whose header is Jena's, or claims to be (``jena_csv.is_jena_like``: "Date Time" first, or
    several of Jena's names), is read by the strict ``load_jena`` unless the configuration describes
    the file itself (``columns`` given, or a ``time_column`` other than "Date Time"): then any header
    that is not exactly Jena's is refused. Other files are read by the generic ``load_csv``.
    """
    policies = dict(sentinel_policy=cfg.sentinel_policy, other_sentinel_policy=cfg.other_sentinel_policy,
                    outlier_policy=cfg.outlier_policy)
    if cfg.path is None:
        table = default_table(n_rows=cfg.synthetic_rows, seed=cfg.synthetic_seed)
        source = f"synthetic(seed={cfg.synthetic_seed},rows={cfg.synthetic_rows})"
    else:
        source = str(cfg.path)
        header = parse_header(source, first_line(source))
        exact = tuple(header) == ("Date Time",) + JENA_COLUMNS
        described = cfg.columns is not None or cfg.time_column != "Date Time"
        if exact and cfg.time_column == "Date Time" or is_jena_like(header) and not described:
            table = load_jena(source, time_format=cfg.time_format or JENA_TIME_FORMAT, columns=cfg.columns,
                              **policies)
        else:
            table = load_csv(source, time_column=cfg.time_column, time_format=cfg.time_format,
                             columns=cfg.columns, target=cfg.target, **policies)
    if cfg.columns is not None and tuple(cfg.columns) != table.columns:
        missing = [c for c in cfg.columns if c not in table.columns]
        if missing:
            raise ValueError(f"{source}: columns {missing} not in {table.columns}")
        idx = [table.columns.index(c) for c in cfg.columns]
        table = table._replace(values=table.values[:, idx], columns=tuple(cfg.columns))
    if cfg.target not in table.columns:
        raise ValueError(f"{source}: target {cfg.target!r} is not among the columns {table.columns}")
    return table, source


def check_split_order(splits: dict[str, tuple[int, int]], *, allow_overlap: bool = False, source: str = "") -> None:
    """Refuse train, val, test end-row ranges that overlap or are out of order, unless `allow_overlap`.

    Only the end-row ranges ``[lo, hi)`` are compared. Each window's inputs start ``lookback`` rows before
    its end row, inside its own split; its target lies ``delay`` rows after it, so (as in the lecture)
    the last training targets reach ``delay`` rows into validation: that is allowed.
    """
    if allow_overlap:
        return
    names = ("train", "val", "test")
    for a, b in zip(names, names[1:]):
        (alo, ahi), (blo, bhi) = splits[a], splits[b]
        if blo < ahi:
            why = "starts before" if blo < alo else "overlaps"
            raise ValueError(f"{source}: {b} split [{blo}, {bhi}) {why} the {a} split [{alo}, {ahi}): splits must "
                             "be in the order train, val, test without overlap (a training target may still reach "
                             "delay rows into validation, as in the lecture); pass --allow-overlap (allow_overlap="
                             "True) if the overlap is deliberate")


def load_dataset(cfg: DataConfig, *, stats: Stats | None = None) -> Dataset:
    """Load `cfg.path` (or the synthetic default), resolve and check splits, normalise with train rows.

    ``stats``: normalise with these (a saved run's training statistics, e.g. to evaluate it on another
    file) instead of this file's training rows. The fingerprint is always of this file's own table.
    """
    table, source = load_table(cfg)
    n = len(table.values)
    splits = {}
    for name in ("train", "val", "test"):
        try:
            lo, hi = resolve_bounds(n, getattr(cfg, name), delay=cfg.delay, name=name)
        except ValueError as e:
            raise ValueError(f"{source}: {e}") from None
        last = hi - cfg.delay if cfg.strict_targets else hi
        if lo + cfg.lookback >= last:
            raise ValueError(f"{source}: {name} split [{lo}, {hi}) of a {n}-row file is too short for lookback "
                             f"{cfg.lookback}" + (f" + delay {cfg.delay}" if cfg.strict_targets else "")
                             + ": it has no end row")
        if last - 1 + cfg.delay >= n:
            raise ValueError(f"{source}: {name} split [{lo}, {hi}) needs target rows up to {last - 1 + cfg.delay}"
                             f" (delay {cfg.delay}) but the file has only {n} rows")
        splits[name] = (lo, hi)
    check_split_order(splits, allow_overlap=cfg.allow_overlap, source=source)
    own = train_stats(table.values, *splits["train"])
    normed, stats = normalize(table.values, *splits["train"], stats=stats if stats is not None else own)
    return Dataset(jnp.asarray(normed), stats, table.columns.index(cfg.target), table.columns, table.times,
                   splits["train"], splits["val"], splits["test"], dict(table.report), source,
                   fingerprint_of(table.values, own))


# ------------------------------------------------------------------------------------- windows, samplers
def windows(data, rows, *, lookback: int, step: int, delay: int, target_col: int = 1, reverse: bool = False):
    """Cut one window per end row with a single gather (pure, jittable with static ints).

    ``samples[b, t] = data[rows[b] - lookback + t * step]`` and ``targets[b] = data[rows[b] + delay,
    target_col]``. Rows must satisfy ``lookback <= r`` and ``r + delay < N``: JAX clamps out-of-range
    gathers silently, which is why the samplers below never produce such rows.

    Args:
      data: the series [N, F].   rows: end rows [B] (int).
      reverse: flip each window's time axis (the lecture's reversed-sequence experiment).
    Returns:
      (samples [B, lookback // step, F], targets [B]).
    """
    offsets = jnp.arange(0, lookback, step)
    samples = data[rows[:, None] - lookback + offsets[None, :]]
    if reverse:
        samples = jnp.flip(samples, axis=1)
    return samples, data[rows + delay, target_col]


def by_phase(data, step: int):
    """Rearrange the series [N, F] into ``phases [step, ceil(N / step), F]`` with ``phases[p, i] = data[i * step + p]``.

    A window of ``data`` at stride ``step`` is then one contiguous block of ``phases`` (``windows_by_phase``):
    gathering B blocks of ``[T, F]`` is cheaper than B * T scattered rows, above all in a training step
    that also differentiates through the batch (MLP step 1.06 -> 0.55 ms in a scratch measurement,
    benchmarks/RESULTS.md "Data pipeline"). The tail is zero-padded; no window reads it. Jittable.
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

    Window ``b`` starts at row ``s = rows[b] - lookback``: its samples are
    ``phases[s % step, s // step : s // step + lookback // step]``; the target row ``q = rows[b] + delay``
    is ``phases[q % step, q // step, target_col]``. Same range conditions as ``windows``
    (``lookback <= r`` and ``r + delay < N``), which the samplers guarantee; outside them the result
    is wrong in another way than ``windows``' clamping (a target past the end reads the zero padding).
    """
    t = len(range(0, lookback, step))
    start = rows - lookback
    samples = jax.vmap(lambda p, i: jax.lax.dynamic_slice(phases, (p, i, 0), (1, t, phases.shape[2]))[0])(
        start % step, start // step)
    if reverse:
        samples = jnp.flip(samples, axis=1)
    q = rows + delay
    return samples, phases[q % step, q // step, target_col]


def sample_train_rows(key, batch_size: int, lo: int, hi: int, *, lookback: int, delay: int, strict: bool = False):
    """Draw end rows [B] int32 uniformly in [lo + lookback, hi) (the lecture), or [.., hi - delay) if strict."""
    top = hi - delay if strict else hi
    return jax.random.randint(key, (batch_size,), lo + lookback, top, dtype=jnp.int32)


def eval_rows(lo: int, hi: int, *, lookback: int, batch_size: int, mode: str = "full", delay: int = 144,
              strict: bool = False, steps: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Return evaluation end rows [nb, B] int32 and their validity mask [nb, B] bool (numpy).

    "full": every end row in [lo + lookback, top) once, chronologically (top = hi, or hi - delay if strict),
    the last batch padded. "lecture": the rows the lecture's generator yields (shuffle=False) in `steps`
    batches, default ``(top - lo - lookback) // batch_size`` (its val_steps formula), with its wrap-around
    ``if i + batch_size >= max_index: i = min_index + lookback``. The lecture computed test_steps from
    ``len(data)`` rather than its max_index; pass ``steps=(n_rows - lo - lookback) // batch_size`` to get
    its exact test batches. Padding repeats the first row of the batch and is marked invalid.
    """
    top, first = (hi - delay if strict else hi), lo + lookback
    if first >= top:
        raise ValueError(f"eval split [{lo}, {hi}) has no end row for lookback {lookback}"
                         + (f" and delay {delay}" if strict else ""))
    if mode == "full":
        batches = [np.arange(s, min(s + batch_size, top)) for s in range(first, top, batch_size)]
    elif mode == "lecture":
        steps = (top - lo - lookback) // batch_size if steps is None else steps
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
