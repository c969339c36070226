"""Data: one strict CSV reader, the synthetic default, splits, statistics, the one window formula, IMDB.

Modules: ``dataset`` (splits, train-only normalisation, the data fingerprint, windows and samplers),
``files`` (``load_jena``, ``load_csv``, ``download_jena``), ``archive`` (bounded reading of compressed
files), ``synthetic`` (the offline default), ``text`` (IMDB readers and the synthetic review corpus) and
``safe_npz`` (``.npz`` without running pickle code). The names below are re-exported so that
``from jena_rnn import data`` is the one import for the forecaster's data.
"""
from jena_rnn.data.dataset import (Dataset, Phased, Stats, by_phase, check_split_order, eval_rows,
                                   fingerprint_of, load_dataset, load_table, normalize, phases_of,
                                   resolve_bounds, sample_train_rows, target_scale, windows, windows_by_phase)
from jena_rnn.data.files import (JENA_BOUNDS, JENA_TIME_FORMAT, JENA_URL, JENA_URL_TF, JENA_ZIP_BYTES,
                                 download_jena, is_jena_like, load_csv, load_jena, parse_header)
from jena_rnn.data.synthetic import JENA_COLUMNS, Table, default_table, synthetic_jena, write_jena_csv

__all__ = ["Dataset", "Phased", "Stats", "by_phase", "check_split_order", "eval_rows", "fingerprint_of",
           "load_dataset", "load_table", "normalize", "phases_of", "resolve_bounds", "sample_train_rows",
           "target_scale", "windows", "windows_by_phase", "JENA_BOUNDS", "JENA_TIME_FORMAT", "JENA_URL",
           "JENA_URL_TF", "JENA_ZIP_BYTES", "download_jena", "is_jena_like", "load_csv", "load_jena",
           "parse_header", "JENA_COLUMNS", "Table", "default_table", "synthetic_jena", "write_jena_csv"]
