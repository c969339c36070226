"""Run artefacts for people: JSON files, history CSV, plots, log lines, a progress bar.

Every file is written atomically (``jena_rnn.atomic.write_atomic``, the project's one writer), so a
crash never leaves a half-written history or plot behind; ``save_figure`` is the only figure saver. Which file of a run directory holds what is
``jena_rnn.runtime.rundir``'s business.
"""
from __future__ import annotations

import csv
import io
import json
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


def plot_history(history: list[dict], path: str | Path, *, title: str = "Training and validation loss",
                 baseline: float | None = None, unit: str = "normalised",
                 panels: tuple[tuple[str, str, str], ...] | None = None) -> None:
    """Plot training (dots) and validation (line) metrics per epoch, as the lecture's figures do.

    Args:
      panels: one ``(key, word, ylabel)`` per subplot, plotting ``train_<key>`` and ``val_<key>``;
        default: the MAE, labelled "loss" as in the lecture. ``baseline`` is drawn on the first panel.
    """
    panels = panels or (("mae", "loss", f"MAE ({unit})"),)
    epochs = [h["epoch"] for h in history]
    fig, axes = pyplot().subplots(1, len(panels), figsize=(6 * len(panels), 4), squeeze=False)
    for n, (ax, (key, word, ylabel)) in enumerate(zip(axes[0], panels)):
        ax.plot(epochs, [h[f"train_{key}"] for h in history], "bo", label=f"Training {word}")
        ax.plot(epochs, [h[f"val_{key}"] for h in history], "b", label=f"Validation {word}")
        if baseline is not None and n == 0:
            ax.axhline(baseline, color="gray", linestyle="--", label="naive baseline")
        ax.set_title(title if len(panels) == 1 else f"Training and validation {word}")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.legend()
    save_figure(fig, path)


def write_history(run_dir: str | Path, history: list[dict], *, fields: tuple[str, ...] = HISTORY_FIELDS,
                  plot: str = "loss.png", panels: tuple[tuple[str, str, str], ...] | None = None,
                  title: str | None = None) -> None:
    """Write ``history.csv`` (columns ``fields`` first) and the plot ``plot`` into ``run_dir``.

    ``history.json`` is ``rundir.write_history``'s; ``panels``: as ``plot_history``'s.
    """
    run_dir = Path(run_dir)
    write_atomic(run_dir / "history.csv", history_csv(history, fields).encode())
    plot_history(history, run_dir / plot, panels=panels,
                 title=title or f"Training and validation loss ({run_dir.name})")


def epoch_line(row: dict, epochs: int, history: list[dict]) -> str:
    """Format one log line: losses (normalised and in the target's units), time and ETA."""
    done = row["epoch"]
    # the first epoch includes compilation: estimate the rest from later epochs when there are any
    times = [h["epoch_seconds"] for h in history[1:]] or [row["epoch_seconds"]]
    eta = (epochs - done) * sum(times) / len(times)
    return (f"epoch {done:3d}/{epochs}  train MAE {row['train_mae']:.4f} ({row['train_mae_degC']:.3f} °C)  "
            f"val MAE {row['val_mae']:.4f} ({row['val_mae_degC']:.3f} °C)  "
            f"{row['epoch_seconds']:.1f}s ({row['step_ms']:.1f} ms/step)  ETA {_clock(eta)}")
