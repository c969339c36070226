"""A deterministic synthetic review corpus in the ``aclImdb`` layout: the IMDB task's offline default.

A review's label is the sign of the sum of its cue phrases' polarities, negations included
(``synthetic_review``), among neutral filler words.
"""
from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import numpy as np

__all__ = ["POSITIVE", "NEGATIVE", "NEGATORS", "synthetic_review", "write_synthetic_imdb"]

POSITIVE = ("good", "great", "excellent", "wonderful", "brilliant", "superb", "enjoyable", "moving",
            "delightful", "masterpiece", "loved", "funny")
NEGATIVE = ("bad", "awful", "boring", "terrible", "dull", "poor", "worst", "annoying", "mess",
            "waste", "hated", "pointless")
NEGATORS = ("not", "never", "hardly")
_FILLER = ("the", "a", "movie", "film", "plot", "actor", "scene", "story", "director", "and", "of",
           "was", "is", "it", "this", "with", "in", "ending", "music", "camera", "character", "i",
           "think", "really", "quite", "that", "cast", "script", "some", "time", "watch", "saw")
_SYLLABLES = ("ka", "lo", "mi", "re", "tu", "sa", "ven", "dor", "pel", "ix", "qua", "bro", "nim", "zet")


def _filler_words(n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed + 1)
    words = list(_FILLER)
    while len(words) < n:
        w = "".join(rng.choice(_SYLLABLES, size=rng.integers(2, 4)))
        if w not in words and w not in POSITIVE + NEGATIVE + NEGATORS:
            words.append(w)
    return words


def synthetic_review(rng: np.random.Generator, label: int, filler: list[str], mean_len: int):
    """One review whose sentiment is the sign of the sum of its cue phrases' polarities.

    A phrase is a cue word (+1 positive, -1 negative), negated (``not good`` = -1, ``never boring``
    = +1) with probability 0.3. Phrases are drawn with the label's polarity with probability 0.7,
    redrawn until the sum has the label's sign, and placed among Zipf-distributed neutral filler.
    """
    sign = 1 if label else -1
    while True:
        n = int(rng.integers(1, 6))
        pol = np.where(rng.random(n) < 0.7, sign, -sign)
        neg = rng.random(n) < 0.3
        if np.sign(pol.sum()) == sign:
            break
    phrases = []
    for p, ng in zip(pol, neg):
        cue_pol = -p if ng else p
        cue = rng.choice(POSITIVE if cue_pol > 0 else NEGATIVE)
        phrases.append(([str(rng.choice(NEGATORS))] if ng else []) + [str(cue)])
    length = max(n * 3, int(rng.gamma(2.0, mean_len / 2.0)))
    ranks = np.minimum(rng.zipf(1.3, size=length), len(filler)) - 1
    words = [filler[r] for r in ranks]
    for pos, phrase in sorted(zip(rng.integers(0, length + 1, size=n), phrases), key=lambda t: -t[0]):
        words[pos:pos] = phrase
    sentences = [" ".join(words[i:i + 12]).capitalize() + "." for i in range(0, len(words), 12)]
    return " <br /><br />".join(sentences)


def write_synthetic_imdb(root: str | os.PathLike, *, n_train: int = 5000, n_test: int = 5000,
                         mean_len: int = 120, vocab: int = 2000, seed: int = 0) -> Path:
    """Write a deterministic synthetic review corpus in the ``aclImdb`` layout (atomically).

    Half of each split is positive. Files are ``<split>/<pos|neg>/<id>_<rating>.txt`` with ratings
    7-10 (pos) and 1-4 (neg); a few ``train/unsup`` files are written too, which readers ignore.
    Returns ``root``. The same arguments always give byte-identical files.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    filler = _filler_words(vocab, seed)
    tmp = root.with_name(f".{root.name}.tmp-{uuid.uuid4().hex}")
    for split, n in (("train", n_train), ("test", n_test)):
        for label, name in ((1, "pos"), (0, "neg")):
            folder = tmp / split / name
            folder.mkdir(parents=True)
            for i in range(n // 2 if label else n - n // 2):
                rating = int(rng.integers(7, 11) if label else rng.integers(1, 5))
                text = synthetic_review(rng, label, filler, mean_len)
                (folder / f"{i}_{rating}.txt").write_text(text, encoding="utf-8")
    (tmp / "train" / "unsup").mkdir()
    for i in range(3):
        (tmp / "train" / "unsup" / f"{i}_0.txt").write_text(synthetic_review(rng, i % 2, filler, mean_len))
    if root.exists():
        shutil.rmtree(tmp)
        return root  # another process finished first; same arguments give the same files
    root.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, root)
    return root
