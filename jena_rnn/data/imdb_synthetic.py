"""A deterministic synthetic review corpus in the ``aclImdb`` layout: the IMDB task's offline default.

It is built to be about as hard as the real reviews, not to be solved. ``ReviewSpec`` holds the knobs
(defaults in brackets; docs/imdb.md, "Synthetic corpus", gives the account and the resulting curve):

- Words: ``vocab`` [20,000] neutral words (80 English function words, then three-syllable pseudo-words)
  drawn by a Zipf law ``p(rank r) ∝ r^-zipf_s`` [1.0], plus 280 cue words, so Keras's ``num_words=10000``
  drops a few % of the tokens (rare filler), as on IMDB. Lengths are log-normal with mean ``mean_len`` [238]
  and sigma ``len_sigma`` [0.8]: median ``mean_len * exp(-sigma²/2)``, about 9 % over 500 words.
- Cues: each word is a cue with probability ``cue_rate`` [0.1] (at least one per review) at uniform
  positions, so cues spread over the whole review; a ``verdict`` [0.5] share of reviews ends in
  ``verdict_len`` [15] words whose cue probability is ``verdict_rate`` [0.3]. A cue is strong, moderate or
  weak with ``tier_shares`` [0.3, 0.35, 0.35]; the tiers hold 16, 24 and 100 words per polarity (English,
  English, pseudo-words), Zipf-drawn within the tier, each with a fixed weight ``±{2.5, 1.0, 0.3} * U(0.7,
  1.3)`` (``CUE_WEIGHTS``). The weak tier is small enough that each of its words occurs a few hundred times
  in 25,000 reviews and ranks inside ``num_words``: the label depends on words a model can learn.
- Negation: with probability ``negation`` [0.2] the word before a cue becomes a negator (``NEGATORS``); a
  cue right after a negator counts with the opposite sign. Negators also occur as filler.
- Mixed reviews: a review has an opinion (±1, even odds); its cues mean that opinion (after negation) with
  probability ``clear_agree`` [0.95], or ``mixed_agree`` [0.65] in a ``mixed`` [0.2] share of reviews. Most
  reviews are thus redundant, as real ones are: a partial read (the last hundred words) usually gives the
  label, which is what lets an LSTM(32) reading the end of a review get near the lecture's accuracy.
- Labels: ``score = Σ_cues sign * weight``, read off the final text (``review_score``, the one rule); the
  clean label is ``score > 0``, then a ``noise`` [0.05] share of labels is flipped, so an oracle knowing
  the weights scores about ``1 - noise``, which caps any model.

Each split is drawn in chunks until it holds ``n // 2`` positive and ``n - n // 2`` negative reviews (the first
of each, in order). Everything is vectorised over all tokens with numpy and driven by one seeded generator.
"""
from __future__ import annotations

import functools
import os
import shutil
import uuid
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = ["POSITIVE", "NEGATIVE", "NEGATORS", "CUE_WEIGHTS", "ReviewSpec", "Reviews", "generate_reviews",
           "review_score", "synthetic_review", "write_synthetic_imdb"]

POSITIVE = ("great", "excellent", "wonderful", "brilliant", "superb", "masterpiece", "loved", "perfect",
            "beautiful", "amazing", "outstanding", "fantastic", "superbly", "gem", "flawless", "touching")
NEGATIVE = ("awful", "terrible", "boring", "worst", "waste", "horrible", "pointless", "dreadful", "hated",
            "stupid", "mess", "lame", "garbage", "unwatchable", "pathetic", "laughable")
_MODERATE_POS = ("good", "enjoyable", "fun", "nice", "funny", "moving", "charming", "solid", "clever", "fine",
                 "recommend", "enjoyed", "liked", "strong", "fresh", "delightful", "witty", "warm", "gripping",
                 "engaging", "worth", "memorable", "pleasant", "impressive")
_MODERATE_NEG = ("bad", "dull", "poor", "weak", "silly", "annoying", "slow", "predictable", "bland", "cheap",
                 "disappointing", "forgettable", "tedious", "flat", "clumsy", "messy", "overlong", "shallow",
                 "wooden", "awkward", "confusing", "unfunny", "sloppy", "tired")
NEGATORS = ("not", "never", "hardly")
_ENGLISH = ("the", "a", "and", "of", "to", "is", "it", "in", "i", "this", "that", "was", "as", "with", "for",
            "movie", "but", "film", "on", "not", "you", "he", "are", "his", "have", "be", "one", "all", "at",
            "they", "by", "an", "who", "so", "from", "like", "her", "or", "just", "about", "out", "has", "if",
            "what", "some", "there", "can", "more", "when", "very", "up", "no", "time", "she", "even", "my",
            "would", "which", "story", "only", "really", "see", "their", "had", "we", "were", "me", "never",
            "plot", "acting", "scene", "cast", "director", "ending", "music", "character", "script", "hardly")
_CONSONANTS, _VOWELS = "bdfgklmnprstvz", "aeiou"
_WEAK = 100  # weak cue words per polarity: few enough that each is frequent, so learnable
_TIERS = ((POSITIVE, NEGATIVE, 2.5), (_MODERATE_POS, _MODERATE_NEG, 1.0), (_WEAK, _WEAK, 0.3))  # words, |weight|


@dataclass(frozen=True, kw_only=True)
class ReviewSpec:
    """How reviews are drawn (module docstring); the defaults are the calibrated corpus."""

    mean_len: float = 238.0  # mean words per review (log-normal; IMDB's is about 230)
    len_sigma: float = 0.8  # log-normal sigma of the length
    vocab: int = 20_000  # neutral words (the negators among them)
    zipf_s: float = 1.0  # Zipf exponent of the neutral words and of the words within a cue tier
    cue_rate: float = 0.1  # probability that a token is a cue (at least one per review)
    verdict: float = 0.5  # share of reviews that end with a verdict: their last verdict_len words are denser in cues
    verdict_len: int = 15  # words in a verdict
    verdict_rate: float = 0.3  # probability that a word of a verdict is a cue
    tier_shares: tuple = (0.3, 0.35, 0.35)  # probability that a cue is strong, moderate, weak
    negation: float = 0.2  # probability that a cue is preceded by a negator (which flips it)
    mixed: float = 0.2  # share of mixed reviews
    clear_agree: float = 0.95  # probability that a clear review's cue has the review's opinion
    mixed_agree: float = 0.65  # the same in a mixed review (cues on both sides)
    noise: float = 0.05  # share of labels flipped after the score decides them

    def __post_init__(self) -> None:
        if self.vocab < 1 or not self.mean_len >= 2:
            raise ValueError(f"ReviewSpec: vocab must be >= 1 and mean_len >= 2, "
                             f"got {self.vocab}, {self.mean_len}")


class Reviews(NamedTuple):
    """Drawn reviews: ``texts`` (N strings), ``labels`` [N] int32 (1 = pos), ``scores`` [N] float (the text's
    ``review_score``), ``mixed`` [N] bool, ``flipped`` [N] bool (label noise), ``lengths`` [N] words."""

    texts: list
    labels: np.ndarray
    scores: np.ndarray
    mixed: np.ndarray
    flipped: np.ndarray
    lengths: np.ndarray


@functools.lru_cache(maxsize=4)
def _lexicon(vocab: int):
    """Return (words [W] object, weights [W], is_negator [W], neutral_ids [vocab], tier_offsets [3, 2]).

    Ids: the cue tiers (positive then negative words of each), the negators, the other neutral words.
    Pseudo-words (three consonant-vowel syllables, a fixed permutation) are the same whatever the seed.
    """
    syl = [c + v for c in _CONSONANTS for v in _VOWELS]
    taken = set(POSITIVE + NEGATIVE + _MODERATE_POS + _MODERATE_NEG + NEGATORS + _ENGLISH)
    need = 2 * _WEAK + max(vocab - len(_ENGLISH), 0)
    pseudo = [w for w in (syl[k // 4900] + syl[k // 70 % 70] + syl[k % 70]
                          for k in np.random.default_rng(2024).permutation(70 ** 3)[:need + 100]) if w not in taken]
    groups = [POSITIVE, NEGATIVE, _MODERATE_POS, _MODERATE_NEG, pseudo[:_WEAK], pseudo[_WEAK:2 * _WEAK]]
    sizes = np.asarray([len(g) for g in groups])
    offsets = (np.cumsum(sizes) - sizes).reshape(3, 2)
    signed = np.repeat([s * t[2] for t in _TIERS for s in (1.0, -1.0)], sizes)
    cues = signed * np.random.default_rng(7).uniform(0.7, 1.3, len(signed))  # each word its own weight
    neutral = (list(_ENGLISH) + pseudo[2 * _WEAK:])[:vocab]
    others = [w for w in neutral if w not in NEGATORS]
    words = [w for g in groups for w in g] + list(NEGATORS) + others
    index = {w: i for i, w in enumerate(words)}
    weights = np.concatenate([cues, np.zeros(len(words) - len(cues))])
    is_neg = np.zeros(len(words), bool)
    is_neg[len(cues):len(cues) + len(NEGATORS)] = True
    return np.asarray(words, object), weights, is_neg, np.asarray([index[w] for w in neutral]), offsets


CUE_WEIGHTS = {str(w): float(x) for w, x in zip(*_lexicon(len(_ENGLISH))[:2]) if x}


def review_score(tokens, weights: dict | None = None) -> float:
    """Return ``Σ_cues s * weight(cue)``, ``s = -1`` when the token right before the cue is a negator, else 1.

    Args:
      tokens: one review's words (``tokenize``). weights: word -> weight (default ``CUE_WEIGHTS``).
    """
    weights = CUE_WEIGHTS if weights is None else weights
    total, prev = 0.0, ""
    for w in tokens:
        if w in weights:
            total += -weights[w] if prev in NEGATORS else weights[w]
        prev = w
    return total


def _zipf(rng: np.random.Generator, size: int, n: int, s: float) -> np.ndarray:
    cdf = np.cumsum(np.arange(1, n + 1, dtype=float) ** -s)
    return np.minimum(np.searchsorted(cdf / cdf[-1], rng.random(size), side="right"), n - 1)


def _draw(rng: np.random.Generator, n: int, spec: ReviewSpec) -> Reviews:
    """Draw ``n`` reviews (labels unbalanced); every step is over all tokens at once."""
    words, weights, is_neg, neutral_ids, offsets = _lexicon(spec.vocab)
    median = np.log(spec.mean_len) - spec.len_sigma ** 2 / 2
    lengths = np.clip(np.rint(rng.lognormal(median, spec.len_sigma, n)), 2, 20 * spec.mean_len).astype(np.int64)
    start = np.cumsum(lengths) - lengths
    rev = np.repeat(np.arange(n), lengths)
    pos = np.arange(len(rev)) - start[rev]
    ids = neutral_ids[_zipf(rng, len(rev), spec.vocab, spec.zipf_s)]
    verdict = (rng.random(n) < spec.verdict)[rev] & (pos >= lengths[rev] - spec.verdict_len)
    cue = rng.random(len(rev)) < np.where(verdict, spec.verdict_rate, spec.cue_rate)
    bare = np.flatnonzero(np.bincount(rev[cue], minlength=n) == 0)
    cue[start[bare] + (rng.random(len(bare)) * lengths[bare]).astype(np.int64)] = True
    k = np.flatnonzero(cue)
    opinion = np.where(rng.random(n) < 0.5, 1, -1)
    mixed = rng.random(n) < spec.mixed
    agree = np.where(mixed, spec.mixed_agree, spec.clear_agree)[rev[k]]
    polarity = opinion[rev[k]] * np.where(rng.random(len(k)) < agree, 1, -1)  # what the cue means in context
    negated = (rng.random(len(k)) < spec.negation) & (pos[k] > 0) & ~cue[np.maximum(k - 1, 0)]
    surface_neg = np.where(negated, -polarity, polarity) < 0  # the word's own polarity
    tier = np.minimum(np.searchsorted(np.cumsum(spec.tier_shares), rng.random(len(k)), side="right"), 2)
    for t, (pos_words, _, _) in enumerate(_TIERS):
        sel = np.flatnonzero(tier == t)
        size = _WEAK if isinstance(pos_words, int) else len(pos_words)
        ids[k[sel]] = offsets[t, surface_neg[sel].astype(int)] + _zipf(rng, len(sel), size, spec.zipf_s)
    first_negator = int(np.flatnonzero(is_neg)[0])
    ids[k[negated] - 1] = first_negator + rng.integers(0, len(NEGATORS), int(negated.sum()))
    flip = np.zeros(len(rev), bool)  # review_score's rule, on the final text: a negator right before
    flip[1:] = is_neg[ids[:-1]] & (pos[1:] > 0)
    scores = np.bincount(rev, weights[ids] * np.where(flip, -1.0, 1.0), minlength=n)
    flipped = rng.random(n) < spec.noise
    labels = ((scores > 0) ^ flipped).astype(np.int32)
    tokens = words[ids]
    ends = (pos % 12 == 11) | (pos == lengths[rev] - 1)
    tokens[ends] = tokens[ends] + "."
    breaks = pos % 60 == 59
    tokens[breaks] = tokens[breaks] + " <br /><br />"
    texts = [" ".join(tokens[a:a + m]).capitalize() for a, m in zip(start.tolist(), lengths.tolist())]
    return Reviews(texts, labels, scores, mixed, flipped, lengths)


def generate_reviews(n: int, rng: np.random.Generator, spec: ReviewSpec = ReviewSpec()) -> Reviews:
    """Draw ``n`` reviews, ``n // 2`` positive first, then ``n - n // 2`` negative (the first drawn of each)."""
    want = (n // 2, n - n // 2)
    parts, have = [], np.zeros(2, int)
    while (have < want).any():
        parts.append(_draw(rng, n + n // 8 + 64, spec))
        have += np.bincount(1 - parts[-1].labels, minlength=2)
    texts = [t for p in parts for t in p.texts]
    cat = [np.concatenate(a) for a in zip(*(p[1:] for p in parts))]
    idx = np.concatenate([np.flatnonzero(cat[0] == 1)[:want[0]], np.flatnonzero(cat[0] == 0)[:want[1]]])
    return Reviews([texts[i] for i in idx], *(a[idx] for a in cat))


def synthetic_review(rng: np.random.Generator, label: int, spec: ReviewSpec = ReviewSpec()) -> str:
    """Return one review text whose (noisy) label is ``label``."""
    r = generate_reviews(2, rng, spec)
    return r.texts[0 if label else 1]


def write_synthetic_imdb(root: str | os.PathLike, *, n_train: int = 5000, n_test: int = 5000,
                         mean_len: float | None = None, vocab: int | None = None, seed: int = 0,
                         spec: ReviewSpec | None = None) -> Path:
    """Write a deterministic synthetic review corpus in the ``aclImdb`` layout (atomically).

    Half of each split is positive (``generate_reviews``). Files are ``<split>/<pos|neg>/<id>_<rating>.txt``
    with ratings 7-10 (pos) and 1-4 (neg); three ``train/unsup`` files are written too, which readers
    ignore. ``mean_len`` and ``vocab`` override ``spec``'s (default ``ReviewSpec()``). Returns ``root``.
    The same arguments always give byte-identical files.
    """
    spec = spec or ReviewSpec()
    spec = replace(spec, mean_len=spec.mean_len if mean_len is None else mean_len,
                   vocab=spec.vocab if vocab is None else vocab)
    root = Path(root)
    rng = np.random.default_rng(seed)
    tmp = root.with_name(f".{root.name}.tmp-{uuid.uuid4().hex}")
    for split, n in (("train", n_train), ("test", n_test)):
        reviews = generate_reviews(n, rng, spec)
        ratings = np.where(reviews.labels == 1, rng.integers(7, 11, n), rng.integers(1, 5, n))
        counter = {1: 0, 0: 0}
        for label in (1, 0):
            (tmp / split / ("pos" if label else "neg")).mkdir(parents=True)
        for text, label, rating in zip(reviews.texts, reviews.labels.tolist(), ratings.tolist()):
            name = f"{split}/{'pos' if label else 'neg'}/{counter[label]}_{rating}.txt"
            counter[label] += 1
            (tmp / name).write_text(text, encoding="utf-8")
    (tmp / "train" / "unsup").mkdir()
    for i, text in enumerate(generate_reviews(3, rng, spec).texts):
        (tmp / "train" / "unsup" / f"{i}_0.txt").write_text(text, encoding="utf-8")
    if root.exists():
        shutil.rmtree(tmp)
        return root  # another process finished first; same arguments give the same files
    root.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, root)
    return root
