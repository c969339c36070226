"""Read IMDB reviews in the two public formats, in the order Keras's ``imdb.load_data`` gives them.

- ``imdb.npz`` (Keras): keys ``x_train, y_train, x_test, y_test``; the x arrays are ragged object
  arrays of *unshifted* ranks (``load_data`` adds the start token and the shift of 3: ``tokens``). It is
  read by ``safe_npz.read_npz``, which runs no pickle code and bounds decompression.
- ``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt`` (Maas et al.): one UTF-8 review per file;
  ``train/unsup`` and any other entries are ignored. The vocabulary is built from the training split.

Both readers return reviews in the order ``load_data`` gives: each split shuffled with
``np.random.RandomState(113)`` (train first, then test, from one generator).
"""
from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from jena_rnn.data import safe_npz
from jena_rnn.data.tokens import INDEX_FROM, OOV, START, build_vocab, encode, tokenize

__all__ = ["KERAS_SEED", "MAX_REVIEW_BYTES", "MAX_WORD_INDEX_BYTES", "read_review", "read_acl_split",
           "load_acl_imdb", "load_keras_npz", "load_word_index", "load_corpus"]

KERAS_SEED = 113  # imdb.load_data's shuffling seed
# The longest real IMDB review is about 14 KB and Keras's imdb_word_index.json about 1.6 MB; files
# far beyond that are not reviews or word indices, and reading them whole could exhaust memory.
MAX_REVIEW_BYTES = 8 << 20
MAX_WORD_INDEX_BYTES = 256 << 20


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
