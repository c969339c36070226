"""Load and validate the Jena CSV, split it, normalise with train rows only, and cut windows.

Window index formula (the lecture's generator, Deep Learning with Python 1st ed. section 6.3): the sample
for end row ``r`` is ``data[r - lookback + offsets]`` with ``offsets = arange(0, lookback, step)`` (so the
last input row is ``r - step``) and its target is ``data[r + delay, target_col]``. End rows of a split
``[lo, hi)`` lie in ``[lo + lookback, hi)``; targets may reach ``hi - 1 + delay`` (into the next split,
as in the lecture) unless ``strict``, which keeps end rows below ``hi - delay``. Line numbers in error
messages are 1-based file lines counting the header as line 1.
"""
from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import urllib.error
import urllib.request
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jena_rnn.config import SENTINEL_POLICIES, DataConfig
from jena_rnn.synthetic import JENA_COLUMNS, Table, default_table, synthetic_jena, write_jena_csv

__all__ = ["Table", "Stats", "Dataset", "JENA_COLUMNS", "JENA_URL", "JENA_URL_TF", "JENA_ZIP_BYTES",
           "load_csv", "load_jena", "download_jena", "synthetic_jena", "write_jena_csv", "default_table",
           "normalize", "resolve_bounds", "load_dataset", "target_scale", "windows", "sample_train_rows",
           "eval_rows"]

JENA_URL = "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip"  # the book's
JENA_URL_TF = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
JENA_ZIP_BYTES = 13_568_290  # size of both published archives
JENA_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"


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


# ----------------------------------------------------------------------------------------------- loading
def _fail(path, line, column, msg) -> None:
    where = f"{path}: line {line}" + (f", column {column!r}" if column is not None else "")
    raise ValueError(f"{where}: {msg}")


def _time_report(times: np.ndarray) -> dict:
    """Count duplicated, backwards and missing timestamps against the median spacing."""
    if len(times) < 2:
        return {"interval_s": None, "duplicated_timestamps": 0, "non_increasing": 0, "gaps": 0,
                "missing_slots": 0}
    dt = np.diff(times.astype("datetime64[ns]").astype(np.int64))
    interval = int(np.median(dt))
    big = dt > interval
    missing = int(np.sum(np.round(dt[big] / interval).astype(np.int64) - 1)) if interval > 0 else 0
    return {"interval_s": interval / 1e9, "duplicated_timestamps": int(pd.Series(times).duplicated().sum()),
            "non_increasing": int(np.sum(dt < 0)), "gaps": int(big.sum()), "missing_slots": missing}


def _apply_sentinel(values, names, path, policy, sentinel) -> dict:
    """Count `sentinel` cells per column and apply `policy` in place; return {column: count}."""
    if policy not in SENTINEL_POLICIES:
        raise ValueError(f"sentinel_policy must be one of {SENTINEL_POLICIES}, got {policy!r}")
    counts = {}
    if sentinel is None:
        return counts
    for j, name in enumerate(names):
        bad = values[:, j] == sentinel
        if not bad.any():
            continue
        counts[name] = int(bad.sum())
        if policy == "error":
            _fail(path, int(np.argmax(bad)) + 2, name, f"sentinel value {sentinel} (sentinel_policy='error')")
        if policy == "zero":  # the TensorFlow tutorial's fix for the wind columns
            values[bad, j] = 0.0
        elif policy == "interpolate":
            if bad.all():
                _fail(path, 2, name, "every value is the sentinel; nothing to interpolate from")
            idx = np.arange(len(values))
            values[bad, j] = np.interp(idx[bad], idx[~bad], values[~bad, j])
    return counts


def load_csv(path, *, time_column: str | None = "Date Time", time_format: str | None = None,
             columns=None, target: str | None = None, sentinel_policy: str = "zero",
             sentinel: float | None = -9999.0, drop_duplicates: bool = False,
             _expect: tuple[str, ...] | None = None) -> Table:
    """Read a CSV (.csv, .csv.gz, .csv.zip) of a time column plus numeric columns into a `Table`.

    Args:
      path: file to read; compression is inferred from the extension.
      time_column: timestamp column name, or None when the file has none.
      time_format: strptime format of the timestamps; None lets pandas infer it.
      columns: feature columns to keep, in this order; None keeps every column except the time column.
      target: a column that must be among the kept ones (checked here so the error names the file).
      sentinel_policy: what to do with `sentinel` cells: zero | interpolate (linear in row index) |
        keep | error. Counts per column are always reported.
      sentinel: the error value (-9999.0 in the Jena wind columns); None disables the check.
      drop_duplicates: opt-in: drop rows whose timestamp repeats an earlier one (count is reported).
    Returns:
      Table(times [N] datetime64[ns] or None, values [N, F] float32, columns, report).
    Raises:
      ValueError naming the file, the 1-based file line (header = line 1) and the column.
    """
    path = str(path)
    try:
        header = list(pd.read_csv(path, nrows=0, index_col=False).columns)
    except pd.errors.EmptyDataError:
        _fail(path, 1, None, "empty file (no header)")
    if _expect is not None and tuple(header) != _expect:
        missing = [c for c in _expect if c not in header]
        extra = [c for c in header if c not in _expect]
        detail = f"missing columns {missing}" if missing else ""
        detail += ("; " if missing and extra else "") + (f"unexpected columns {extra}" if extra else "")
        _fail(path, 1, (missing + extra)[0] if missing + extra else None,
              f"header is not the Jena header: {detail or 'columns out of order'}; got {header}")
    if time_column is not None and time_column not in header:
        _fail(path, 1, time_column, f"time column not in header {header}")
    names = [c for c in header if c != time_column] if columns is None else list(columns)
    for c in names:
        if c not in header:
            _fail(path, 1, c, f"column not in header {header}")
    if target is not None and target not in names:
        _fail(path, 1, target, f"target is not among the selected columns {names}")
    read = dict(index_col=False, skip_blank_lines=False)  # no usecols: it would hide rows with extra fields
    try:
        with warnings.catch_warnings():  # pandas only warns when the first data row has extra fields
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(path, dtype={c: np.float64 for c in names} | ({time_column: str} if time_column else {}),
                             **read)
    except pd.errors.ParserWarning as e:
        _fail(path, 2, None, f"wrong number of fields (extra columns?): {e}")
    except pd.errors.ParserError as e:  # e.g. "Expected 15 fields in line 7, saw 16" (file line numbers)
        m = re.search(r"line (\d+)", str(e))
        _fail(path, m.group(1) if m else "?", None, f"wrong number of fields (extra columns?): {e}")
    except ValueError:  # a non-numeric cell: re-read as text to find where
        df = pd.read_csv(path, dtype=str, keep_default_na=False, **read)
        for c in names:
            num = pd.to_numeric(df[c], errors="coerce").to_numpy()
            bad = np.isnan(num) & (df[c].str.strip() != "").to_numpy() & (df[c].str.lower() != "nan").to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                _fail(path, i + 2, c, f"non-numeric value {df[c].iloc[i]!r}")
        raise
    if len(df) == 0:
        _fail(path, 2, None, "empty file (header but no data rows)")
    values = df[names].to_numpy(np.float64)
    nan = np.isnan(values)
    if nan.any():
        i, j = np.argwhere(nan)[0]
        _fail(path, int(i) + 2, names[j], "empty or NaN cell (or too few fields on this line)")
    big = ~(np.abs(values) <= np.finfo(np.float32).max)  # inf, or overflows to inf as float32
    if big.any():
        i, j = np.argwhere(big)[0]
        _fail(path, int(i) + 2, names[j], f"infinite or out-of-range value {values[i, j]!r}")
    times = None
    if time_column is not None:
        raw = df[time_column]
        parsed = pd.to_datetime(raw, format=time_format, errors="coerce")
        if parsed.isna().any():
            i = int(np.argmax(parsed.isna().to_numpy()))
            _fail(path, i + 2, time_column, f"unparseable date {raw.iloc[i]!r} (format {time_format!r})")
        times = parsed.to_numpy(dtype="datetime64[ns]")
    report = {"file": path, "rows": len(values), "columns": len(names), "sentinel": sentinel,
              "sentinel_policy": sentinel_policy, "dropped_duplicates": 0}
    report["sentinel_counts"] = _apply_sentinel(values, names, path, sentinel_policy, sentinel)
    if times is not None:
        report.update(_time_report(times))
        if drop_duplicates:
            keep = ~pd.Series(times).duplicated().to_numpy()
            report["dropped_duplicates"] = int((~keep).sum())
            times, values = times[keep], values[keep]
            report["rows"] = len(values)
    return Table(times, values.astype(np.float32), tuple(names), report)


def load_jena(path, *, sentinel_policy: str = "zero", drop_duplicates: bool = False) -> Table:
    """Read the Jena climate file (or a file in its exact format) and check its 15-column header.

    Dates are parsed with ``%d.%m.%Y %H:%M:%S``; -9999.0 cells (the wind columns) follow
    `sentinel_policy` (default "zero", as in the TensorFlow tutorial). See `load_csv` for the rest.
    """
    return load_csv(path, time_column="Date Time", time_format=JENA_TIME_FORMAT, sentinel_policy=sentinel_policy,
                    drop_duplicates=drop_duplicates, _expect=("Date Time",) + JENA_COLUMNS)


def download_jena(dest_dir, *, url: str = JENA_URL, sha256: str | None = None, timeout: float = 30,
                  size: int | None = JENA_ZIP_BYTES, verbose: bool = True) -> Path:
    """Download the Jena archive into `dest_dir` (skipped if a verified copy is there); return its path.

    The SHA-256 of the published archive is not pinned yet (no real copy has been seen by this project):
    the digest is computed and printed so it can be pinned via `sha256`. Until then only the size
    (13,568,290 bytes) is verified. With the default `url`, TensorFlow's mirror is tried second. The file
    is written to a temporary file beside the target and moved into place with os.replace.
    """
    dest = Path(dest_dir) / "jena_climate_2009_2016.csv.zip"
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() and (size is None or dest.stat().st_size == size) and (
            sha256 is None or _sha256(dest) == sha256.lower()):
        return dest
    urls = [url, JENA_URL_TF] if url == JENA_URL else [url]
    errors = []
    for u in urls:
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".jena-", suffix=".part")
        digest, n = hashlib.sha256(), 0
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(u, timeout=timeout) as resp:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    n += len(chunk)
        except (urllib.error.URLError, OSError) as e:
            os.unlink(tmp)
            errors.append(f"{u}: {e}")
            continue
        bad = (f"{u}: downloaded {n} bytes, expected {size}" if size is not None and n != size else
               f"{u}: SHA-256 {digest.hexdigest()} does not match the pinned {sha256}"
               if sha256 is not None and digest.hexdigest() != sha256.lower() else None)
        if bad:  # a corrupt or changed copy: never keep it, try the next mirror
            os.unlink(tmp)
            errors.append(bad)
            continue
        os.replace(tmp, dest)
        if verbose:
            print(f"downloaded {u} -> {dest} ({n} bytes, sha256 {digest.hexdigest()})", file=sys.stderr)
        return dest
    corrupt = any("expected" in e or "SHA-256" in e for e in errors)
    kind, why = (ValueError, "no verified copy") if corrupt else (ConnectionError, "offline?")
    raise kind(f"could not download the Jena archive ({why}): " + "; ".join(errors)
               + f". Fetch it by hand from {JENA_URL} and pass its path instead.")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# -------------------------------------------------------------------------------- splits, normalisation
def normalize(values: np.ndarray, lo: int, hi: int) -> tuple[np.ndarray, Stats]:
    """Return ``(values - mean) / std`` [N, F] float32 with mean/std [F] taken from rows [lo, hi) only.

    A constant column (std 0) is divided by 1 instead, so it normalises to zeros rather than NaN.
    """
    train = np.asarray(values[lo:hi], np.float64)
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    normed = ((np.asarray(values, np.float64) - mean) / std).astype(np.float32)
    return normed, Stats(mean.astype(np.float32), std.astype(np.float32))


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


def _is_jena(path) -> bool:
    try:
        return tuple(pd.read_csv(path, nrows=0, index_col=False).columns) == ("Date Time",) + JENA_COLUMNS
    except (pd.errors.EmptyDataError, ValueError):
        return False


def load_table(cfg: DataConfig) -> tuple[Table, str]:
    """Load `cfg.path` (or the synthetic default) with `cfg.columns` selected; return (table, source)."""
    if cfg.path is None:
        table = default_table(n_rows=cfg.synthetic_rows, seed=cfg.synthetic_seed)
        source = f"synthetic(seed={cfg.synthetic_seed},rows={cfg.synthetic_rows})"
    elif _is_jena(cfg.path):
        table, source = load_jena(cfg.path, sentinel_policy=cfg.sentinel_policy), str(cfg.path)
    else:
        table = load_csv(cfg.path, time_column=cfg.time_column, time_format=cfg.time_format, columns=cfg.columns,
                         target=cfg.target, sentinel_policy=cfg.sentinel_policy)
        source = str(cfg.path)
    if cfg.columns is not None and tuple(cfg.columns) != table.columns:
        missing = [c for c in cfg.columns if c not in table.columns]
        if missing:
            raise ValueError(f"{source}: columns {missing} not in {table.columns}")
        idx = [table.columns.index(c) for c in cfg.columns]
        table = table._replace(values=table.values[:, idx], columns=tuple(cfg.columns))
    if cfg.target not in table.columns:
        raise ValueError(f"{source}: target {cfg.target!r} is not among the columns {table.columns}")
    return table, source


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load `cfg.path` (or the synthetic default), resolve and check splits, normalise with train rows."""
    table, source = load_table(cfg)
    n = len(table.values)
    splits = {}
    for name in ("train", "val", "test"):
        lo, hi = resolve_bounds(n, getattr(cfg, name), delay=cfg.delay, name=name)
        last = hi - cfg.delay if cfg.strict_targets else hi
        if lo + cfg.lookback >= last:
            raise ValueError(f"{source}: {name} split [{lo}, {hi}) of a {n}-row file is too short for lookback "
                             f"{cfg.lookback}" + (f" + delay {cfg.delay}" if cfg.strict_targets else "")
                             + ": it has no end row")
        if last - 1 + cfg.delay >= n:
            raise ValueError(f"{source}: {name} split [{lo}, {hi}) needs target rows up to {last - 1 + cfg.delay}"
                             f" (delay {cfg.delay}) but the file has only {n} rows")
        splits[name] = (lo, hi)
    normed, stats = normalize(table.values, *splits["train"])
    return Dataset(jnp.asarray(normed), stats, table.columns.index(cfg.target), table.columns, table.times,
                   splits["train"], splits["val"], splits["test"], dict(table.report), source)


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
