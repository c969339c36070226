"""The IMDB corpus for a run: read (or generate) the reviews, hold out validation, pad every split."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from jena_rnn.data import text
from jena_rnn.imdb.model import IMDBConfig

# The padded token table [N, maxlen] int32 of all reviews; 2**31 entries (8 GiB) is past any machine's
# use here and past int32 indexing.
MAX_PADDED_TOKENS = (1 << 31) - 1


def prepare(cfg: IMDBConfig, *, cache_dir=None, log=None) -> dict:
    """Load (or generate) the corpus and pad it; return numpy splits ``train``/``val``/``test``.

    Each split is ``(x [N, maxlen] int32, lengths [N] int32, y [N] float32)``; also ``report``, ``vocab``.
    """
    path = cfg.data
    if path is None:
        root = Path(cache_dir or os.environ.get("JENA_RNN_CACHE") or Path.home() / ".cache" / "jena_rnn")
        path = root / f"imdb_synthetic_v3_n{cfg.synthetic_reviews}_seed{cfg.synthetic_seed}" / "aclImdb"
        if not path.is_dir():
            if log:
                log(f"writing the synthetic review corpus to {path}")
            text.write_synthetic_imdb(path, n_train=cfg.synthetic_reviews, n_test=cfg.synthetic_reviews,
                                      seed=cfg.synthetic_seed)
    (x_tr, y_tr), (x_te, y_te), vocab, rep = text.load_corpus(path, cfg.max_features)
    for split, labels in (("training", y_tr), ("test", y_te)):
        if len(labels) == 0:  # the readers refuse this too; an empty split fails deep inside JAX
            raise ValueError(f"{path}: no {split} reviews")
    n_val = int(len(y_tr) * cfg.validation_split)
    if n_val == 0 or n_val == len(y_tr):
        raise ValueError(f"{path}: validation_split {cfg.validation_split} of {len(y_tr)} training reviews "
                         f"leaves {n_val} validation and {len(y_tr) - n_val} training reviews; both need one")
    cells = (len(y_tr) + len(y_te)) * cfg.maxlen
    if cells > MAX_PADDED_TOKENS:
        raise ValueError(f"{path}: --maxlen {cfg.maxlen} pads {len(y_tr) + len(y_te)} reviews to {cells} tokens, "
                         f"over {MAX_PADDED_TOKENS} (imdb.MAX_PADDED_TOKENS); lower --maxlen")

    def pad(seqs, labels):
        x, lengths = text.pad_sequences(seqs, cfg.maxlen)
        return x, lengths, np.asarray(labels, np.float32)

    cut = len(y_tr) - n_val
    rep["truncated_train"] = int(sum(len(s) > cfg.maxlen for s in x_tr))
    return {"train": pad(x_tr[:cut], y_tr[:cut]), "val": pad(x_tr[cut:], y_tr[cut:]),
            "test": pad(x_te, y_te), "vocab": vocab, "report": rep, "source": str(path)}
