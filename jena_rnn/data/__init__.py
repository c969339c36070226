"""Data: one strict CSV reader, the synthetic default, splits, statistics, the one window formula, IMDB.

Modules: ``table`` (``Table``, Jena's column names and format constants), ``files`` (``load_jena``,
``load_csv``), ``checks`` (what the reader refuses or repairs), ``download`` (``download_jena``),
``archive`` (bounded reading of compressed files), ``synthetic`` (the offline default), ``dataset``
(splits, train-only normalisation, the data fingerprint), ``windows`` (the one window index formula,
the phase layout, samplers and evaluation rows), ``text`` (IMDB: ``tokens``, ``imdb_files``,
``imdb_synthetic``) and ``safe_npz`` (``.npz`` without running pickle code). The names below are
re-exported so that ``from jena_rnn import data`` is the one import for the forecaster's data.
"""
from jena_rnn.data.dataset import (Dataset, Stats, check_split_order, fingerprint_of, load_dataset, load_table,
                                   normalize, resolve_bounds, target_scale)
from jena_rnn.data.files import (JENA_BOUNDS, JENA_TIME_FORMAT, JENA_URL, JENA_URL_TF, JENA_ZIP_BYTES,
                                 download_jena, is_jena_like, load_csv, load_jena, parse_header)
from jena_rnn.data.synthetic import default_table, synthetic_jena, write_jena_csv
from jena_rnn.data.table import JENA_COLUMNS, Table, unit_of
from jena_rnn.data.windows import (Phased, WindowIndex, by_phase, end_rows, eval_rows, newest_window_rows,
                                   phases_of, sample_train_rows, window_index, windows, windows_by_phase)

__all__ = ["Dataset", "Phased", "Stats", "by_phase", "check_split_order", "eval_rows", "fingerprint_of",
           "load_dataset", "load_table", "normalize", "phases_of", "resolve_bounds", "sample_train_rows",
           "target_scale", "windows", "windows_by_phase", "JENA_BOUNDS", "JENA_TIME_FORMAT", "JENA_URL",
           "JENA_URL_TF", "JENA_ZIP_BYTES", "download_jena", "is_jena_like", "load_csv", "load_jena",
           "parse_header", "JENA_COLUMNS", "Table", "unit_of", "default_table", "synthetic_jena", "write_jena_csv",
           "WindowIndex", "window_index", "end_rows", "newest_window_rows"]
