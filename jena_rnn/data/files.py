"""Read, validate and download the Jena CSV (re-exported by ``jena_rnn.data``).

``load_csv`` reads any CSV of a timestamp column and numeric columns and names the file, line and
column of every problem it refuses; ``load_jena`` adds the real file's exact header and date format;
``download_jena`` fetches the published archive with a size (and optional SHA-256) check. Line numbers
in error messages are 1-based file lines counting the header as line 1.
"""
from __future__ import annotations

import csv
import hashlib
import io
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

from jena_rnn.data.archive import MAX_TEXT_BYTES, read_text
from jena_rnn.config import OTHER_SENTINEL_POLICIES, OUTLIER_POLICIES, SENTINEL_COLUMNS, SENTINEL_POLICIES
from jena_rnn.data.synthetic import JENA_COLUMNS, Table

__all__ = ["JENA_URL", "JENA_URL_TF", "JENA_ZIP_BYTES", "JENA_TIME_FORMAT", "JENA_BOUNDS", "OUTLIER_FACTOR",
           "load_csv", "load_jena", "parse_header", "is_jena_like", "download_jena"]

JENA_URL = "https://s3.amazonaws.com/keras-datasets/jena_climate_2009_2016.csv.zip"  # the book's
JENA_URL_TF = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/jena_climate_2009_2016.csv.zip"
JENA_ZIP_BYTES = 13_568_290  # size of both published archives
JENA_TIME_FORMAT = "%d.%m.%Y %H:%M:%S"
# Physically possible ranges of the Jena columns (a ground station in central Germany, with wide margins;
# the real file stays well inside them once its -9999 wind sentinels are handled).
JENA_BOUNDS = {"p (mbar)": (500, 1100), "T (degC)": (-80, 60), "Tpot (K)": (190, 340), "Tdew (degC)": (-100, 60),
               "rh (%)": (0, 105), "VPmax (mbar)": (0, 200), "VPact (mbar)": (0, 200), "VPdef (mbar)": (0, 200),
               "sh (g/kg)": (0, 150), "H2OC (mmol/mol)": (0, 250), "rho (g/m**3)": (700, 1700),
               "wv (m/s)": (0, 120), "max. wv (m/s)": (0, 120), "wd (deg)": (0, 360)}
# A cell further than this many robust spreads (IQR) from its column's median is refused as absurd.
OUTLIER_FACTOR = 100


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


def _apply_sentinel(values, names, path, policy, sentinel, *, columns=SENTINEL_COLUMNS,
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
            _fail(path, int(np.argmax(bad)) + 2, name,
                  f"sentinel value {sentinel} in {counts[name]} row(s) {hint}")
        if how == "zero":  # the TensorFlow tutorial's fix for the wind columns
            values[bad, j] = 0.0
        elif how == "interpolate":
            if bad.all():
                _fail(path, 2, name, "every value is the sentinel; nothing to interpolate from")
            idx = np.arange(len(values))
            values[bad, j] = np.interp(idx[bad], idx[~bad], values[~bad, j])
    return counts


def _robust_scale(col: np.ndarray) -> tuple[float, float]:
    """Return (median, spread) of one column: its IQR, else its 1-99 % range, else max(|median|, 1)."""
    q01, q25, med, q75, q99 = np.percentile(col, [1, 25, 50, 75, 99])
    spread = q75 - q25 if q75 > q25 else (q99 - q01 if q99 > q01 else max(abs(med), 1.0))
    return float(med), float(spread)


def _check_values(values, names, path, policy, bounds, skip) -> dict:
    """Refuse physically impossible values (outside `bounds`) and values that dwarf the column's spread.

    A value is absurd when ``|x - median| > OUTLIER_FACTOR * spread`` (``_robust_scale``): one 1e30 cell
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
        med, spread = _robust_scale(col[ok])
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
            _fail(path, i + 2, name, f"value {float(col[i])!r} is {why}; {counts[name]} such value(s) in this column. "
                  "A corrupt cell? Fix the file, or pass --outliers keep to use it as it is")
    return counts


def _abridged(header: list[str], limit: int = 300) -> str:
    text = repr(header)
    return text if len(text) <= limit else text[:limit] + f"... ({len(header)} fields)"


def _header_problem(header: list[str], expect: tuple[str, ...]) -> tuple[str, str | None]:
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
        _fail(path, 1, None, "holds NUL bytes: a binary file or an archive (e.g. a .tar), not CSV text")
    header = next(csv.reader([line]), [])
    if not header or header == [""]:
        _fail(path, 1, None, "empty file (no header)")
    for k, name in enumerate(header):
        if not name.strip():
            _fail(path, 1, None, f"header field {k + 1} is empty (every column needs a name)")
        if name in header[:k]:
            _fail(path, 1, name, "column name appears twice in the header")
    return header


def is_jena_like(header: list[str]) -> bool:
    """Whether a header claims to be Jena's: "Date Time" first, or at least 3 of Jena's column names."""
    return bool(header) and (header[0] == "Date Time" or len(set(header) & set(JENA_COLUMNS)) >= 3)


def load_csv(path, *, time_column: str | None = "Date Time", time_format: str | None = None,
             columns=None, target: str | None = None, sentinel_policy: str = "zero",
             sentinel: float | None = -9999.0, other_sentinel_policy: str = "error",
             outlier_policy: str = "error", drop_duplicates: bool = False,
             max_bytes: int = MAX_TEXT_BYTES, _expect: tuple[str, ...] | None = None,
             _bounds: dict | None = None) -> Table:
    """Read a CSV (.csv, or compressed .zip/.gz/.bz2/.xz) of a time column plus numeric columns into a `Table`.

    Args:
      path: file to read; compression is inferred from the extension (``jena_rnn.data.archive``: bounded).
      time_column: timestamp column name, or None when the file has none.
      time_format: strptime format of the timestamps; None lets pandas infer it.
      columns: feature columns to keep, in this order; None keeps every column except the time column.
      target: a column that must be among the kept ones (checked here so the error names the file).
      sentinel_policy: what to do with `sentinel` cells in the wind columns (``SENTINEL_COLUMNS``):
        zero | interpolate (linear in row index) | keep | error. Counts per column are always reported.
      sentinel: the error value (-9999.0 in the Jena wind columns); None disables the check.
      other_sentinel_policy: `sentinel` cells in any other column: error (default) | interpolate | keep.
      outlier_policy: error (default): refuse absurd values (``_check_values``); keep: report them only.
      drop_duplicates: opt-in: drop rows whose timestamp repeats an earlier one (count is reported).
      max_bytes: refuse a file that is, or inflates to, more than this many bytes.
    Returns:
      Table(times [N] datetime64[ns] or None, values [N, F] float32, columns, report).
    Raises:
      ValueError naming the file, the 1-based file line (header = line 1) and the column.
    """
    path = str(path)
    text = read_text(path, max_bytes=max_bytes)
    header = parse_header(path, text.split("\n", 1)[0].rstrip("\r"))
    if _expect is not None and tuple(header) != _expect:
        problem, column = _header_problem(header, _expect)
        _fail(path, 1, column, f"header is not the Jena header: {problem}; got {_abridged(header)}. "
              "Fix the header, or describe the file (--columns, --time-column) to read it as a generic CSV")
    if time_column is not None and time_column not in header:
        _fail(path, 1, time_column, f"time column not in header {_abridged(header)}")
    names = [c for c in header if c != time_column] if columns is None else list(columns)
    for k, c in enumerate(names):
        if names.index(c) != k:
            _fail(path, 1, c, "column selected twice (columns must name each column once)")
    for c in names:
        if c not in header:
            _fail(path, 1, c, f"column not in header {_abridged(header)}")
    if target is not None and target not in names:
        _fail(path, 1, target, f"target is not among the selected columns {names}")
    read = dict(index_col=False, skip_blank_lines=False)  # no usecols: it would hide rows with extra fields
    try:
        with warnings.catch_warnings():  # pandas only warns when the first data row has extra fields
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO(text), dtype={c: np.float64 for c in names}
                             | ({time_column: str} if time_column else {}), **read)
    except pd.errors.ParserWarning as e:
        _fail(path, 2, None, f"wrong number of fields (extra columns?): {e}")
    except pd.errors.ParserError as e:  # e.g. "Expected 15 fields in line 7, saw 16" (file line numbers)
        m = re.search(r"line (\d+)", str(e))
        _fail(path, m.group(1) if m else "?", None, f"wrong number of fields (extra columns?): {e}")
    except ValueError:  # a non-numeric cell: re-read as text to find where
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, **read)
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
        _fail(path, int(i) + 2, names[j], f"infinite or out-of-range value {float(values[i, j])!r}")
    times = None
    if time_column is not None:
        raw = df[time_column]
        try:  # without a format only ISO 8601 is read: pandas would guess 02.01.2009 as February 1st
            parsed = pd.to_datetime(raw, format=time_format or "ISO8601", errors="coerce")
        except ValueError as e:  # a bad directive such as %Q
            raise ValueError(f"{path}: column {time_column!r}: time format {time_format!r} is not a valid strptime "
                             f"format (--time-format): {e}") from None
        if parsed.isna().any():
            i = int(np.argmax(parsed.isna().to_numpy()))
            _fail(path, i + 2, time_column, f"unparseable date {raw.iloc[i]!r} (format {time_format!r}"
                  + (", i.e. ISO 8601: pass time_format / --time-format for other dates)" if time_format is None else ")"))
        times = parsed.to_numpy(dtype="datetime64[ns]")
    report = {"file": path, "rows": len(values), "columns": len(names), "sentinel": sentinel,
              "sentinel_policy": sentinel_policy, "other_sentinel_policy": other_sentinel_policy,
              "outlier_policy": outlier_policy, "dropped_duplicates": 0}
    report["sentinel_counts"] = _apply_sentinel(values, names, path, sentinel_policy, sentinel,
                                                elsewhere=other_sentinel_policy)
    # sentinels still there were kept on purpose: not outliers
    kept = values == sentinel if sentinel is not None else np.zeros(values.shape, bool)
    report["outlier_counts"] = _check_values(values, names, path, outlier_policy, _bounds or {}, kept)
    if times is not None:
        report.update(_time_report(times))
        if drop_duplicates:
            keep = ~pd.Series(times).duplicated().to_numpy()
            report["dropped_duplicates"] = int((~keep).sum())
            times, values = times[keep], values[keep]
            report["rows"] = len(values)
    return Table(times, values.astype(np.float32), tuple(names), report)


def load_jena(path, *, sentinel_policy: str = "zero", other_sentinel_policy: str = "error",
              outlier_policy: str = "error", time_format: str = JENA_TIME_FORMAT, columns=None,
              drop_duplicates: bool = False, max_bytes: int = MAX_TEXT_BYTES) -> Table:
    """Read the Jena climate file (or a file in its exact format) and check its 15-column header.

    Anything but the exact header (quoted ``"Date Time"`` and the 14 names, in order) is refused, naming
    what is renamed, missing or extra. Dates are parsed with `time_format` (default ``%d.%m.%Y %H:%M:%S``);
    -9999.0 cells in the wind columns follow `sentinel_policy` (default "zero", as in the TensorFlow
    tutorial), elsewhere `other_sentinel_policy`; values outside ``JENA_BOUNDS`` (physically impossible)
    or far outside a column's spread follow `outlier_policy`. `columns` selects features (default all 14).
    See `load_csv` for the rest.
    """
    return load_csv(path, time_column="Date Time", time_format=time_format, columns=columns,
                    sentinel_policy=sentinel_policy, other_sentinel_policy=other_sentinel_policy,
                    outlier_policy=outlier_policy, drop_duplicates=drop_duplicates, max_bytes=max_bytes,
                    _expect=("Date Time",) + JENA_COLUMNS, _bounds=JENA_BOUNDS)


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
