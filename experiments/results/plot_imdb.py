"""Draw imdb_lstm_history.png (beside this file) from imdb_lstm_history.csv, with the lecture's figures marked.

Command:  python experiments/results/plot_imdb.py
The CSV is a run's history.csv from `jena-rnn imdb --out DIR` (the synthetic corpus, the lecture's settings);
the lecture publishes its best validation accuracy on real IMDB (0.893) and about 0.80 after one epoch.
"""
from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from jena_rnn.runtime import report

HERE = Path(__file__).parent
LECTURE_BEST, LECTURE_EPOCH1 = 0.893, 0.80


def main() -> None:
    h = pd.read_csv(HERE / "imdb_lstm_history.csv")
    fig, (a, b) = report.pyplot().subplots(1, 2, figsize=(10, 4))
    best = h.val_acc.idxmax()
    a.plot(h.epoch, h.train_acc, "o", label="training (synthetic v3)")
    a.plot(h.epoch, h.val_acc, ".-", label="validation (synthetic v3)")
    a.plot([h.epoch[best]], [h.val_acc[best]], "r*", ms=12, label=f"best epoch ({h.epoch[best]})")
    a.axhline(LECTURE_BEST, color="k", ls="--", lw=1, label=f"lecture's best validation, real IMDB ({LECTURE_BEST})")
    a.plot([1], [LECTURE_EPOCH1], "kx", ms=9, mew=2, label=f"lecture, epoch 1: about {LECTURE_EPOCH1:.2f}")
    a.axhline(0.5, color="gray", ls=":", lw=1, label="chance")
    a.set(title="LSTM(32) accuracy", xlabel="epoch", ylabel="accuracy", ylim=(0.45, 1.0))
    a.legend(fontsize=8, loc="lower right")
    b.plot(h.epoch, h.train_loss, "o", label="training")
    b.plot(h.epoch, h.val_loss, ".-", label="validation")
    b.set(title="loss", xlabel="epoch", ylabel="binary cross-entropy")
    b.legend(fontsize=8)
    for ax in (a, b):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout()
    report.save_figure(fig, HERE / "imdb_lstm_history.png")


if __name__ == "__main__":
    main()
