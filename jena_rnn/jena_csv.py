"""Read, validate and download the Jena CSV (re-exported by ``jena_rnn.data``).

``load_csv`` reads any CSV of a timestamp column and numeric columns and names the file, line and
column of every problem it refuses; ``load_jena`` adds the real file's exact header and date format;
``download_jena`` fetches the published archive with a size (and optional SHA-256) check. Line numbers
in error messages are 1-based file lines counting the header as line 1.
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

import numpy as np
import pandas as pd

from jena_rnn.config import SENTINEL_POLICIES
from jena_rnn.synthetic import JENA_COLUMNS, Table

__all__ = ["JENA_URL", "JENA_URL_TF", "JENA_ZIP_BYTES", "JENA_TIME_FORMAT", "load_csv", "load_jena",
           "download_jena"]

JENA_URL = "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip"  # the book's
JENA_URL_TF = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
JENA_ZIP_BYTES = 13_568_290  # size of both published archives
JENA_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"


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
