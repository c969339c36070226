"""What ``load_csv`` refuses or repairs in a parsed CSV, each problem named by file, line and column.

The header (``parse_header``, ``header_problem``), -9999 sentinels (``apply_sentinel``), impossible or
absurd values (``check_values``) and the timestamps' spacing (``time_report``). Line numbers are 1-based
file lines counting the header as line 1, so data row ``i`` is line ``i + 2``.
"""
from __future__ import annotations

import csv

import numpy as np
import pandas as pd

from jena_rnn.config import OTHER_SENTINEL_POLICIES, OUTLIER_POLICIES, SENTINEL_COLUMNS, SENTINEL_POLICIES
from jena_rnn.data.table import JENA_COLUMNS

__all__ = ["OUTLIER_FACTOR", "fail", "time_report", "apply_sentinel", "robust_scale", "check_values",
           "abridged", "header_problem", "parse_header", "is_jena_like"]

# A cell further than this many robust spreads (IQR) from its column's median is refused as absurd.
OUTLIER_FACTOR = 100


def fail(path, line, column, msg) -> None:
    """Raise ``ValueError("<path>: line <line>, column <column>: <msg>")`` (column omitted when None)."""
    where = f"{path}: line {line}" + (f", column {column!r}" if column is not None else "")
    raise ValueError(f"{where}: {msg}")


def time_report(times: np.ndarray) -> dict:
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


def apply_sentinel(values, names, path, policy, sentinel, *, columns=SENTINEL_COLUMNS,
                   elsewhere: str = "error") -> dict:
    """Count `sentinel` cells per column and apply a policy in place; return {column: count}.

    `policy` applies to `columns` (the wind columns, where the real file has -9999 error values);
    `elsewhere` to every other column, where zeroing would invent a plausible-looking value (a -9999
    temperature would become 0 degC), so it may only be refused, interpolated or kept.
    """
    if policy not in SENTINEL_POLICIES:
        raise ValueError(f"sentinel_policy must be one of {SENTINEL_POLICIES}, got {policy!r}")
    if elsewhere not in OTHER_SENTINEL_POLICIES:
        raise ValueError(f"other_sentinel_policy must be one of {OTHER_SENTINEL_POLICIES}, got {elsewhere!r}")
    counts = {}
    if sentinel is None:
        return counts
    for j, name in enumerate(names):
        bad = values[:, j] == sentinel
        if not bad.any():
            continue
        counts[name] = int(bad.sum())
        how = policy if name in columns else elsewhere
        if how == "error":
            hint = ("(sentinel_policy='error')" if name in columns else
                    f"outside the wind columns {list(columns)}, where it is refused by default: pass "
                    "--sentinel-elsewhere interpolate (or keep) to accept it")
            fail(path, int(np.argmax(bad)) + 2, name,
                 f"sentinel value {sentinel} in {counts[name]} row(s) {hint}")
        if how == "zero":  # the TensorFlow tutorial's fix for the wind columns
            values[bad, j] = 0.0
        elif how == "interpolate":
            if bad.all():
                fail(path, 2, name, "every value is the sentinel; nothing to interpolate from")
            idx = np.arange(len(values))
            values[bad, j] = np.interp(idx[bad], idx[~bad], values[~bad, j])
    return counts


def robust_scale(col: np.ndarray) -> tuple[float, float]:
    """Return (median, spread) of one column: its IQR, else its 1-99 % range, else max(|median|, 1)."""
    q01, q25, med, q75, q99 = np.percentile(col, [1, 25, 50, 75, 99])
    spread = q75 - q25 if q75 > q25 else (q99 - q01 if q99 > q01 else max(abs(med), 1.0))
    return float(med), float(spread)


def check_values(values, names, path, policy, bounds, skip) -> dict:
    """Refuse physically impossible values (outside `bounds`) and values that dwarf the column's spread.

    A value is absurd when ``|x - median| > OUTLIER_FACTOR * spread`` (``robust_scale``): one 1e30 cell
    would otherwise make the training statistics meaningless and every normalised error look like zero.
    `skip` [N, F] marks cells to leave alone (kept sentinels). With ``policy="keep"`` nothing is refused
    and the counts are reported. Returns {column: count of flagged cells}.
    """
    if policy not in OUTLIER_POLICIES:
        raise ValueError(f"outlier_policy must be one of {OUTLIER_POLICIES}, got {policy!r}")
    counts = {}
    for j, name in enumerate(names):
        col = values[:, j]
        ok = ~skip[:, j]
        if not ok.any():
            continue
        med, spread = robust_scale(col[ok])
        lo, hi = bounds.get(name, (-np.inf, np.inf))
        impossible = ok & ((col < lo) | (col > hi))
        absurd = ok & (np.abs(col - med) > OUTLIER_FACTOR * spread)
        bad = impossible | absurd
        if not bad.any():
            continue
        counts[name] = int(bad.sum())
        if policy == "error":
            i = int(np.argmax(bad))
            why = (f"outside the physically possible range [{lo:g}, {hi:g}]" if impossible[i] else
                   f"more than {OUTLIER_FACTOR} times the column's robust spread ({spread:.4g}) from its median "
                   f"({med:.4g})")
            fail(path, i + 2, name, f"value {float(col[i])!r} is {why}; {counts[name]} such value(s) in this column. "
                 "A corrupt cell? Fix the file, or pass --outliers keep to use it as it is")
    return counts


def abridged(header: list[str], limit: int = 300) -> str:
    """``repr(header)``, cut to `limit` characters for error messages."""
    text = repr(header)
    return text if len(text) <= limit else text[:limit] + f"... ({len(header)} fields)"


def header_problem(header: list[str], expect: tuple[str, ...]) -> tuple[str, str | None]:
    """Describe how `header` differs from `expect` (renamed at the same place, missing, extra, out of order).

    Returns:
      (description, the first column concerned or None).
    """
    parts = []
    renamed = [(e, h) for e, h in zip(expect, header) if e != h and e not in header and h not in expect]
    if renamed:
        parts.append("renamed " + ", ".join(f"{e!r} -> {h!r}" for e, h in renamed))
    gone = {e for e, _ in renamed}
    new = {h for _, h in renamed}
    missing = [c for c in expect if c not in header and c not in gone]
    extra = [c for c in header if c not in expect and c not in new]
    if missing:
        parts.append(f"missing columns {missing}")
    if extra:
        parts.append(f"unexpected columns {extra}")
    first = next(iter([h for _, h in renamed] + missing + extra), None)
    return "; ".join(parts) or "columns out of order", first


def parse_header(path, line: str) -> list[str]:
    """Split a CSV header line into its names; refuse empty or repeated names (pandas would rename them)."""
    if "\x00" in line:
        fail(path, 1, None, "holds NUL bytes: a binary file or an archive (e.g. a .tar), not CSV text")
    header = next(csv.reader([line]), [])
    if not header or header == [""]:
        fail(path, 1, None, "empty file (no header)")
    for k, name in enumerate(header):
        if not name.strip():
            fail(path, 1, None, f"header field {k + 1} is empty (every column needs a name)")
        if name in header[:k]:
            fail(path, 1, name, "column name appears twice in the header")
    return header


def is_jena_like(header: list[str]) -> bool:
    """Whether a header claims to be Jena's: "Date Time" first, or at least 3 of Jena's column names."""
    return bool(header) and (header[0] == "Date Time" or len(set(header) & set(JENA_COLUMNS)) >= 3)
