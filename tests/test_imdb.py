"""IMDB: the two readers and their errors, Keras padding, masking, the loss, and learning on synthetic reviews."""
import json
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jena_rnn import cli, imdb
from jena_rnn.nn import rnn
from jena_rnn.data import imdb_synthetic as syn, text
from jena_rnn.config import LayerConfig, OptimConfig


def write_reviews(root, split, reviews):
    """reviews: {"pos": [bytes|str, ...], "neg": [...]} -> root/split/<label>/<i>_<rating>.txt"""
    for label, items in reviews.items():
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for i, body in enumerate(items):
            path = folder / f"{i}_{8 if label == 'pos' else 2}.txt"
            path.write_bytes(body if isinstance(body, bytes) else body.encode())


@pytest.fixture
def acl(tmp_path):
    root = tmp_path / "aclImdb"
    write_reviews(root, "train", {"pos": ["Great film, great cast!", "A <br />good plot."],
                                  "neg": ["Bad, bad, BAD film.", "Dull plot"]})
    write_reviews(root, "test", {"pos": ["great unknownword"], "neg": ["bad"]})
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0_0.txt").write_text("ignored review")
    (root / "train" / "pos" / "notes.md").write_text("not a review")
    return root


def test_tokenize():
    assert text.tokenize("It's GREAT.<br />Not bad, 10/10!") == ["it's", "great", "not", "bad", "10", "10"]


def test_acl_reader(acl):
    (x_tr, y_tr), (x_te, y_te), vocab, rep = text.load_acl_imdb(acl, max_features=7)
    # counts: bad 3, film 2, great 2, plot 2, then a 1, cast 1, ... ; ties alphabetical; 7 - 4 = 3 words kept
    assert vocab == {"bad": 4, "film": 5, "great": 6}
    assert rep["train"] == {"skipped_empty": [], "ignored": 1, "pos": 2, "neg": 2}
    assert sorted(map(tuple, x_tr)) == sorted([(1, 6, 5, 6, 2), (1, 2, 2, 2), (1, 4, 4, 4, 5), (1, 2, 2)])
    assert sorted(zip(map(tuple, x_te), y_te.tolist())) == [((1, 4), 0), ((1, 6, 2), 1)]
    # Keras's load_data order: RandomState(113) shuffles train, then test, from one generator
    idx = np.arange(4)
    np.random.RandomState(113).shuffle(idx)
    assert y_tr.tolist() == [[1, 1, 0, 0][i] for i in idx]


@pytest.mark.parametrize("body, message", [(b"caf\xe9 au lait", "not UTF-8"), (b"  \n", "empty review")])
def test_acl_bad_file_is_named(acl, body, message):
    (acl / "train" / "neg" / "9_1.txt").write_bytes(body)
    with pytest.raises(ValueError, match=rf"9_1\.txt: {message}"):
        text.load_acl_imdb(acl, 100)


def test_acl_skip_empty_is_counted(acl):
    (acl / "train" / "neg" / "9_1.txt").write_text("")
    _, _, _, rep = text.load_acl_imdb(acl, 100, skip_empty=True)
    assert rep["train"]["neg"] == 2 and rep["train"]["skipped_empty"][0].endswith("9_1.txt")


def test_missing_folders_are_named(tmp_path, acl):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        text.load_corpus(tmp_path / "nowhere", 100)
    for p in (acl / "test" / "neg").iterdir():
        p.unlink()
    (acl / "test" / "neg").rmdir()
    with pytest.raises(FileNotFoundError, match=r"test/neg: missing folder"):
        text.load_corpus(acl, 100)


def ragged(*seqs):
    out = np.empty(len(seqs), dtype=object)
    for i, s in enumerate(seqs):
        out[i] = list(s)
    return out


def test_keras_npz_reader(tmp_path):
    path = tmp_path / "imdb.npz"
    np.savez(path, x_train=ragged([1, 5, 9], [], [2]), y_train=np.array([1, 0, 1]),
             x_test=ragged([7, 3]), y_test=np.array([0]))
    (x_tr, y_tr), (x_te, y_te), vocab, rep = text.load_corpus(tmp_path, max_features=10)
    assert vocab is None and rep["format"] == "keras_npz"
    # load_data: [start] + [rank + 3], indices >= num_words -> OOV (2); shuffled with RandomState(113)
    expect = [[1, 4, 8, 2], [1], [1, 5]]
    idx = np.arange(3)
    rs = np.random.RandomState(113)
    rs.shuffle(idx)
    assert x_tr == [expect[i] for i in idx] and y_tr.tolist() == [[1, 0, 1][i] for i in idx]
    assert x_te == [[1, 2, 6]] and y_te.tolist() == [0]


def test_keras_npz_errors_name_the_file(tmp_path):
    bad = tmp_path / "corrupt.npz"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(ValueError, match="corrupt.npz"):
        text.load_keras_npz(bad, 100)
    good = tmp_path / "partial.npz"
    np.savez(good, x_train=ragged([1]), y_train=np.array([1]))
    with pytest.raises(ValueError, match=r"partial.npz: missing arrays \['x_test', 'y_test'\]"):
        text.load_keras_npz(good, 100)
    truncated = tmp_path / "truncated.npz"
    np.savez(truncated, x_train=ragged([1]), y_train=np.array([1]), x_test=ragged([1]), y_test=np.array([1]))
    truncated.write_bytes(truncated.read_bytes()[:60])
    with pytest.raises(ValueError, match="truncated.npz"):
        text.load_keras_npz(truncated, 100)
    mismatch = tmp_path / "mismatch.npz"
    np.savez(mismatch, x_train=ragged([1], [2]), y_train=np.array([1]), x_test=ragged([1]), y_test=np.array([1]))
    with pytest.raises(ValueError, match="mismatch.npz: x_train has 2 reviews but y_train has 1"):
        text.load_keras_npz(mismatch, 100)
    assert zipfile.is_zipfile(mismatch)


def test_word_index_decode(tmp_path):
    path = tmp_path / "imdb_word_index.json"
    path.write_text(json.dumps({"the": 1, "film": 2}))
    assert text.decode([0, 0, 1, 4, 5, 2], text.load_word_index(path)) == "the film ?"
    path.write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="imdb_word_index.json"):
        text.load_word_index(path)


def slow_pad(seqs, maxlen):
    """Keras pad_sequences(padding='pre', truncating='pre'), one element at a time."""
    x = [[0] * maxlen for _ in seqs]
    for i, s in enumerate(seqs):
        kept = list(s)[-maxlen:] if len(s) > maxlen else list(s)
        for j, v in enumerate(reversed(kept)):
            x[i][maxlen - 1 - j] = v
    return np.array(x), np.array([min(len(s), maxlen) for s in seqs])


def test_pad_sequences_matches_keras_semantics(rng):
    seqs = [list(rng.integers(1, 50, size=n)) for n in (0, 1, 4, 5, 6, 13)]
    x, lengths = text.pad_sequences(seqs, 5)
    rx, rl = slow_pad(seqs, 5)
    np.testing.assert_array_equal(x, rx)
    np.testing.assert_array_equal(lengths, rl)
    assert x.dtype == np.int32 and x.shape == (6, 5)


@pytest.mark.parametrize("cell, bidirectional", [("lstm", False), ("lstm", True), ("gru", False)])
def test_padding_does_not_change_the_state(cell, bidirectional):
    cfg = imdb.IMDBConfig(max_features=30, maxlen=9, embed_dim=3,
                          layers=(LayerConfig(cell=cell, units=5, bidirectional=bidirectional),))
    params = imdb.init_classifier(jax.random.PRNGKey(1), cfg)
    seq = [1, 7, 3, 22, 9]
    x, lengths = text.pad_sequences([seq], cfg.maxlen)
    padded = imdb.apply_classifier(cfg, params, jnp.asarray(x), jnp.asarray(lengths))
    bare = imdb.apply_classifier(cfg, params, jnp.asarray([seq]), jnp.asarray([len(seq)]))
    np.testing.assert_allclose(padded, bare, rtol=1e-6, atol=1e-6)
    if not bidirectional:  # and equal to the raw LSTM/GRU run on the embedded review, no masking at all
        h = rnn.stack(cfg.layers, params["layers"], params["embedding"][jnp.asarray([seq])])
        np.testing.assert_allclose(padded, h @ params["head"]["w"][:, 0] + params["head"]["b"], rtol=1e-5)
    unmasked = rnn.stack(cfg.layers, params["layers"], params["embedding"][jnp.asarray(x)])
    assert not np.allclose(unmasked @ params["head"]["w"][:, 0] + params["head"]["b"], padded)


def test_bce_with_logits_matches_numpy_and_is_stable():
    z = np.array([-3.0, -0.5, 0.0, 0.7, 4.0], np.float32)
    y = np.array([0.0, 1.0, 1.0, 0.0, 1.0], np.float32)
    p = 1.0 / (1.0 + np.exp(-z.astype(np.float64)))
    ref = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    np.testing.assert_allclose(imdb.bce_with_logits(jnp.asarray(z), jnp.asarray(y)), ref, rtol=1e-6)
    big = jnp.asarray([100.0, -100.0, 100.0, -100.0])
    lab = jnp.asarray([0.0, 1.0, 1.0, 0.0])
    per = [float(imdb.bce_with_logits(big[i:i + 1], lab[i:i + 1])) for i in range(4)]
    np.testing.assert_allclose(per, [100.0, 100.0, 0.0, 0.0], atol=1e-6)  # exact: 100 + log1p(e^-100)
    grad = jax.grad(lambda z_: imdb.bce_with_logits(z_, lab))(big)
    np.testing.assert_allclose(grad, [0.25, -0.25, 0.0, 0.0], atol=1e-7)  # (σ(z) - y) / B
    with pytest.raises(ValueError, match=r"logits have shape \(4, 1\) but y \(4,\)"):
        imdb.bce_with_logits(big[:, None], lab)
    assert float(imdb.accuracy(jnp.asarray([2.0, -1.0, 0.5]), jnp.asarray([1.0, 1.0, 0.0]))) == pytest.approx(1 / 3)
    # the weighted count that training and evaluation add up: right, wrong (weight 2), wrong, right (weight 0)
    w = jnp.asarray([1.0, 2.0, 1.0, 0.0])
    assert float(imdb.correct(jnp.asarray([2.0, -1.0, 0.5, -3.0]), jnp.asarray([1.0, 1.0, 0.0, 0.0]), w)) == 1.0


def polarity(tokens):
    """The generator's rule, re-derived from the text: sum of cue weights, a negator right before a cue flips it."""
    total, prev = 0.0, ""
    for w in tokens:
        if w in syn.CUE_WEIGHTS:
            total += syn.CUE_WEIGHTS[w] * (-1 if prev in text.NEGATORS else 1)
        prev = w
    return total


def test_synthetic_corpus_is_deterministic_and_consistent(tmp_path):
    noiseless = syn.ReviewSpec(noise=0.0)  # without label noise the label is exactly the sign of the score
    a = text.write_synthetic_imdb(tmp_path / "a", n_train=40, n_test=10, seed=3, spec=noiseless)
    b = text.write_synthetic_imdb(tmp_path / "b", n_train=40, n_test=10, seed=3, spec=noiseless)
    files = sorted(p.relative_to(a) for p in a.rglob("*.txt"))
    assert files == sorted(p.relative_to(b) for p in b.rglob("*.txt")) and len(files) == 53
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    texts, labels, _ = text.read_acl_split(a, "train")
    assert labels.tolist() == [1] * 20 + [0] * 20
    assert all(np.sign(polarity(text.tokenize(t))) == (1 if y else -1) for t, y in zip(texts, labels))
    assert any("not" in t.lower().split() or "never" in t.lower().split() for t in texts)
    assert all(polarity(text.tokenize(t)) == pytest.approx(syn.review_score(text.tokenize(t))) for t in texts)


def test_synthetic_labels_carry_the_configured_noise(tmp_path):
    root = text.write_synthetic_imdb(tmp_path / "aclImdb", n_train=1000, n_test=10, seed=5)
    texts, labels, _ = text.read_acl_split(root, "train")
    oracle = np.asarray([polarity(text.tokenize(t)) > 0 for t in texts])
    # an oracle that knows every weight is wrong on the flipped labels only: 1 - noise (0.05), 3 sigma
    assert abs(np.mean(oracle == labels) - (1 - syn.ReviewSpec().noise)) < 3 * np.sqrt(0.05 * 0.95 / 1000)


def test_training_learns_synthetic_sentiment(tmp_path):
    root = text.write_synthetic_imdb(tmp_path / "aclImdb", n_train=4000, n_test=1000, mean_len=30, vocab=300)
    cfg = imdb.IMDBConfig(data=str(root), max_features=400, maxlen=64, embed_dim=16, epochs=10, batch_size=32,
                          layers=(LayerConfig(cell="lstm", units=16),), optim=OptimConfig(learning_rate=3e-3))
    splits = imdb.prepare(cfg)
    assert [len(splits[s][2]) for s in ("train", "val", "test")] == [3200, 800, 1000]
    state, history = imdb.fit(cfg, splits, log=None)
    test = tuple(jnp.asarray(a) for a in splits["test"])
    _, acc = imdb.make_evaluate(cfg, len(test[2]))(state.params, *test)
    assert float(acc) >= 0.75, history[-1]  # chance is 0.5; measured 0.823 (last val 0.845) on corpus v3 (docs/imdb.md)
    assert history[-1]["val_acc"] >= 0.75


def test_cli_run_and_resume(tmp_path, capsys):
    root = text.write_synthetic_imdb(tmp_path / "aclImdb", n_train=200, n_test=50, mean_len=15, vocab=50)
    flags = ["imdb", "--data", str(root), "--max-features", "60", "--maxlen", "20", "--units", "4",
             "--batch-size", "32", "--quiet"]

    def run(*extra):
        assert cli.main([*flags, *extra]) == 0
        return json.loads(capsys.readouterr().out)

    full = run("--epochs", "2", "--out", str(tmp_path / "full"))
    for name in ("config.json", "history.json", "history.csv", "history.png", "vocab.json", "data_report.json"):
        assert (tmp_path / "full" / name).is_file(), name
    run("--epochs", "1", "--out", str(tmp_path / "part"))
    resumed = run("--epochs", "2", "--resume", "--out", str(tmp_path / "part"))
    assert resumed["epochs"] == 2 and resumed["test_acc"] == pytest.approx(full["test_acc"], abs=1e-6)
    # the step time leaves out each process's compiling epoch: the resumed process compiled in epoch 2
    assert full["step_ms_of"] == "epoch 2, compile excluded"
    assert resumed["step_ms_of"] == "epoch 2, compile included"
    h_full, h_part = (json.loads((tmp_path / d / "history.json").read_text()) for d in ("full", "part"))
    assert h_part[1]["val_loss"] == pytest.approx(h_full[1]["val_loss"], rel=1e-5)
    with pytest.raises(SystemExit) as exc:
        cli.main([*flags, "--epochs", "1", "--out", str(tmp_path / "full")])
    assert exc.value.code == 2 and "already holds checkpoints" in capsys.readouterr().err


def test_history_png_marks_the_most_accurate_epoch_and_shows_a_one_epoch_run(tmp_path, monkeypatch):
    from jena_rnn.runtime import report

    figs = []
    real = report.history_figure
    monkeypatch.setattr(report, "history_figure", lambda h, **kw: figs.append(real(h, **kw)) or figs[-1])
    row = {"train_seconds": 1.0, "step_ms": 1.0, "epoch_seconds": 1.0}
    hist = [{"epoch": 1, "train_loss": 0.7, "train_acc": 0.5, "val_loss": 0.6, "val_acc": 0.6, **row}]
    imdb.write_history(tmp_path, hist)
    hist += [{"epoch": 2, "train_loss": 0.5, "train_acc": 0.7, "val_loss": 0.5, "val_acc": 0.8, **row},
             {"epoch": 3, "train_loss": 0.4, "train_acc": 0.8, "val_loss": 0.4, "val_acc": 0.7, **row}]
    imdb.write_history(tmp_path, hist)
    assert (tmp_path / "history.png").is_file() and (tmp_path / "history.csv").is_file()
    one, three = figs
    for ax in one.axes:  # one epoch: its validation point is drawn
        (val,) = [line for line in ax.get_lines() if line.get_label().startswith("Validation")]
        assert len(val.get_xdata()) == 1 and val.get_marker() not in ("None", "", " ", None)
    stars = [[line for line in ax.get_lines() if line.get_marker() == "*"][0] for ax in three.axes]
    assert [list(s.get_xdata()) for s in stars] == [[2], [2]]  # val_acc is highest at epoch 2, on both panels
