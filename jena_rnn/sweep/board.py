"""A sweep's outputs: members' results, the leaderboard (``results.csv``/``.md``), the curves, member run dirs."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from jena_rnn import atomic
from jena_rnn.runtime import checkpoint, report, rundir
from jena_rnn import data
from jena_rnn.forecast import record
from jena_rnn.config import Config, to_dict

LEADERBOARD = ("rank", "member", "group", "structure", "lr", "rho", "dropout", "recurrent_dropout", "seed",
               "best_epoch", "best_val_mae", "best_val_mae_degC", "epochs_run", "status")


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def write_leaderboard(out: Path, board: list[dict]) -> None:
    """Write ``results.csv``, ``results.md`` (sorted by best validation MAE) and ``val_curves.png``."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=LEADERBOARD, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    w.writerows(board)
    atomic.write_atomic(out / "results.csv", buf.getvalue().encode())
    lines = ["| " + " | ".join(LEADERBOARD) + " |", "|" + "---|" * len(LEADERBOARD)]
    lines += ["| " + " | ".join(_fmt(b[c]) for c in LEADERBOARD) + " |" for b in board]
    text = (f"# Sweep leaderboard ({len(board)} members)\n\nSorted by best validation MAE; "
            "`best_val_mae` is normalised, `_degC` in the target's units.\n\n" + "\n".join(lines) + "\n")
    atomic.write_atomic(out / "results.md", text.encode())
    plot_curves(board, out / "val_curves.png")


def plot_curves(board: list[dict], path: Path, *, top: int = 10):
    """Plot every member's validation MAE per epoch (the best ``top`` labelled); return the (closed) Figure.

    Points carry markers, so a one-epoch sweep still shows them; epoch ticks are whole numbers.
    """
    fig, ax = report.pyplot().subplots(figsize=(7, 4.5))
    for b in board:
        h = b["history"]
        ax.plot([r["epoch"] for r in h], [r["val_mae_degC"] for r in h], marker=".",
                alpha=0.8 if b["rank"] <= top else 0.3,
                label=f"{b['member']} lr={b['lr']:.2g} rd={_fmt(b['recurrent_dropout'])} s={b['seed']}"
                if b["rank"] <= top else None)
    ax.set_ylabel("validation MAE (°C)")
    ax.set_title(f"Validation MAE of {len(board)} sweep members")
    report.epoch_axis(ax, [r["epoch"] for b in board for r in b["history"]])
    ax.legend(fontsize=7)
    report.save_figure(fig, path)
    return fig


def member_results(names: list[str], history: list[dict]) -> list[dict]:
    """Each member's ``{"name", "history", "best_epoch", "best_val_mae", "status"}`` from a group's history."""
    res = {n: {"name": n, "history": [], "best_epoch": None, "best_val_mae": float("inf"), "status": "running"}
           for n in names}
    for row in history:
        for n, r in row["members"].items():
            res.setdefault(n, {"name": n, "history": [], "status": "running"})["history"].append(r)
        for n in row["best"]:
            res[n]["best_epoch"], res[n]["best_val_mae"] = row["epoch"], row["members"][n]["val_mae"]
        for n, status in row["stopped"].items():
            res[n]["status"] = status
    return list(res.values())


def group_rows(saved: list[dict]) -> list[dict]:
    """A group history as rows; a group checkpointed before rows existed saved its members' results instead."""
    if not saved or "members" in saved[0]:
        return saved
    done = max(len(r["history"]) for r in saved)
    return [{"epoch": e, "members": {r["name"]: r["history"][e - 1] for r in saved if len(r["history"]) >= e},
             "best": [r["name"] for r in saved if r["best_epoch"] == e],
             "stopped": {r["name"]: r["status"] for r in saved if len(r["history"]) == e and r["status"] != "running"}}
            for e in range(1, done + 1)]


def member_values(cfg: Config) -> dict:
    """The vmapped values of a member, as its leaderboard row shows them."""
    def layer(name):  # one layer: the rate; a stack: "0.1/0.5" (rounded for the table)
        values = [getattr(l, name) for l in cfg.model.layers]
        return values[0] if len(values) == 1 else "/".join(f"{v:.4g}" for v in values)

    return {"lr": cfg.optim.learning_rate, "rho": cfg.optim.decay, "dropout": layer("dropout"),
            "recurrent_dropout": layer("recurrent_dropout"), "seed": cfg.train.seed}


def export_member(mdir: Path, cfg: Config, best_state, result: dict, ds: data.Dataset) -> None:
    """Write a member's best state as an ordinary run directory (usable by ``jena-rnn evaluate``)."""
    epoch = result["best_epoch"]
    if checkpoint.latest(mdir) is not None and checkpoint.latest(mdir) >= epoch:
        return  # already exported (a resumed sweep without a better epoch)
    history = result["history"]
    # process 0 alone exports (sweep.run), from host copies: no barrier with the other processes
    checkpoint.save(mdir, best_state, epoch=epoch, history=history, config=to_dict(cfg), is_best=True,
                    collective=False)
    rundir.write_stats(mdir, record.stats_json(ds))
    report.write_history(mdir, history)
