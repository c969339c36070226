"""What a forecast run records about its data and configuration, and the check a resume makes against it.

``stats.json`` (``stats_json``) holds the columns, target, training statistics, splits and the data
fingerprint; a resume (single runs and sweeps) or an evaluation compares the data and configuration now
with the recorded ones through ``rundir``'s one comparison of each.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jena_rnn import data
from jena_rnn.config import Config, config_from_saved, to_dict
from jena_rnn.runtime import rundir


# how a forecaster's resume refusal names the fingerprint's fields (``rundir.data_differences``)
FINGERPRINT_LABELS = {"sha256": "content", "mean": "statistics (training mean/std)",
                      "std": "statistics (training mean/std)"}


def stats_json(ds: data.Dataset) -> dict:
    """The run's ``stats.json``: columns, target, source, training mean/std, splits and the data fingerprint."""
    return {"columns": list(ds.columns), "target_col": int(ds.target_col), "source": ds.source,
            "mean": [float(x) for x in ds.stats.mean], "std": [float(x) for x in ds.stats.std],
            "train": list(ds.train), "val": list(ds.val), "test": list(ds.test), "fingerprint": ds.fingerprint}


def data_record(stats: dict) -> dict:
    """What identifies the training data in a ``stats.json``: its fingerprint, with the column names.

    A ``stats.json`` written before the fingerprint existed records only the column names and the
    training statistics (``rundir.data_differences`` then reports the rest as unchecked).
    """
    fingerprint = stats.get("fingerprint")
    if isinstance(fingerprint, dict):
        return {**fingerprint, "columns": stats.get("columns")}
    return {"columns": stats.get("columns"), "mean": stats.get("mean"), "std": stats.get("std")}


def data_differences(saved: dict, ds: data.Dataset) -> list[str] | None:
    """How ``ds`` differs from the training data recorded in a run's ``stats.json`` (``saved``).

    Returns:
      [] when the same; else what differs, e.g. ``["rows (4000 -> 3000)", "content (SHA-256 ...)"]``;
      None when ``saved`` has no fingerprint (written before it existed) and the columns and training
      statistics it does record agree, so the rest cannot be checked.
    """
    diff, unchecked = rundir.data_differences(data_record(saved), data_record(stats_json(ds)), FINGERPRINT_LABELS)
    return diff if diff or not unchecked else None


def check_resume(run_dir: Path, config_now: dict, config_saved: dict, ds: data.Dataset, *,
                 ignore: tuple[str, ...] = ()) -> None:
    """``rundir.check_resume`` of a run directory whose data are recorded in ``stats.json`` (forecasts, sweeps).

    A ``stats.json`` without a fingerprint (written before it existed) resumes with a warning that the
    data cannot be checked (its columns and training statistics are still compared).
    """
    saved = rundir.read_stats(run_dir, missing_ok=True)
    rundir.check_resume(run_dir, config_now=config_now, config_saved=config_saved, ignore=ignore,
                        fingerprint_now=data_record(stats_json(ds)),
                        fingerprint_saved=None if saved is None else data_record(saved),
                        where=Path(run_dir) / rundir.STATS, labels=FINGERPRINT_LABELS,
                        sources=((saved or {}).get("source"), ds.source))


def config_changes(config: Config, saved: Any, where) -> list[str]:
    """Sections in which ``config`` differs from a saved config dict (only ``train.epochs`` may grow).

    ``saved`` is checked field by field first (``config_from_saved``, naming ``where``); fields added since
    it was written take their defaults. The comparison is ``rundir.config_differences``.
    """
    saved = to_dict(config_from_saved(saved, where))
    return rundir.config_differences(to_dict(config), saved, ignore=("train.epochs",))
