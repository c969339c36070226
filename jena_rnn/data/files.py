"""Read and validate the Jena CSV, or any CSV of a time column and numeric columns (re-exported by ``data``).

``load_csv`` reads any CSV of a timestamp column and numeric columns and names the file, line and
column of every problem it refuses (the checks: ``jena_rnn.data.checks``); ``load_jena`` adds the real
file's exact header, date format and value ranges (``jena_rnn.data.table``). ``download_jena``
(``jena_rnn.data.download``) fetches the published archive. Line numbers in error messages are 1-based
file lines counting the header as line 1.
"""
from __future__ import annotations

import io
import re
import warnings

import numpy as np
import pandas as pd

from jena_rnn.data.archive import MAX_TEXT_BYTES, read_text
from jena_rnn.data.checks import (OUTLIER_FACTOR, abridged, apply_sentinel, check_values, fail, header_problem,
                                  is_jena_like, parse_header, time_report)
from jena_rnn.data.download import download_jena
from jena_rnn.data.table import (JENA_BOUNDS, JENA_COLUMNS, JENA_TIME_FORMAT, JENA_URL, JENA_URL_TF, JENA_ZIP_BYTES,
                                 Table)

# the names that lived here before checks.py, download.py and table.py took them stay importable from here
__all__ = ["JENA_URL", "JENA_URL_TF", "JENA_ZIP_BYTES", "JENA_TIME_FORMAT", "JENA_BOUNDS", "OUTLIER_FACTOR",
           "load_csv", "load_jena", "parse_header", "is_jena_like", "download_jena"]


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
      outlier_policy: error (default): refuse absurd values (``checks.check_values``); keep: report them only.
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
        problem, column = header_problem(header, _expect)
        fail(path, 1, column, f"header is not the Jena header: {problem}; got {abridged(header)}. "
             "Fix the header, or describe the file (--columns, --time-column) to read it as a generic CSV")
    if time_column is not None and time_column not in header:
        fail(path, 1, time_column, f"time column not in header {abridged(header)}")
    names = [c for c in header if c != time_column] if columns is None else list(columns)
    for k, c in enumerate(names):
        if names.index(c) != k:
            fail(path, 1, c, "column selected twice (columns must name each column once)")
    for c in names:
        if c not in header:
            fail(path, 1, c, f"column not in header {abridged(header)}")
    if target is not None and target not in names:
        fail(path, 1, target, f"target is not among the selected columns {names}")
    read = dict(index_col=False, skip_blank_lines=False)  # no usecols: it would hide rows with extra fields
    try:
        with warnings.catch_warnings():  # pandas only warns when the first data row has extra fields
            warnings.simplefilter("error", pd.errors.ParserWarning)
            df = pd.read_csv(io.StringIO(text), dtype={c: np.float64 for c in names}
                             | ({time_column: str} if time_column else {}), **read)
    except pd.errors.ParserWarning as e:
        fail(path, 2, None, f"wrong number of fields (extra columns?): {e}")
    except pd.errors.ParserError as e:  # e.g. "Expected 15 fields in line 7, saw 16" (file line numbers)
        m = re.search(r"line (\d+)", str(e))
        fail(path, m.group(1) if m else "?", None, f"wrong number of fields (extra columns?): {e}")
    except ValueError:  # a non-numeric cell: re-read as text to find where
        df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, **read)
        for c in names:
            num = pd.to_numeric(df[c], errors="coerce").to_numpy()
            bad = np.isnan(num) & (df[c].str.strip() != "").to_numpy() & (df[c].str.lower() != "nan").to_numpy()
            if bad.any():
                i = int(np.argmax(bad))
                fail(path, i + 2, c, f"non-numeric value {df[c].iloc[i]!r}")
        raise
    if len(df) == 0:
        fail(path, 2, None, "empty file (header but no data rows)")
    values = df[names].to_numpy(np.float64)
    nan = np.isnan(values)
    if nan.any():
        i, j = np.argwhere(nan)[0]
        fail(path, int(i) + 2, names[j], "empty or NaN cell (or too few fields on this line)")
    big = ~(np.abs(values) <= np.finfo(np.float32).max)  # inf, or overflows to inf as float32
    if big.any():
        i, j = np.argwhere(big)[0]
        fail(path, int(i) + 2, names[j], f"infinite or out-of-range value {float(values[i, j])!r}")
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
            fail(path, i + 2, time_column, f"unparseable date {raw.iloc[i]!r} (format {time_format!r}"
                 + (", i.e. ISO 8601: pass time_format / --time-format for other dates)" if time_format is None else ")"))
        times = parsed.to_numpy(dtype="datetime64[ns]")
    report = {"file": path, "rows": len(values), "columns": len(names), "sentinel": sentinel,
              "sentinel_policy": sentinel_policy, "other_sentinel_policy": other_sentinel_policy,
              "outlier_policy": outlier_policy, "dropped_duplicates": 0}
    report["sentinel_counts"] = apply_sentinel(values, names, path, sentinel_policy, sentinel,
                                               elsewhere=other_sentinel_policy)
    # sentinels still there were kept on purpose: not outliers
    kept = values == sentinel if sentinel is not None else np.zeros(values.shape, bool)
    report["outlier_counts"] = check_values(values, names, path, outlier_policy, _bounds or {}, kept)
    if times is not None:
        report.update(time_report(times))
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
