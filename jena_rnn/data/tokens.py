"""Token indices in Keras's ``imdb.load_data`` convention, the tokeniser, the vocabulary and padding.

Indices: 0 = padding, 1 = start of review, 2 = out of vocabulary, and a word of frequency rank ``r``
(1 = most frequent) has index ``r + 3``. Only indices below ``max_features`` are kept (Keras's
``num_words``), so ranks ``1 .. max_features - 4`` survive.
"""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

__all__ = ["PAD", "START", "OOV", "INDEX_FROM", "tokenize", "build_vocab", "encode", "decode", "pad_sequences"]

PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text``, drop HTML line breaks and punctuation, return its words in order."""
    return _TOKEN.findall(text.replace("<br />", " ").lower())


def build_vocab(token_lists, max_features: int) -> dict[str, int]:
    """Map the words of the ``max_features - 4`` highest ranks to their index ``rank + 3``.

    Ranks are by descending count, ties broken alphabetically (deterministic).
    """
    counts = Counter(w for tokens in token_lists for w in tokens)
    ranked = sorted(counts, key=lambda w: (-counts[w], w))[:max(max_features - INDEX_FROM - 1, 0)]
    return {w: r + INDEX_FROM for r, w in enumerate(ranked, start=1)}


def encode(tokens: list[str], vocab: dict[str, int]) -> list[int]:
    """Return ``[START] + [vocab.get(w, OOV) for w in tokens]``."""
    return [START] + [vocab.get(w, OOV) for w in tokens]


def decode(seq, word_index: dict[str, int]) -> str:
    """Turn an index sequence back into words (``word_index`` unshifted; 0/1/2 dropped or ``?``)."""
    inverse = {r + INDEX_FROM: w for w, r in word_index.items()}
    return " ".join(inverse.get(int(i), "?") for i in seq if int(i) not in (PAD, START))


def pad_sequences(seqs, maxlen: int) -> tuple[np.ndarray, np.ndarray]:
    """Pad and truncate at the front, as Keras's ``pad_sequences`` defaults (``padding=truncating='pre'``).

    Returns:
      (x [N, maxlen] int32: the last ``maxlen`` indices of each sequence, right-aligned after zeros;
      lengths [N] int32: the number of real steps, ``min(len(seq), maxlen)``).
    """
    x = np.zeros((len(seqs), maxlen), np.int32)
    lengths = np.zeros((len(seqs),), np.int32)
    for i, s in enumerate(seqs):
        tail = np.asarray(s, np.int32)[len(s) - min(len(s), maxlen):]
        lengths[i] = len(tail)
        if len(tail):
            x[i, maxlen - len(tail):] = tail
    return x, lengths
