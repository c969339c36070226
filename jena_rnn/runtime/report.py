"""Run artefacts for people: JSON files, history CSV, plots, log lines, a progress bar.

Every file is written atomically (``jena_rnn.atomic.write_atomic``, the project's one writer), so a
crash never leaves a half-written history or plot behind; ``save_figure`` is the only figure saver. Which file of a run directory holds what is
``jena_rnn.runtime.rundir``'s business.
"""
from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

from jena_rnn.atomic import write_atomic
from jena_rnn.runtime import progress

ProgressBar = progress.ProgressBar  # its home is runtime.progress; report.ProgressBar stays importable
_clock = progress.clock

HISTORY_FIELDS = ("epoch", "train_mae", "val_mae", "train_mae_degC", "val_mae_degC",
                  "train_seconds", "step_ms", "epoch_seconds")


def _plain(obj):
    """A 0-d numpy or JAX value as its Python scalar (JSON has no float32); anything else is refused."""
    if hasattr(obj, "shape") and hasattr(obj, "item") and obj.shape == ():
        return obj.item()
    raise TypeError(f"cannot store {type(obj).__name__} in JSON: {obj!r}")


def json_text(obj) -> str:
    """``obj`` as the project's indented JSON text (0-d numpy/JAX values become Python scalars)."""
    return json.dumps(obj, indent=2, default=_plain) + "\n"


def write_json(path: str | Path, obj) -> None:
    """Write ``obj`` as indented JSON (``json_text``), atomically."""
    write_atomic(path, json_text(obj).encode())


def read_json(path: str | Path, *, what: str = "file"):
    """Parse a JSON file; raise one clear error naming it (and ``what`` it is).

    Raises:
      FileNotFoundError: ``path`` does not exist.   ValueError: it is not UTF-8 text or not valid JSON.
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such {what}") from None
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 text (byte {e.start}); the {what} is damaged") from None
    except IsADirectoryError:
        raise ValueError(f"{path}: is a directory, expected a JSON {what}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                         f"the {what} is damaged") from None


def history_csv(history: list[dict], fields: tuple[str, ...] = HISTORY_FIELDS) -> str:
    """Return rows as CSV text: the columns ``fields`` first, then any other keys in sorted order."""
    fields = list(fields) + sorted({k for h in history for k in h} - set(fields))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    return buf.getvalue()


def warm_step_time(history: list[dict]) -> tuple[float, str]:
    """Median ``step_ms`` of the epochs that did not compile, and which epochs those are.

    Each process's first epoch includes jit compilation (its rows say ``first_in_process``), so it is left
    out, in every process of a resumed run; rows of versions that did not record it are left out too (their
    compiling epochs cannot be told apart). Only if nothing is left is the newest row used, and said to include
    compilation.
    Returns:
      (milliseconds, label), e.g. ``(12.3, "epochs 2-20, compile excluded")``, ``"epochs 2-3, 5-6, ..."``
      after a resume at epoch 4.
    """
    warm = warm_rows(history)
    if not warm:  # only compiling epochs ran: say so rather than hide it
        row = history[-1]
        return float(row["step_ms"]), f"epoch {row['epoch']}, compile included"
    return (float(statistics.median(h["step_ms"] for h in warm)),
            f"{epoch_ranges([h['epoch'] for h in warm])}, compile excluded")


def warm_rows(history: list[dict]) -> list[dict]:
    """The rows whose times include no jit compilation: not their process's first epoch (``first_in_process``
    False; rows that do not say, an older version's, are not trusted)."""
    return [h for h in history if h.get("first_in_process") is False]


def epoch_ranges(epochs: list[int]) -> str:
    """``[2, 3, 5]`` -> ``"epochs 2-3, 5"``; ``[4]`` -> ``"epoch 4"``."""
    runs: list[list[int]] = []
    for e in epochs:
        if runs and e == runs[-1][1] + 1:
            runs[-1][1] = e
        else:
            runs.append([e, e])
    text = ", ".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in runs)
    return f"epoch {text}" if len(epochs) == 1 else f"epochs {text}"


def pyplot():
    """Return ``matplotlib.pyplot`` on the file-only Agg backend (no display is ever needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, path: str | Path) -> None:
    """Save ``fig`` as a PNG (100 dpi) to ``path`` atomically, then close it: the project's one figure saver."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=100)
    pyplot().close(fig)
    write_atomic(path, buf.getvalue())


def epoch_axis(ax, epochs) -> None:
    """Give ``ax`` whole-number epoch ticks; a single epoch gets the range [e - 1, e + 1] around it.

    (Matplotlib's integer locator needs two whole numbers in view, and one point's default range holds one.)
    """
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    epochs = set(epochs)
    if len(epochs) == 1:
        (e,) = epochs
        ax.set_xlim(e - 1, e + 1)
    ax.set_xlabel("epoch")


def history_figure(history: list[dict], *, title: str = "Training and validation loss",
                   baseline: float | None = None, unit: str = "normalised", scale: float | None = None,
                   scale_unit: str = "°C", best_of: tuple[str, bool] | None = None,
                   panels: tuple[tuple[str, str, str], ...] | None = None):
    """Build the lecture-style figure of a history: training (dots) and validation (line) per epoch.

    Args:
      history: one row per epoch with ``epoch``, ``train_<key>`` and ``val_<key>`` for each panel.
      panels: one ``(key, word, ylabel)`` per subplot; default: the MAE, labelled "loss" as in the lecture.
      baseline: drawn on the first panel as a dashed line (the naive forecast's validation MAE).
      scale: when given, the first panel gets a second y axis on the right in ``scale_unit``,
        ``y * scale`` (the target's training std turns a normalised MAE into °C).
      best_of: ``(column, minimize)`` that picks the best epoch (the one the best checkpoint holds),
        marked on every panel; default: the first panel's ``val_<key>``, minimised.
    Returns:
      The matplotlib Figure (not saved; ``plot_history`` saves it). Validation points carry markers, so a
      one-epoch history still shows them; epoch ticks are whole numbers.
    """
    panels = panels or (("mae", "loss", f"MAE ({unit})"),)
    column, minimize = best_of or (f"val_{panels[0][0]}", True)
    epochs = [h["epoch"] for h in history]
    scores = [h[column] for h in history]
    best = history[(min if minimize else max)(range(len(history)), key=scores.__getitem__)]["epoch"] \
        if history else None
    fig, axes = pyplot().subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for n, (ax, (key, word, ylabel)) in enumerate(zip(axes[0], panels)):
        val = [h[f"val_{key}"] for h in history]
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "bo", label=f"Training {word}")
        ax.plot(epochs, val, "b-", marker=".", label=f"Validation {word}")
        if best is not None:
            ax.plot([best], [val[epochs.index(best)]], "r*", markersize=12, label=f"best epoch ({best})")
        if baseline is not None and n == 0:
            ax.axhline(baseline, color="gray", linestyle="--", label=f"naive baseline ({baseline:.3f})")
        if scale is not None and n == 0:
            sec = ax.secondary_yaxis("right", functions=(lambda y: y * scale, lambda y: y / scale))
            sec.set_ylabel(f"{ylabel.split(' (')[0]} ({scale_unit})")
        epoch_axis(ax, epochs)
        ax.set_title(title if len(panels) == 1 else f"Training and validation {word}")
        ax.set_ylabel(ylabel)
        ax.legend()
    return fig


def plot_history(history: list[dict], path: str | Path, **kwargs):
    """Save ``history_figure(history, **kwargs)`` as a PNG at ``path``; return the (closed) Figure."""
    fig = history_figure(history, **kwargs)
    save_figure(fig, path)
    return fig


def write_history(run_dir: str | Path, history: list[dict], *, fields: tuple[str, ...] = HISTORY_FIELDS,
                  plot: str = "loss.png", panels: tuple[tuple[str, str, str], ...] | None = None,
                  title: str | None = None, baseline: float | None = None, scale: float | None = None,
                  scale_unit: str = "°C", best_of: tuple[str, bool] | None = None) -> None:
    """Write ``history.csv`` (columns ``fields`` first) and the plot ``plot`` into ``run_dir``.

    ``history.json`` is ``rundir.write_history``'s; ``panels``, ``baseline``, ``scale``, ``scale_unit``,
    ``best_of``: as ``history_figure``'s.
    """
    run_dir = Path(run_dir)
    write_atomic(run_dir / "history.csv", history_csv(history, fields).encode())
    plot_history(history, run_dir / plot, panels=panels, baseline=baseline, scale=scale, scale_unit=scale_unit,
                 best_of=best_of,
                 title=title or f"Training and validation loss ({run_dir.name})")


def epoch_line(row: dict, epochs: int, history: list[dict], *, unit: str = "°C") -> str:
    """Format one log line: losses (normalised and in the target's ``unit``: the ``*_degC`` fields hold
    ``MAE x`` the target's training std, °C for the lecture's temperature), time and ETA."""
    done = row["epoch"]
    # a process's first epoch includes compilation: estimate the rest from the others when there are any
    times = [h["epoch_seconds"] for h in warm_rows(history)] or [row["epoch_seconds"]]
    eta = (epochs - done) * sum(times) / len(times)
    return (f"epoch {done:3d}/{epochs}  train MAE {row['train_mae']:.4f} ({row['train_mae_degC']:.3f} {unit})  "
            f"val MAE {row['val_mae']:.4f} ({row['val_mae_degC']:.3f} {unit})  "
            f"{row['epoch_seconds']:.1f}s ({row['step_ms']:.1f} ms/step)  ETA {_clock(eta)}")
