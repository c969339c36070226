"""Rerun the lecture's temperature-forecasting study: every experiment, a results table and plots.

``reproduce(out)`` trains each experiment of ``EXPERIMENTS`` into ``out/<name>/`` (a normal run
directory, see ``jena_rnn.forecast.runs``) and writes ``out/results.csv``, ``out/results.md`` and
``out/val_mae.png`` (validation MAE per epoch of every model, the naive baseline as a line).
A finished experiment leaves ``out/<name>/result.json`` and is not rerun; an interrupted one resumes
from its latest checkpoint.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import time
from pathlib import Path

import jax

from jena_rnn import atomic
from jena_rnn import backend as jena_backend
from jena_rnn.runtime import report, rundir
from jena_rnn.forecast import runs
from jena_rnn.config import Config, DataConfig, lecture_config

EXPERIMENTS = ("naive", "mlp", "gru", "gru_dropout", "stacked_gru", "reversed_gru",
               "bidirectional_gru", "lstm", "imdb_lstm")
LECTURE_IMDB_VAL_ACC = 0.893  # section 6.2: Embedding(10000, 32) -> LSTM(32) -> Dense(1, sigmoid), 10 epochs

# Best validation MAE (normalised) in the book's notebook (Deep Learning with Python, 1st ed., 6.3,
# Keras 2.0.8); the LSTM is not in that section's notebook.
LECTURE_VAL_MAE = {"naive": 0.2897, "mlp": 0.299, "gru": 0.264, "gru_dropout": 0.262,
                   "stacked_gru": 0.263, "reversed_gru": 0.399, "bidirectional_gru": 0.262, "lstm": None}
LECTURE_DEGC_PER_UNIT = 8.87  # the real file's temperature std (0.2897 <-> 2.57 °C)

QUICK = {"epochs": 2, "steps_per_epoch": 5}  # --quick: a smoke test of the whole pipeline, not results

COLUMNS = ("experiment", "params", "epochs", "best_epoch", "best_val_mae", "best_val_mae_degC",
           "test_mae", "test_mae_degC", "lecture_val_mae", "best_val_acc", "test_acc", "lecture_val_acc",
           "wall_seconds", "step_ms", "machine")


def machine() -> str:
    """Describe this machine: CPU model and core count, or the accelerator, and JAX's backend."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    backend = jena_backend.name()
    if backend != "cpu":
        return f"{jax.devices()[0].device_kind} ({backend}), jax {jax.__version__}"
    return f"{os.cpu_count()}-core {cpu}, no accelerator, jax {jax.__version__}"


def experiment_config(name: str, data: DataConfig, *, quick: bool = False) -> Config | None:
    """Return the lecture's configuration of experiment ``name`` on ``data`` (``quick``: ``quick_config``).

    ``imdb_lstm`` has its own configuration (``jena_rnn.imdb.IMDBConfig``): None here.
    """
    if name == "imdb_lstm":
        return None
    config = lecture_config(name, Config(data=data))
    return quick_config(config) if quick else config


def quick_config(config: Config) -> Config:
    """Return ``config`` cut to ``QUICK``'s epochs and steps per epoch (``--quick``)."""
    return dataclasses.replace(config, train=dataclasses.replace(config.train, **QUICK))


def _history(run_dir: Path) -> list[dict]:
    """The run's history.json for the wall time (the checkpoints hold the history that counts; [] if damaged)."""
    try:
        return rundir.read_history(run_dir)
    except (ValueError, FileNotFoundError):
        return []


def run_experiment(name: str, config: Config | None, run_dir: Path, *, quick: bool = False,
                   quiet: bool = False) -> dict:
    """Run (or continue) one experiment in ``run_dir``; return its result row, also written as ``result.json``.

    ``result.json`` is only ever written, never read back: a rerun continues the run directory (which
    refuses other settings or other data, ``train.fit``) and scores its best checkpoint again, so an edited,
    damaged or stale ``result.json`` can never stand in for a result.
    """
    done = run_dir / "result.json"
    t0 = time.perf_counter()
    if name == "imdb_lstm":
        row = run_imdb(run_dir, quick=quick, quiet=quiet)
    elif config.model.kind == "naive":
        b = runs.baseline(config.data, quiet=True)
        row = {"params": 0, "epochs": 0, "best_epoch": None, "best_val_mae": b["val_mae"],
               "best_val_mae_degC": b["val_mae_degC"], "test_mae": b["test_mae"],
               "test_mae_degC": b["test_mae_degC"], "step_ms": None}
    else:
        s = runs.train(config, run_dir, resume=True, quiet=quiet)
        history = _history(run_dir)
        row = {k: s[k] for k in ("params", "epochs", "best_epoch", "best_val_mae", "best_val_mae_degC",
                                 "test_mae", "test_mae_degC")}
        row["step_ms"] = s["step_ms_median"]
        row["wall_seconds"] = sum(float(h.get("epoch_seconds", 0.0)) for h in history) or time.perf_counter() - t0
    row.setdefault("wall_seconds", time.perf_counter() - t0)
    row.update(experiment=name, lecture_val_mae=LECTURE_VAL_MAE.get(name), machine=machine())
    report.write_json(done, row)
    return row


def run_imdb(run_dir: Path, *, quick: bool, quiet: bool) -> dict:
    """The lecture's IMDB LSTM (on the synthetic review corpus unless configured otherwise)."""
    from jena_rnn import imdb

    cfg = imdb.IMDBConfig()
    if quick:
        cfg = dataclasses.replace(cfg, synthetic_reviews=400, maxlen=64, max_features=2000, epochs=2)
    s = imdb.run(cfg, run_dir, resume=True, quiet=quiet)
    history = _history(run_dir)
    return {"params": s["params"], "epochs": s["epochs"], "best_epoch": s["best_epoch"],
            "best_val_acc": s["best_val_acc"], "test_acc": s["test_acc"], "step_ms": s["step_ms_median"],
            "lecture_val_acc": LECTURE_IMDB_VAL_ACC,
            "source": s["source"] if cfg.data else (f"synthetic reviews ({cfg.synthetic_reviews:,} per split, "
                                                     f"seed {cfg.synthetic_seed})"),
            "wall_seconds": sum(float(h.get("epoch_seconds", 0.0)) for h in history)}


def results_markdown(rows: list[dict], *, source: str, quick: bool, data: DataConfig) -> str:
    """Render the results table beside the lecture's figures."""
    lines = [f"# Results: the lecture's experiments on {source}", "",
             f"Machine: {rows[0]['machine'] if rows else machine()}." + (
                 " **Quick smoke run (2 epochs x 5 steps): not results.**" if quick else ""), "",
             "| experiment | params | epochs | best val MAE | best val °C | test MAE (best ckpt) | test °C "
             "| lecture val MAE (°C) | wall | ms/step |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "best_val_acc" in r:
            continue
        lec = r["lecture_val_mae"]
        lec_s = f"{lec:.3f} ({lec * LECTURE_DEGC_PER_UNIT:.2f})" if lec else "–"
        step = f"{r['step_ms']:.1f}" if r.get("step_ms") else "–"
        lines.append(f"| {r['experiment']} | {r['params']:,} | {r['epochs']} | {r['best_val_mae']:.4f} "
                     f"| {r['best_val_mae_degC']:.3f} | {r['test_mae']:.4f} | {r['test_mae_degC']:.3f} "
                     f"| {lec_s} | {r['wall_seconds'] / 60:.1f} min | {step} |")
    lines += ["", "MAE is normalised by the training split's temperature standard deviation; °C = MAE x that "
              f"std. Validation: every window whose end row lies in {data.val} ({data.eval_mode} mode); the test "
              "MAE is that of the checkpoint with the best validation MAE. Lecture figures: Keras 2.0.8 on "
              "the real file, best validation MAE, °C = x 8.87.", ""]
    for r in rows:
        if "best_val_acc" in r:
            lines += ["## Sequence classification (the lecture's IMDB LSTM)", "",
                      "| experiment | data | params | epochs | best val accuracy | test accuracy (best ckpt) "
                      "| lecture val accuracy | wall |", "|---|---|---|---|---|---|---|---|",
                      f"| {r['experiment']} | {r['source']} | {r['params']:,} | {r['epochs']} | "
                      f"{r['best_val_acc']:.3f} | {r['test_acc']:.3f} | {r['lecture_val_acc']:.3f} "
                      f"| {r['wall_seconds'] / 60:.1f} min |", ""]
    return "\n".join(lines)


def plot_val_curves(out: Path, names: list[str], baseline: float | None):
    """Plot every experiment's validation MAE per epoch, with the naive baseline as a line.

    Writes ``out/val_mae.png`` and returns the (closed) Figure. Points carry markers (a one-epoch run
    still shows), epoch ticks are whole numbers.
    """
    fig, ax = report.pyplot().subplots(figsize=(7, 4.5))
    epochs = []
    for name in names:
        if (out / name / rundir.HISTORY).is_file():
            h = rundir.read_history(out / name)
            epochs += [e["epoch"] for e in h]
            ax.plot([e["epoch"] for e in h], [e["val_mae"] for e in h], marker=".", label=name)
    if baseline is not None:
        ax.axhline(baseline, color="gray", linestyle="--", label="naive")
    ax.set_ylabel("validation MAE (normalised)")
    ax.set_title("Validation MAE per epoch")
    report.epoch_axis(ax, epochs)
    ax.legend(fontsize=8)
    report.save_figure(fig, out / "val_mae.png")
    return fig


def reproduce(out: str | Path, *, data: DataConfig | None = None, only: list[str] | None = None,
              quick: bool = False, quiet: bool = False) -> dict:
    """Run the experiments (all, or ``only``) into ``out``; write the table and plots; return a summary."""
    data = data or DataConfig()
    names = list(only or EXPERIMENTS)
    unknown = sorted(set(names) - set(EXPERIMENTS))
    if unknown:
        raise ValueError(f"--only: unknown experiments {unknown}; choose from {list(EXPERIMENTS)}")
    out = Path(out)
    with rundir.lock(out, "reproduce"):  # a folder of someone else's files is refused, never overwritten
        return _reproduce(out, data, names, quick=quick, quiet=quiet)


def _reproduce(out: Path, data: DataConfig, names: list[str], *, quick: bool, quiet: bool) -> dict:
    rows = []
    for name in names:
        if not quiet:
            print(f"== {name}", flush=True)
        rows.append(run_experiment(name, experiment_config(name, data, quick=quick), out / name,
                                   quick=quick, quiet=quiet))
    atomic.write_atomic(out / "results.csv", report.history_csv(
        [{k: r.get(k) for k in COLUMNS} for r in rows], COLUMNS).encode())
    source = data.path or f"the synthetic Jena default (seed {data.synthetic_seed}, {data.synthetic_rows:,} rows)"
    atomic.write_atomic(out / "results.md", results_markdown(rows, source=source, quick=quick, data=data).encode())
    naive = next((r["best_val_mae"] for r in rows if r["experiment"] == "naive"), None)
    plot_val_curves(out, [n for n in names if n not in ("naive", "imdb_lstm")], naive)
    return {"out": str(out), "experiments": names,
            "best_val_mae": {r["experiment"]: r["best_val_mae"] for r in rows if "best_val_mae" in r},
            "best_val_acc": {r["experiment"]: r["best_val_acc"] for r in rows if "best_val_acc" in r}}
