"""IMDB-style text data: the two public formats, a tokeniser, Keras's padding, a synthetic corpus.

Token indices follow Keras's ``imdb.load_data``: 0 = padding, 1 = start of review, 2 = out of
vocabulary, and a word of frequency rank ``r`` (1 = most frequent) has index ``r + 3``. Only indices
below ``max_features`` are kept (Keras's ``num_words``), so ranks ``1 .. max_features - 4`` survive.

- ``imdb.npz`` (Keras): keys ``x_train, y_train, x_test, y_test``; the x arrays are ragged object
  arrays of *unshifted* ranks (``load_data`` adds the start token and the shift of 3). It is read by
  ``safe_npz.read_npz``, which runs no pickle code and bounds decompression.
- ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (Maas et al.): one UTF-8 review per file;
  ``train/unsup`` and any other entries are ignored. The vocabulary is built from the training split.

Both readers return reviews in the order ``load_data`` gives: each split shuffled with
``np.random.RandomState(113)`` (train first, then test, from one generator).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections import Counter
from pathlib import Path

import numpy as np

from jena_rnn.data import safe_npz

PAD, START, OOV, INDEX_FROM = 0, 1, 2, 3
KERAS_SEED = 113  # imdb.load_data's shuffling seed
# The longest real IMDB review is about 14 KB and Keras's imdb_word_index.json about 1.6 MB; files
# far beyond that are not reviews or word indices, and reading them whole could exhaust memory.
MAX_REVIEW_BYTES = 8 << 20
MAX_WORD_INDEX_BYTES = 256 << 20
_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case ``text``, drop HTML line breaks and punctuation, return its words in order."""
    return _TOKEN.findall(text.replace("<br />", " ").lower())


def _shuffle(*splits):
    rng = np.random.RandomState(KERAS_SEED)
    out = []
    for seqs, labels in splits:
        idx = np.arange(len(labels))
        rng.shuffle(idx)
        out.append(([seqs[i] for i in idx], np.asarray(labels, np.int32)[idx]))
    return out


def read_review(path: Path) -> str:
    """Return the text of one review file; raise ``ValueError`` naming it if too big, not UTF-8 or empty."""
    size = path.stat().st_size
    if size > MAX_REVIEW_BYTES:
        raise ValueError(f"{path}: {size} bytes, over the {MAX_REVIEW_BYTES} byte cap for one review")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not UTF-8 (byte {e.start}: {raw[e.start:e.start + 1]!r})") from None
    if not text.strip():
        raise ValueError(f"{path}: empty review")
    return text


def read_acl_split(root: str | os.PathLike, split: str, *, skip_empty: bool = False):
    """Read ``root/split/{pos,neg}/*.txt`` in sorted file order.

    Returns:
      (texts, labels [N] int32 with pos = 1, report) where report counts files per label, empty
      reviews skipped (only with ``skip_empty``) and ignored non-``.txt`` entries.
    Raises:
      FileNotFoundError: a missing ``split/pos`` or ``split/neg`` folder (named).
      ValueError: a non-UTF-8 file, or an empty review unless ``skip_empty`` (the file is named); a
      split with no reviews at all (the folder is named).
    """
    texts, labels, report = [], [], {"skipped_empty": [], "ignored": 0}
    for label, name in ((1, "pos"), (0, "neg")):
        folder = Path(root) / split / name
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: missing folder (expected aclImdb/{{train,test}}/{{pos,neg}})")
        files = sorted(folder.iterdir())
        report["ignored"] += sum(1 for p in files if p.suffix != ".txt" or not p.is_file())
        count = 0
        for path in (p for p in files if p.suffix == ".txt" and p.is_file()):
            try:
                texts.append(read_review(path))
            except ValueError as e:
                if not (skip_empty and str(e).endswith("empty review")):
                    raise
                report["skipped_empty"].append(str(path))
                continue
            labels.append(label)
            count += 1
        report[name] = count
    if not labels:
        raise ValueError(f"{Path(root) / split}: no reviews (pos/ and neg/ hold no non-empty .txt files)")
    return texts, np.asarray(labels, np.int32), report


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


def load_acl_imdb(root: str | os.PathLike, max_features: int, *, skip_empty: bool = False):
    """Read an ``aclImdb`` folder and encode it with the training split's vocabulary.

    Returns:
      ((x_train, y_train), (x_test, y_test), vocab, report): x are lists of index lists (``encode``).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    if not (root / "train").is_dir() and not (root / "test").is_dir():
        raise FileNotFoundError(f"{root}: neither an aclImdb folder (train/, test/) nor a folder holding "
                                "aclImdb/ or imdb.npz")
    tr_texts, y_train, tr_rep = read_acl_split(root, "train", skip_empty=skip_empty)
    te_texts, y_test, te_rep = read_acl_split(root, "test", skip_empty=skip_empty)
    tr_tok = [tokenize(t) for t in tr_texts]
    vocab = build_vocab(tr_tok, max_features)
    x_train = [encode(t, vocab) for t in tr_tok]
    x_test = [encode(tokenize(t), vocab) for t in te_texts]
    report = {"format": "aclImdb", "source": str(root), "train": tr_rep, "test": te_rep,
              "distinct_train_words": len({w for t in tr_tok for w in t}), "vocab_size": len(vocab)}
    (train, test) = _shuffle((x_train, y_train), (x_test, y_test))
    return train, test, vocab, report


def _labels(path: Path, name: str, ys: np.ndarray, n: int) -> np.ndarray:
    if ys.ndim != 1 or ys.dtype.kind not in "iu":
        raise ValueError(f"{path}: {name} has dtype {ys.dtype} and shape {ys.shape}; expected 1-D integer 0/1 labels")
    if len(ys) != n:
        raise ValueError(f"{path}: x_{name[2:]} has {n} reviews but {name} has {len(ys)} labels")
    if not np.isin(ys, (0, 1)).all():
        raise ValueError(f"{path}: {name} must hold 0/1 labels, got values {np.unique(ys)[:5].tolist()}")
    return ys.astype(np.int32)


def load_keras_npz(path: str | os.PathLike, max_features: int):
    """Read Keras's ``imdb.npz`` (ragged object arrays of unshifted ranks) as ``load_data`` would.

    The file is read by ``safe_npz.read_npz``: no pickle code runs (the unpickler admits only numpy's
    array pickle) and decompression is bounded.

    Returns:
      ((x_train, y_train), (x_test, y_test), report); x as lists of index lists with the start token,
      the shift of 3 and ``index >= max_features`` mapped to OOV.
    Raises:
      FileNotFoundError / ValueError: naming ``path`` (missing, not a zip, missing keys, a refused or
      corrupt member, bad labels, ranks below 1, an empty split).
    """
    path = Path(path)
    arrays = safe_npz.read_npz(path, numeric=("y_train", "y_test"), ragged=("x_train", "x_test"))
    splits = []
    for name in ("train", "test"):
        xs = arrays[f"x_{name}"]
        if len(xs) == 0:
            raise ValueError(f"{path}: x_{name} holds no reviews")
        ys = _labels(path, f"y_{name}", arrays[f"y_{name}"], len(xs))
        seqs = []
        for i, ranks in enumerate(xs):
            if ranks.size and ranks.min() < 1:
                raise ValueError(f"{path}: x_{name}[{i}] holds rank {ranks.min()}; word ranks start at 1")
            # compare before shifting: rank + 3 would wrap around for ranks near the int64 limit
            seqs.append([START] + np.where(ranks < max_features - INDEX_FROM, ranks + INDEX_FROM, OOV).tolist())
        splits.append((seqs, ys))
    train, test = _shuffle(*splits)
    return train, test, {"format": "keras_npz", "source": str(path),
                         "train": len(train[1]), "test": len(test[1])}


def load_word_index(path: str | os.PathLike) -> dict[str, int]:
    """Read ``imdb_word_index.json`` (word -> unshifted rank >= 1, ranks distinct).

    Raises:
      FileNotFoundError / ValueError: naming ``path`` (missing, over ``MAX_WORD_INDEX_BYTES``, not
      UTF-8, not JSON, not an object of distinct positive integer ranks).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    size = path.stat().st_size
    if size > MAX_WORD_INDEX_BYTES:
        raise ValueError(f"{path}: {size} bytes, over the {MAX_WORD_INDEX_BYTES} byte cap for a word index")
    try:
        index = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ValueError(f"{path}: not a UTF-8 JSON word index ({type(e).__name__}: {e})") from None
    if not isinstance(index, dict):
        raise ValueError(f"{path}: expected a JSON object mapping words to integer ranks, got {type(index).__name__}")
    for word, rank in index.items():
        if type(rank) is not int or rank < 1:
            raise ValueError(f"{path}: word {word!r} has rank {rank!r}; expected an integer >= 1")
    if len(set(index.values())) != len(index):
        dup = Counter(index.values()).most_common(1)[0][0]
        raise ValueError(f"{path}: rank {dup} is given to more than one word")
    return index


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


def load_corpus(path: str | os.PathLike, max_features: int):
    """Dispatch on ``path``: an ``.npz`` file, an ``aclImdb`` folder, or a folder holding either.

    Any regular file is read as an ``.npz`` (``safe_npz``: a file that is not a zip is refused and
    nothing in it runs), whatever its name.

    Returns:
      ((x_train, y_train), (x_test, y_test), vocab or None, report) as the readers above.
    """
    if isinstance(max_features, bool) or not isinstance(max_features, (int, np.integer)) \
            or max_features <= INDEX_FROM + 1:
        raise ValueError(f"max_features must be an integer of at least {INDEX_FROM + 2} (indices 0..3 are "
                         f"padding, start, out-of-vocabulary and unused), got {max_features!r}")
    path = Path(path)
    if path.is_dir() and not (path / "train").is_dir():
        for inner in (path / "aclImdb", path / "imdb.npz"):
            if inner.exists():
                path = inner
                break
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_file():
        train, test, report = load_keras_npz(path, max_features)
        return train, test, None, report
    if not path.is_dir():
        raise ValueError(f"{path}: neither a regular file (.npz) nor a folder (aclImdb)")
    return load_acl_imdb(path, max_features)


# ---------------------------------------------------------------- synthetic corpus
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
