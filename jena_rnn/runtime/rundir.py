"""The run directory's single owner: what each file holds, who may write it, and when a run may go on.

Layout (every task; a file only some tasks write says whose)::

    run_dir/
      jena-rnn-run.json    MARKER: {"written_by": "jena_rnn", "kind", "since"}; kinds "forecast", "imdb",
                           "sweep", "reproduce": one kind of run never writes into another's folder
      jena-rnn.lock        LOCK: the writer's lock while a run writes (``jena_rnn.runtime.lock``)
      config.json          the run's configuration (``write_config``; rewritten with every checkpoint)
      stats.json           forecast, sweep: training-split mean/std, columns, splits, the data fingerprint
      fingerprint.json     imdb: the data fingerprint (``write_fingerprint``)
      sweep.json           sweep: its members, their configurations and groups (``jena_rnn.sweep``)
      history.json         one row per epoch (``write_history``; rewritten with every checkpoint)
      history.csv          the same as a table, and its plot (forecast ``loss.png``, imdb ``history.png``),
                           both ``report.write_history``'s
      checkpoints/         ``jena_rnn.runtime.checkpoint``'s: orbax's epoch_NNNN/ steps (older runs: LATEST, BEST)

A data fingerprint is a flat dict (row counts, a SHA-256 of the data, statistics, ...) that a run
records when it starts; ``check_resume`` is the one check that a run is continued with the
configuration and the data it was started with (``config_differences``, ``data_differences``),
used by the forecaster, the IMDB classifier and sweeps. Every file is written with
``report.write_json`` (atomic: ``jena_rnn.atomic``) and read with ``report.read_json`` (one error naming the file).
"""
from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any, Iterator

from jena_rnn.runtime import lock as _lock, report

MARKER = "jena-rnn-run.json"
LOCK = "jena-rnn.lock"
CONFIG, STATS, FINGERPRINT, HISTORY = "config.json", "stats.json", "fingerprint.json", "history.json"
CHECKPOINTS = "checkpoints"
KINDS = ("forecast", "imdb", "sweep", "reproduce")
# what makes an existing folder one of ours (run directories written before MARKER existed have these)
_OURS = (MARKER, LOCK, CHECKPOINTS, "sweep.json")


# ---------------------------------------------------------------- the folder: kind, refusal, lock
def kind_of(run_dir: Path) -> str | None:
    """The kind of run ``run_dir`` holds: its marker's, else guessed from an older layout, else None."""
    marker = run_dir / MARKER
    if marker.is_file():
        saved = report.read_json(marker, what="run marker")
        return saved.get("kind") if isinstance(saved, dict) else None
    if (run_dir / "sweep.json").exists():
        return "sweep"
    if (run_dir / CONFIG).is_file():
        with contextlib.suppress(ValueError):
            saved = report.read_json(run_dir / CONFIG, what="run configuration")
            if isinstance(saved, dict):
                return "imdb" if "max_features" in saved else "forecast" if "model" in saved else None
    return None


def check_folder(run_dir: Path, kind: str | None = None) -> None:
    """Refuse ``run_dir`` unless it is new, empty or a run directory of this project (of this ``kind``).

    A folder that already holds other things (a user's ``config.json`` or ``history.csv``, the current
    folder for ``--out ""``) would have them overwritten by the run's files, so it is refused.

    Raises:
      FileExistsError: ``run_dir`` is a file, or a non-empty folder that is not a jena-rnn run.
    """
    if str(run_dir) in ("", "."):
        raise FileExistsError(f"run directory {str(run_dir)!r}: give a new or empty folder, not the current one")
    if run_dir.exists() and not run_dir.is_dir():
        raise FileExistsError(f"{run_dir}: is a file, not a run directory")
    if not run_dir.is_dir():
        return
    entries = sorted(p.name for p in run_dir.iterdir())
    # a study (reproduce) holds runs as subfolders; any other kind of run writes its files at the top, so a
    # folder of a user's files beside one copied run is no run of that kind
    nested = kind in (None, "reproduce") and any(
        (run_dir / e).is_dir() and any((run_dir / e / n).exists() for n in _OURS) for e in entries)
    if entries and not nested and not any(name in entries for name in _OURS):
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise FileExistsError(f"{run_dir}: holds files that are not a jena-rnn run ({shown}); the run would "
                              "overwrite them: choose a new or empty folder")
    found = kind_of(run_dir) if entries else None
    if kind is not None and found is not None and found != kind:
        raise FileExistsError(f"{run_dir}: holds a {found} run, not a {kind} one; its files would be overwritten: "
                              "choose another folder")


@contextlib.contextmanager
def lock(run_dir: str | Path | None, kind: str | None = None) -> Iterator[None]:
    """Hold ``run_dir``'s writer lock for the block (None: nothing to lock); re-entrant in one thread.

    First ``check_folder(run_dir, kind)``; then the folder is created and marked ``MARKER`` with its
    ``kind``, so that one kind of run never writes into another's folder.

    Raises:
      FileExistsError: the folder is refused, or another process (or thread) holds it; names its pid,
        host and start time.
    """
    if run_dir is None:
        yield
        return
    run_dir = Path(run_dir)
    path = run_dir.absolute() / LOCK

    def take() -> int:
        check_folder(run_dir, kind)
        run_dir.mkdir(parents=True, exist_ok=True)
        fd = _lock.acquire(path)
        if not (run_dir / MARKER).exists():
            report.write_json(run_dir / MARKER, {"written_by": "jena_rnn", "kind": kind, "since": _lock.now()})
        return fd

    with _lock.hold(path, take):
        yield


# ---------------------------------------------------------------- the files
def _read(run_dir: Path, name: str, what: str, *, missing_ok: bool = False) -> Any:
    path = Path(run_dir) / name
    if missing_ok and not path.is_file():
        return None
    return report.read_json(path, what=what)


def _object(run_dir: Path, name: str, what: str, value: Any) -> Any:
    if value is not None and not isinstance(value, dict):
        raise ValueError(f"{Path(run_dir) / name}: expected a JSON object of the {what}, got {type(value).__name__}")
    return value


def write_config(run_dir: str | Path, config: dict) -> None:
    """Write the run's configuration (a JSON-able dict) to ``config.json``."""
    report.write_json(Path(run_dir) / CONFIG, config)


def read_config(run_dir: str | Path) -> dict:
    """Return ``config.json`` (a dict). Raises FileNotFoundError or ValueError naming the file."""
    return _object(run_dir, CONFIG, "run's configuration", _read(run_dir, CONFIG, "run configuration"))


def write_stats(run_dir: str | Path, stats: dict) -> None:
    """Write the training data's statistics (and its fingerprint) to ``stats.json``."""
    report.write_json(Path(run_dir) / STATS, stats)


def read_stats(run_dir: str | Path, *, missing_ok: bool = False) -> dict | None:
    """Return ``stats.json`` (None if it is missing and ``missing_ok``); errors name the file."""
    return _object(run_dir, STATS, "run's data statistics",
                   _read(run_dir, STATS, "run statistics", missing_ok=missing_ok))


def write_fingerprint(run_dir: str | Path, fingerprint: dict) -> None:
    """Write the training data's fingerprint to ``fingerprint.json``."""
    report.write_json(Path(run_dir) / FINGERPRINT, fingerprint)


def read_fingerprint(run_dir: str | Path) -> Any:
    """Return ``fingerprint.json``'s content, or None if the run has none (written before it existed)."""
    return _read(run_dir, FINGERPRINT, "data fingerprint", missing_ok=True)


def write_history(run_dir: str | Path, history: list) -> None:
    """Write the per-epoch rows to ``history.json``."""
    report.write_json(Path(run_dir) / HISTORY, history)


def read_history(run_dir: str | Path) -> list[dict]:
    """Return ``history.json``'s rows. Raises FileNotFoundError, or ValueError naming the file if it is damaged."""
    rows = _read(run_dir, HISTORY, "run history")
    if not (isinstance(rows, list) and all(isinstance(r, dict) for r in rows)):
        raise ValueError(f"{Path(run_dir) / HISTORY}: expected a JSON list of per-epoch objects")
    return rows


# ---------------------------------------------------------------- may this run go on?
def _without(config: dict, ignore: tuple[str, ...]) -> dict:
    config = json.loads(json.dumps(config, default=str))  # a deep copy in which tuples are lists
    for dotted in ignore:
        *parents, leaf = dotted.split(".")
        node = config
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    return config


def config_differences(now: dict, saved: dict, *, ignore: tuple[str, ...] = ()) -> list[str]:
    """Top-level keys whose values differ between two JSON-like configs (tuples equal lists), sorted.

    ``ignore``: dotted paths left out of the comparison, e.g. ``("train.epochs",)`` (a resumed run may
    train longer) or ``("epochs",)``.
    """
    now, saved = _without(now, ignore), _without(saved, ignore)
    return sorted(k for k in set(now) | set(saved) if now.get(k) != saved.get(k))


def _short(key: str, value: Any) -> str:
    if key == "sha256" and isinstance(value, str):
        return f"SHA-256 {value[:12]}..."
    return repr(value) if isinstance(value, str) else str(value)


def data_differences(saved: dict, now: dict, labels: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """Compare two data fingerprints key by key; return ``(what differs, what only one of them records)``.

    Each difference is named by ``labels.get(key, key)``, once per label, in ``now``'s key order: with
    the values for scalars and lists of words, e.g. ``rows (4000 -> 3900)``, ``content (SHA-256
    1f2e3d4c5b6a... -> ...)`` (key ``sha256``), without them for lists of numbers (statistics).
    """
    labels = labels or {}
    saved, now = json.loads(json.dumps(saved)), json.loads(json.dumps(now))
    out, named, unchecked = [], [], []
    for key in list(now) + [k for k in saved if k not in now]:
        label = labels.get(key, key)
        if key not in saved or key not in now:
            unchecked.append(label)
        elif saved[key] != now[key] and label not in named:
            named.append(label)
            numbers = isinstance(now[key], list) and not all(isinstance(v, str) for v in now[key])
            out.append(label if numbers else f"{label} ({_short(key, saved[key])} -> {_short(key, now[key])})")
    return out, sorted(set(unchecked) - set(named))


def check_resume(run_dir: str | Path, *, config_now: dict, config_saved: dict, fingerprint_now: dict,
                 fingerprint_saved: Any, where: str | Path, ignore: tuple[str, ...] = (),
                 labels: dict[str, str] | None = None, noun: str = "data",
                 sources: tuple[str, str] | None = None) -> None:
    """Refuse to resume ``run_dir`` with another configuration or on other data than it was started with.

    Args:
      config_now, config_saved: the configuration now and the saved one (``config_differences``,
        leaving out ``ignore``).
      fingerprint_now, fingerprint_saved: the data fingerprint now and the one recorded in ``where`` when
        the run started (None: the run recorded none); ``data_differences`` with ``labels``.
      noun: what the data are, for the messages ("data", "reviews").
      sources: (the data the run was trained on, the data now), named in the refusal.
    Raises:
      ValueError: naming ``run_dir`` and what differs: the configuration's sections, or the data's.
    Warns:
      When the saved fingerprint is missing or records less than now's (written before it did): the
      data cannot be checked (fully).
    """
    diff = config_differences(config_now, config_saved, ignore=ignore)
    if diff:
        raise ValueError(f"cannot resume {run_dir}: its saved configuration differs in {diff}")
    if fingerprint_saved is None:
        warnings.warn(f"{where} is missing (a run written before it existed): cannot check that the resumed run "
                      f"trains on the same {noun}", stacklevel=3)
        return
    if not isinstance(fingerprint_saved, dict):
        raise ValueError(f"{where}: expected a JSON object of the run's data fingerprint, got "
                         f"{type(fingerprint_saved).__name__}")
    diff, unchecked = data_differences(fingerprint_saved, fingerprint_now, labels)
    trained = f"; trained on {sources[0]}, now {sources[1]}" if sources else ""
    if diff:
        raise ValueError(f"cannot resume {run_dir}: its {noun} differ from the run's training data in "
                         f"{', '.join(diff)}{trained}. Resume with the same {noun}, or train into a new run "
                         "directory")
    if unchecked:
        warnings.warn(f"{where} has no data fingerprint of {', '.join(unchecked)} (written before it existed): "
                      f"cannot check that the resumed run trains on the {noun} it was trained on{trained}",
                      stacklevel=3)
