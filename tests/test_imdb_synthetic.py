"""The synthetic review corpus: deterministic, and the statistics its docstring and docs/imdb.md promise."""
from collections import Counter

import numpy as np
import pytest

from jena_rnn.data import imdb_synthetic as syn, text

N = 3000  # reviews drawn in memory (well under a second); 3-sigma bounds below use it
SPEC = syn.ReviewSpec()


@pytest.fixture(scope="module")
def corpus():
    reviews = syn.generate_reviews(N, np.random.default_rng(0), SPEC)
    return reviews, [text.tokenize(t) for t in reviews.texts]


def three_sigma(p, n=N):
    return 3 * np.sqrt(p * (1 - p) / n)


def cue_signs(tokens):
    """[(position, effective sign)] of a review's cues, the rule of syn.review_score."""
    return [(i, np.sign(syn.CUE_WEIGHTS[w]) * (-1 if i and tokens[i - 1] in syn.NEGATORS else 1))
            for i, w in enumerate(tokens) if w in syn.CUE_WEIGHTS]


def test_same_seed_same_reviews_other_seed_others():
    a, b, c = (syn.generate_reviews(50, np.random.default_rng(s), SPEC) for s in (1, 1, 2))
    assert a.texts == b.texts and np.array_equal(a.scores, b.scores) and a.texts != c.texts


def test_labels_are_balanced_and_the_score_of_the_text_decides_them_but_for_the_flipped(corpus):
    r, toks = corpus
    assert r.labels.tolist() == [1] * (N // 2) + [0] * (N - N // 2)
    np.testing.assert_allclose(r.scores, [syn.review_score(t) for t in toks], atol=1e-9)
    assert np.array_equal(r.labels == 1, (r.scores > 0) ^ r.flipped)
    assert abs(r.flipped.mean() - SPEC.noise) < three_sigma(SPEC.noise)
    assert abs(r.mixed.mean() - SPEC.mixed) < three_sigma(SPEC.mixed)


def test_lengths_are_long_tailed_like_imdb(corpus):
    r, toks = corpus
    assert [len(t) for t in toks] == r.lengths.tolist()  # the reader sees every drawn word, nothing else
    median = SPEC.mean_len * np.exp(-SPEC.len_sigma ** 2 / 2)  # the log-normal's median
    assert abs(np.median(r.lengths) - median) < 0.06 * median
    assert abs(r.lengths.mean() - SPEC.mean_len) < 0.06 * SPEC.mean_len
    assert 0.06 < np.mean(r.lengths > 500) < 0.13  # so maxlen=500 truncates (the log-normal's: 0.09)


def test_the_vocabulary_exceeds_num_words_with_a_zipf_tail(corpus):
    _, toks = corpus
    counts = sorted(Counter(w for t in toks for w in t).values(), reverse=True)
    assert len(counts) > 10_000
    oov = 1 - sum(counts[:10_000 - 4]) / sum(counts)  # what Keras's num_words=10000 drops
    assert 0.02 < oov < 0.12
    assert counts[0] > 50 * counts[999]  # Zipf(1): rank 1 is about 1000 times rank 1000; a flat law fails


def test_every_cue_word_is_common_enough_to_be_learned(corpus):
    _, toks = corpus
    ranked = [w for w, _ in Counter(w for t in toks for w in t).most_common(10_000 - 4)]  # Keras's num_words
    # the label should rest on words a model sees often: a large rare weak tier (v2's 400 words per polarity)
    # put cues outside num_words or a few times in a whole corpus
    assert set(syn.CUE_WEIGHTS) <= set(ranked)
    counts = Counter(w for t in toks for w in t if w in syn.CUE_WEIGHTS)
    assert min(counts.values()) >= 10  # in 3,000 reviews; the rarest weak cue is drawn about 20 times


def test_cues_are_spread_through_the_review_and_denser_in_a_verdict(corpus):
    _, toks = corpus
    long_ = [t for t in toks if len(t) > 500]
    assert np.mean([any(i < 100 for i, _ in cue_signs(t)) for t in long_]) > 0.95
    positions = np.concatenate([[i / len(t) for i, _ in cue_signs(t)] for t in toks])
    assert 0.3 < np.mean(positions < 0.5) < 0.5  # spread, a little later on average (the verdicts)
    tail = [len(cue_signs(t[-SPEC.verdict_len:])) / SPEC.verdict_len for t in toks if len(t) > 100]
    body = [len(cue_signs(t[:-SPEC.verdict_len])) / (len(t) - SPEC.verdict_len) for t in toks if len(t) > 100]
    # verdicts: half the reviews, 0.3 instead of 0.1, so about twice the density on average
    assert np.mean(tail) > 1.5 * np.mean(body)


def test_mixed_reviews_hold_more_cues_against_their_label_and_negation_is_common(corpus):
    r, toks = corpus
    against = np.asarray([np.mean([s != (1 if y else -1) for _, s in cue_signs(t)])
                          for t, y in zip(toks, r.labels ^ r.flipped)])
    assert against[r.mixed].mean() > against[~r.mixed].mean() + 0.1
    negated = np.mean([i > 0 and t[i - 1] in syn.NEGATORS for t in toks for i, _ in cue_signs(t)])
    assert abs(negated - SPEC.negation) < 0.05  # plus the few cues that follow a negator used as filler


def test_an_oracle_that_knows_the_weights_scores_one_minus_the_noise(corpus):
    r, toks = corpus
    oracle = np.asarray([syn.review_score(t) > 0 for t in toks])
    assert abs(np.mean(oracle == r.labels) - (1 - SPEC.noise)) < three_sigma(SPEC.noise)
    short = np.asarray([syn.review_score(t[-SPEC.verdict_len:]) > 0 for t in toks])
    assert np.mean(short == r.labels) < np.mean(oracle == r.labels) - 0.08  # the verdict alone is not enough
    # reviews are redundant (clear_agree): the last 120 words (about a dozen cues) nearly always give the label
    # the whole review gives, which is what an LSTM reading the end of a review can exploit
    part = np.asarray([syn.review_score(t[-120:]) > 0 for t in toks])
    assert np.mean(part == r.labels) > np.mean(oracle == r.labels) - 0.03


def test_a_bad_spec_is_refused():
    with pytest.raises(ValueError, match="ReviewSpec: vocab must be >= 1"):
        syn.ReviewSpec(vocab=0)
