"""Run-level operations behind the command line: train a run directory, evaluate, baseline, predict.

A run directory holds ``config.json``, ``stats.json`` (training-split mean/std, columns, splits, the data
fingerprint), ``history.{json,csv}``, ``loss.png`` and ``checkpoints/`` (``jena_rnn.runtime.rundir``'s
layout). Each function returns a JSON-able summary dict.
"""
from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import jax
import numpy as np

from jena_rnn.runtime import checkpoint, distributed, report, rundir
from jena_rnn import backend, data
from jena_rnn.forecast import record, train as training
from jena_rnn.data import load_table
from jena_rnn.config import SENTINEL_COLUMNS, Config, DataConfig, ModelConfig, config_from_saved
from jena_rnn.nn.models import apply_model, count_params


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def load_data(cfg: DataConfig, *, quiet: bool = False) -> data.Dataset:
    """Load the dataset of ``cfg`` and report its defects (sentinels, duplicates, gaps) on stderr."""
    ds = data.load_dataset(cfg)
    if not quiet:
        _log(f"data: {ds.source}: {ds.series.shape[0]} rows x {ds.series.shape[1]} columns; "
             f"train {ds.train}, val {ds.val}, test {ds.test}")
        notes = data_notes(ds.report)
        if notes:
            _log(f"data report: {json.dumps(notes, default=str)}")
    return ds


DEFECTS = ("sentinel_counts", "outlier_counts", "duplicated_timestamps", "dropped_duplicates", "non_increasing",
           "gaps", "missing_slots")  # the counts of a loader's report that say something is wrong with the file


def data_notes(report: dict) -> dict:
    """What a loader's report says that a user should hear: defects found, or a freshly generated default.

    Only non-zero counts of ``DEFECTS`` are kept (a ``{column: count}`` count keeps its non-zero columns),
    with the policy that handled them; ``"generated"`` names the synthetic cache when it was just written.
    An ordinary cached or clean load gives ``{}``: nothing to print.
    """
    notes = {}
    for key in DEFECTS:
        value = report.get(key)
        value = {c: n for c, n in value.items() if n} if isinstance(value, dict) else value
        if value:
            notes[key] = value
    sentinels = notes.get("sentinel_counts", {})
    for key, policy, applies in (
            ("sentinel_counts", "sentinel_policy", any(c in SENTINEL_COLUMNS for c in sentinels)),
            # sentinels outside the wind columns are handled by the other policy (checks.apply_sentinel)
            ("sentinel_counts", "other_sentinel_policy", any(c not in SENTINEL_COLUMNS for c in sentinels)),
            ("outlier_counts", "outlier_policy", True)):
        if key in notes and applies and report.get(policy) is not None:
            notes[policy] = report[policy]
    if report.get("cached") is False:
        notes["generated"] = f"synthetic default written to the cache {report.get('file')}"
    return notes


def resolve_mesh(config: Config, mesh="auto"):
    """Resolve ``mesh="auto"`` for ``config``: ``distributed.auto_mesh`` of its batch size.

    That is every local device that divides the batch, or every device of the job under several
    processes. In one process the MLP and the naive model stay on one device (the MLP's step is slower
    split over CPU devices: benchmarks/RESULTS.md, "The MLP's kernel stored transposed", bench_train's
    data-parallel column).
    """
    if mesh != "auto":
        return mesh
    if config.model.kind in ("mlp", "naive") and jax.process_count() == 1:
        return None
    return distributed.auto_mesh(config.data.batch_size)


def train(config: Config, out: str | Path, *, resume: bool = False, quiet: bool = False,
          mesh="auto") -> dict:
    """Train ``config`` into run directory ``out``; return the best epoch and its test MAE.

    ``mesh``: a ``"data"`` mesh for data-parallel training, None for one device, or "auto"
    (``resolve_mesh``: every local device that divides the batch, every device of the job under several
    processes; one device for the MLP in one process).
    """
    quiet = quiet or not distributed.is_main()  # under jax.distributed, process 0 speaks for all
    ds = load_data(config.data, quiet=quiet)
    log = None if quiet else _log
    mesh = resolve_mesh(config, mesh)
    n_dev = distributed.axis_size(mesh, "data")
    if log is not None and n_dev > 1:
        log(f"devices: batch of {config.data.batch_size} split over {n_dev} {backend.name()} devices "
            f"(data parallel)")
    state, history = training.fit(config, ds, out, resume=resume, log=log, progress=not quiet and sys.stderr.isatty(),
                                  mesh=mesh)
    scale = data.target_scale(ds)
    best_state, meta = checkpoint.restore(out, state, which="best")
    test_mae = training.evaluate_split(config, best_state.params, ds, "test", mesh=mesh)
    best = min(history, key=lambda h: h["val_mae"])
    step_ms, measured = report.warm_step_time(history)
    summary = {"run_dir": str(out), "params": count_params(state.params), "epochs": len(history),
               "best_epoch": best["epoch"], "best_val_mae": best["val_mae"],
               "best_val_mae_degC": best["val_mae_degC"], "test_mae": test_mae,
               "test_mae_degC": test_mae * scale, "step_ms_median": step_ms, "step_ms_of": measured,
               "backend": backend.name(), "device": str(jax.devices()[0].device_kind),
               "devices": n_dev}
    if not quiet:
        _log(f"{step_ms:.1f} ms per training step (median of {measured}; batch {config.data.batch_size}, "
             f"{config.data.timesteps} timesteps, {backend.name()})")
    return summary


def naive_mae(config: Config, ds: data.Dataset, split: str) -> float:
    """Normalised MAE of the naive forecast (last observed target) over a whole split."""
    naive = dataclasses.replace(config, model=ModelConfig(kind="naive", layers=()))
    return training.evaluate_split(naive, {}, ds, split)


def baseline(cfg: DataConfig, *, quiet: bool = False) -> dict:
    """Score the naive method on validation and test, normalised and in the target's units."""
    ds = load_data(cfg, quiet=quiet)
    config = Config(data=cfg)
    scale = data.target_scale(ds)
    out = {"source": ds.source, "target": cfg.target, "target_std": scale}
    for split in ("val", "test"):
        m = naive_mae(config, ds, split)
        out[f"{split}_mae"], out[f"{split}_mae_degC"] = m, m * scale
    return out


def read_run(run_dir: str | Path) -> tuple[Config, dict]:
    """Return ``(config, stats)`` of a run directory, refusing damaged or ill-formed files by name."""
    run_dir = Path(run_dir)
    if not (run_dir / rundir.CONFIG).is_file():
        raise FileNotFoundError(f"{run_dir}: not a run directory (no config.json)")
    config = config_from_saved(rundir.read_config(run_dir), run_dir / rundir.CONFIG)
    path = run_dir / rundir.STATS
    stats = rundir.read_stats(run_dir)
    ok = (isinstance(stats, dict) and isinstance(stats.get("columns"), list)
          and isinstance(stats.get("target_col"), int) and 0 <= stats["target_col"] < len(stats["columns"])
          and all(isinstance(stats.get(k), list) and len(stats[k]) == len(stats["columns"])
                  and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stats[k])
                  for k in ("mean", "std")))
    if not ok:
        raise ValueError(f"{path}: expected columns, target_col and one mean and std per column")
    for j, name in enumerate(stats["columns"]):
        mean, std = stats["mean"][j], stats["std"][j]
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"{path}: column {name!r} has mean {mean!r} and std {std!r}; a run's statistics are "
                             "finite with std > 0 (the file was edited or damaged)")
    target = stats["columns"][stats["target_col"]]
    if target != config.data.target:
        raise ValueError(f"{run_dir / 'config.json'}: target {config.data.target!r} differs from the one the run was "
                         f"trained on, {target!r} ({path}); the files were edited or mixed up")
    return config, stats


def _check_against_checkpoint(run_dir: Path, config: Config, meta: dict) -> None:
    """Refuse a ``config.json`` that differs from the configuration saved inside the checkpoint itself.

    Both are written by the run; a difference means config.json was edited (another lookback would score
    other windows with the same weights and print a plausible wrong number). Only ``train.epochs`` may
    differ (a resumed run extends it).
    """
    try:
        diff = record.config_changes(config, meta.get("config"), f"checkpoint epoch {meta.get('epoch')} of {run_dir}")
    except ValueError:
        return  # an older or foreign meta: config.json was already validated on its own
    if diff:
        raise ValueError(f"{run_dir / 'config.json'} differs in {diff} from the configuration saved with checkpoint "
                         f"epoch {meta.get('epoch')}: was it edited? Restore it, or train a new run")


def _check_columns(source: str, columns, stats: dict) -> None:
    if list(columns) != stats["columns"]:
        raise ValueError(f"{source}: columns {list(columns)} differ from the run's {stats['columns']} "
                         "(names and order must match the training data's)")


def _data_note(run_dir: Path, same: bool | None, source: str) -> str:
    """The ``"data"`` field of evaluate/predict, and the matching note on stderr."""
    if same:
        return "same as training"
    if same is None:
        note = "unknown (the run's stats.json has no data fingerprint: written before it existed)"
    else:
        note = "other than the run's training data (fingerprint differs)"
    _log(f"note: {source} is {note}; normalised with the run's saved training statistics ({run_dir / 'stats.json'})")
    return note


def load_run(run_dir: str | Path, which="best", data_path: str | None = None):
    """Return ``(config, dataset, state, meta)`` of a saved run (``data_path`` overrides its data).

    The data are normalised with the run's saved training statistics (``stats.json``), also for another
    file, whose columns must match the run's in name and order. ``meta["data"]`` says whether the data
    are the run's training data (``data_note``).
    """
    run_dir = Path(run_dir)
    config, stats = read_run(run_dir)
    trained = config
    if data_path is not None:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, path=data_path))
    saved = data.Stats(np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32))
    ds = load_data(config.data, quiet=True)
    _check_columns(ds.source, ds.columns, stats)
    if not (np.array_equal(ds.stats.mean, saved.mean) and np.array_equal(ds.stats.std, saved.std)):
        ds = data.load_dataset(config.data, stats=saved)  # another file: the run's statistics, never its own
    diff = record.data_differences(stats, ds)
    like = training.init_state(config, jax.random.PRNGKey(0), ds.series.shape[1])
    state, meta = checkpoint.restore(run_dir, like, which=which)
    _check_against_checkpoint(run_dir, trained, meta)
    meta = {**meta, "data": _data_note(run_dir, None if diff is None else not diff, ds.source)}
    return config, ds, state, meta


def evaluate(run_dir: str | Path, *, split: str = "test", which="best", data_path: str | None = None,
             mesh="auto") -> dict:
    """MAE of a saved run's checkpoint on a split, normalised and in the target's units.

    The data are normalised with the run's saved training statistics, also for ``data_path``; the
    result's ``"data"`` says whether they are the run's training data. ``mesh``: "auto"
    (``resolve_mesh``: the windows split over the local devices), a ``"data"`` mesh, or None (one
    device); the MAE is the same to float rounding.
    """
    config, ds, state, meta = load_run(run_dir, which, data_path)
    m = training.evaluate_split(config, state.params, ds, split, mesh=resolve_mesh(config, mesh))
    scale = data.target_scale(ds)
    return {"run_dir": str(run_dir), "epoch": meta["epoch"], "split": split, "source": ds.source,
            "data": meta["data"], "mae": m, "mae_degC": m * scale}


def predict(run_dir: str | Path, *, data_path: str | None = None, which="best") -> dict:
    """Forecast the target ``delay + step`` rows after the newest row of a file (or of the run's data).

    The file needs only ``lookback`` rows: no splits are resolved. Its window is normalised with the
    run's saved training statistics (``stats.json``), never with the file's own. The window's end row
    is ``N - 1 + step``, so its last input is the file's newest row and, as in training, the target
    lies ``delay + step`` rows after the last input (with the lecture's settings: 150 rows, 25 h, not
    24 h: the lecture's windows put the target ``delay`` rows after the end row, one ``step`` past the
    last input). The output says so: ``rows_ahead_of_last_input``, ``hours_ahead`` (when the file has
    times) and ``forecast_of``.
    """
    run_dir = Path(run_dir)
    config, stats = read_run(run_dir)
    d = config.data if data_path is None else dataclasses.replace(config.data, path=data_path)
    table, source = load_table(d)
    _check_columns(source, table.columns, stats)
    n = len(table.values)
    if n < d.lookback:
        raise ValueError(f"{source}: {n} rows, but a window needs lookback={d.lookback} rows")
    col = stats["target_col"]
    mean, std = np.asarray(stats["mean"], np.float32), np.asarray(stats["std"], np.float32)
    old = stats.get("fingerprint")
    if isinstance(old, dict):
        now = data.fingerprint_of(table.values, data.Stats(mean, std))
        same = (old.get("rows"), old.get("sha256")) == (now["rows"], now["sha256"])
    else:
        same = None
    offsets = data.newest_window_rows(n, lookback=d.lookback, step=d.step)  # rows of the newest window, oldest first
    xs = ((table.values[offsets] - mean) / std)[None]
    if d.reverse:
        xs = xs[:, ::-1]
    like = training.init_state(config, jax.random.PRNGKey(0), len(stats["columns"]))
    state, meta = checkpoint.restore(run_dir, like, which=which)
    _check_against_checkpoint(run_dir, config, meta)
    y_hat = float(apply_model(config.model, state.params, jax.numpy.asarray(xs), target_col=col)[0])
    ahead = d.delay + d.step
    out = {"run_dir": str(run_dir), "epoch": meta["epoch"], "source": source,
           "data": _data_note(run_dir, same, source), "target": d.target,
           "last_input_row": int(offsets[-1]), "forecast_row": int(offsets[-1] + ahead),
           "rows_ahead_of_last_input": ahead, "forecast_normalised": y_hat,
           "forecast": y_hat * float(std[col]) + float(mean[col])}
    what = f"{d.target} {ahead} rows (delay {d.delay} + step {d.step}) after the last input row {offsets[-1]}"
    if table.times is not None and n > 1:
        dt = np.median(np.diff(table.times[-1000:]))
        out["hours_ahead"] = float((dt * ahead) / np.timedelta64(1, "h"))
        out["last_input_time"] = str(table.times[-1])
        out["forecast_time"] = str(table.times[-1] + dt * ahead)
        what += f" ({out['hours_ahead']:g} h after {out['last_input_time']}, i.e. at {out['forecast_time']})"
    out["forecast_of"] = what
    return out


def synth(out: str | Path, *, rows: int = 420_551, seed: int = 0) -> dict:
    """Write the synthetic Jena table in the real file's exact format."""
    table = data.synthetic_jena(n_rows=rows, seed=seed)
    data.write_jena_csv(table, out)
    return {"out": str(out), "rows": rows, "seed": seed, "columns": list(table.columns)}
