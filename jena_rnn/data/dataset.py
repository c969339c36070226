"""Load the Jena data, split it, normalise with train rows only, and fingerprint it.

Reading and validating CSV files lives in ``jena_rnn.data.files``, the offline generator in
``jena_rnn.data.synthetic`` and the window index formula with its samplers in ``jena_rnn.data.windows``
(whose ``end_rows`` decides which splits are long enough here); their names are re-exported here and by
``jena_rnn.data``, the one import for data.
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
from jena_rnn.data.synthetic import default_table, synthetic_jena, write_jena_csv
from jena_rnn.data.table import JENA_COLUMNS, Table
from jena_rnn.data.windows import (Phased, by_phase, end_rows, eval_rows, phases_of, sample_train_rows, windows,
                                   windows_by_phase)

__all__ = ["Table", "Stats", "Dataset", "JENA_COLUMNS", "JENA_URL", "JENA_URL_TF", "JENA_ZIP_BYTES",
           "load_csv", "load_jena", "download_jena", "synthetic_jena", "write_jena_csv", "default_table",
           "normalize", "fingerprint_of", "resolve_bounds", "load_dataset", "target_scale", "windows", "sample_train_rows",
           "eval_rows", "Phased", "by_phase", "phases_of", "windows_by_phase"]


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

    A file whose header is Jena's, or claims to be (``checks.is_jena_like``: "Date Time" first, or
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
        first, top = end_rows(lo, hi, lookback=cfg.lookback, delay=cfg.delay, strict=cfg.strict_targets)
        if first >= top:
            raise ValueError(f"{source}: {name} split [{lo}, {hi}) of a {n}-row file is too short for lookback "
                             f"{cfg.lookback}" + (f" + delay {cfg.delay}" if cfg.strict_targets else "")
                             + ": it has no end row")
        if top - 1 + cfg.delay >= n:
            raise ValueError(f"{source}: {name} split [{lo}, {hi}) needs target rows up to {top - 1 + cfg.delay}"
                             f" (delay {cfg.delay}) but the file has only {n} rows")
        splits[name] = (lo, hi)
    check_split_order(splits, allow_overlap=cfg.allow_overlap, source=source)
    own = train_stats(table.values, *splits["train"])
    normed, stats = normalize(table.values, *splits["train"], stats=stats if stats is not None else own)
    return Dataset(jnp.asarray(normed), stats, table.columns.index(cfg.target), table.columns, table.times,
                   splits["train"], splits["val"], splits["test"], dict(table.report), source,
                   fingerprint_of(table.values, own))
