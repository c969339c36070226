"""Older checkpoint layouts: leaves renamed between versions, and run directories of the layout before orbax's
CheckpointManager (tests/data/legacy_run: a tiny GRU(2) forecast run, 2 epochs, written by the checkpoint.py
of commit bbd2672 with tree.json, leaf_NNNN, files.json and LATEST/BEST; legacy_run_expected.npz holds the
leaves that code restored from it, keyed "<epoch><keystr>")."""
import dataclasses
import shutil
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jena_rnn import data
from jena_rnn.forecast import runs, train
from jena_rnn.runtime import checkpoint, checkpoint_tree

from test_checkpoint import TrainState, assert_same
from tiny import tiny_config

DATA = Path(__file__).parent / "data"
CONFIG = tiny_config(units=2, epochs=2, steps=1)  # the fixture run's configuration


@pytest.fixture
def old_run(tmp_path):
    out = tmp_path / "run"
    shutil.copytree(DATA / "legacy_run", out)
    return out


def _like():
    return train.init_state(CONFIG, jax.random.PRNGKey(0), 14)


def _expected(epoch):
    saved = np.load(DATA / "legacy_run_expected.npz")
    return {k[len(str(epoch)):]: saved[k] for k in saved.files if k.startswith(str(epoch) + ".")}


def _assert_values(state, epoch):
    got = {jax.tree_util.keystr(p): np.asarray(jax.random.key_data(a) if checkpoint_tree.is_key(a) else a)
           for p, a in jax.tree_util.tree_flatten_with_path(state)[0]}
    want = _expected(epoch)
    assert sorted(got) == sorted(want) and len(want) == 17
    for k in want:
        assert got[k].dtype == want[k].dtype, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)


def _data_files(ckpt):
    """The files of orbax's OCDBT store under ckpt/state (tiny leaves live in state/d, not ocdbt.process_0/d)."""
    return [f for f in sorted((ckpt / "state").rglob("*"))
            if f.is_file() and (f.parent.name == "d" or f.name == "manifest.ocdbt")]


def _files(run):
    return {p.relative_to(run).as_posix(): p.read_bytes() for p in sorted(run.rglob("*")) if p.is_file()}


def test_an_old_layout_run_restores_identical_values(old_run):
    before = _files(old_run)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoint.has_checkpoint(old_run)
        assert (checkpoint.latest(old_run), checkpoint.best(old_run)) == (2, 2)
        for which, epoch in (("latest", 2), ("best", 2), (1, 1)):
            state, meta = checkpoint.restore(old_run, _like(), which=which)
            assert meta["epoch"] == epoch and len(meta["history"]) == epoch
            _assert_values(state, epoch)
    assert _files(old_run) == before  # read only


def test_an_old_layout_run_resumes_into_the_new_layout_beside_the_old_checkpoints(old_run):
    before = _files(old_run / "checkpoints")
    state, meta = checkpoint.resume(old_run, _like())
    _assert_values(state, 2)
    nxt = state._replace(step=state.step + 1)
    checkpoint.save(old_run, nxt, epoch=3, history=[*meta["history"], {"epoch": 3}], config=meta["config"],
                    is_best=False)
    assert (checkpoint.latest(old_run), checkpoint.best(old_run)) == (3, 2)  # BEST still the old epoch 2
    assert (old_run / "checkpoints" / "epoch_0003" / "commit_success.txt").is_file()
    assert_same(checkpoint.restore(old_run, _like())[0], nxt)
    after = _files(old_run / "checkpoints")
    assert {k: v for k, v in after.items() if not k.startswith("epoch_0003/")} == before  # left as they were
    # a damaged new epoch falls back to the old layout's newest
    for f in _data_files(old_run / "checkpoints" / "epoch_0003"):
        f.write_bytes(b"\0" * f.stat().st_size)
    with pytest.warns(UserWarning, match=r"epoch_0003.*falling back .* epoch 2"):
        _assert_values(checkpoint.restore(old_run, _like())[0], 2)


def test_an_old_layout_run_evaluates_and_trains_on(old_run):
    ds = data.load_dataset(CONFIG.data)
    got = runs.evaluate(old_run, which="latest", split="val", mesh=None)
    state, _ = checkpoint.restore(old_run, _like())
    assert got["epoch"] == 2 and got["mae"] == pytest.approx(train.evaluate_split(CONFIG, state.params, ds, "val"),
                                                              rel=1e-6)
    more = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, epochs=3))
    _, history = train.fit(more, ds, old_run, resume=True, log=None)
    assert [h["epoch"] for h in history] == [1, 2, 3] and checkpoint.latest(old_run) == 3
    assert runs.evaluate(old_run, which="latest", mesh=None)["epoch"] == 3


@pytest.mark.parametrize("pointer", ["LATEST", "BEST"])
def test_binary_pointer_falls_back_with_a_warning(old_run, pointer):
    (old_run / "checkpoints" / pointer).write_bytes(b"\x00\xff\x9c" * 10)
    with pytest.warns(UserWarning, match=f"{pointer}"):
        assert runs.load_run(old_run, which=pointer.lower())[3]["epoch"] == 2


def test_a_broken_pointer_warns_once_on_resume(old_run):
    (old_run / "checkpoints" / "LATEST").write_text("abc\n")
    more = dataclasses.replace(CONFIG, train=dataclasses.replace(CONFIG.train, epochs=3))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        train.fit(more, data.load_dataset(more.data), old_run, resume=True, log=None)
    assert sum("LATEST" in str(w.message) for w in caught) == 1


def test_damaged_checkpoint_without_file_list_still_falls_back(old_run):
    ckpt = old_run / "checkpoints" / "epoch_0002"
    (ckpt / "files.json").unlink()  # as written before files.json existed
    for f in _data_files(ckpt):
        f.write_bytes(bytes(255 - b for b in f.read_bytes()))
    with pytest.warns(UserWarning, match=r"epoch_0002/state is unreadable .*falling back .* epoch 1"):
        assert runs.load_run(old_run, which="latest")[3]["epoch"] == 1


@pytest.mark.parametrize("damage", ["flipped", "files-not-json", "tree-not-json"])
def test_a_damaged_old_checkpoint_falls_back(old_run, damage):
    ckpt = old_run / "checkpoints" / "epoch_0002"
    if damage == "flipped":
        f = max(_data_files(ckpt), key=lambda p: p.stat().st_size)
        b = bytearray(f.read_bytes())
        b[len(b) // 2] ^= 0xFF
        f.write_bytes(bytes(b))
    else:
        (ckpt / damage.replace("-not-json", ".json")).write_text("nope")
    with pytest.warns(UserWarning, match=r"epoch_0002.*falling back .* epoch 1"):
        _assert_values(checkpoint.restore(old_run, _like())[0], 1)


def _mlp_state(kernel, w):
    """A hand-made MLP-like TrainState whose hidden kernel is stored under the name ``kernel``."""
    params = {"hidden": {kernel: w, "b": jnp.arange(4.0)}, "head": {"w": jnp.ones((4, 1)), "b": jnp.zeros(1)}}
    opt = optax.inject_hyperparams(optax.rmsprop)(learning_rate=1e-3, decay=0.9, eps=1e-7)
    grads = jax.tree.map(lambda p: jnp.arange(p.size, dtype=p.dtype).reshape(p.shape) / 7 + 0.5, params)
    _, opt_state = opt.update(grads, opt.init(params), params)  # nu differs from element to element
    return TrainState(params, opt_state, jnp.int32(1), jax.random.PRNGKey(3))


W = jnp.arange(6 * 4, dtype=jnp.float32).reshape(6, 4) / 5  # [T*F, units], element by element distinct


def _renamed(state, kernel):
    """``state`` with its hidden kernel (params and RMSprop's nu) transposed and stored as ``kernel``."""
    paths, leaves = zip(*jax.tree_util.tree_flatten_with_path(state)[0])
    kernels = [jax.tree_util.keystr(p).endswith("['hidden']['w']") or jax.tree_util.keystr(p).endswith(
        "['hidden']['w_t']") for p in paths]
    target = jax.tree.structure(_mlp_state(kernel, jnp.zeros(1)))  # b < w < w_t: the leaf order is the same
    return jax.tree.unflatten(target, [a.T if k else a for a, k in zip(leaves, kernels)])


def test_mlp_checkpoint_of_the_older_kernel_layout_restores_transposed(tmp_path):
    """An MLP saved with the hidden kernel as w_t [units, T*F] restores into w [T*F, units] = w_t.T,
    wherever the kernel appears (the params and RMSprop's nu)."""
    new = _mlp_state("w", W)
    old = _renamed(new, "w_t")
    paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_flatten_with_path(old)[0]]
    assert sum(p.endswith("['hidden']['w_t']") for p in paths) == 2  # the params' and RMSprop's nu
    checkpoint.save(tmp_path, old, epoch=1, history=[], config={}, is_best=True)
    restored, _ = checkpoint.restore(tmp_path, jax.tree.map(jnp.zeros_like, new))
    assert_same(restored, new)
    # a target that wants neither name is still refused, naming the leaf
    other = {**new.params, "hidden": {"v": W, "b": new.params["hidden"]["b"]}}
    with pytest.raises(ValueError, match=r"only in the checkpoint \[.*\['hidden'\]\['w_t'\]"):
        checkpoint.restore(tmp_path, new._replace(params=other))


def test_legacy_leaf_rules_are_generic_in_both_directions(tmp_path, monkeypatch):
    """The conversion is one rule (old suffix, new suffix, fn), so the reverse rule converts the other way."""
    saved = _mlp_state("w", W)
    checkpoint.save(tmp_path, saved, epoch=1, history=[], config={}, is_best=True)
    like = jax.tree.map(jnp.zeros_like, _renamed(saved, "w_t"))
    with pytest.raises(ValueError, match=r"only in the target \[.*\['hidden'\]\['w_t'\]"):
        checkpoint.restore(tmp_path, like)  # the rule w_t -> w does not apply backwards
    monkeypatch.setattr(checkpoint_tree, "LEGACY_LEAVES",
                        (("['hidden']['w']", "['hidden']['w_t']", lambda a: np.swapaxes(a, -1, -2)),))
    restored, _ = checkpoint.restore(tmp_path, like)
    assert_same(restored, _renamed(saved, "w_t"))


def test_sweep_checkpoint_of_the_older_mlp_layout_restores_member_by_member(tmp_path):
    members = [_mlp_state("w", W + k).params for k in range(3)]
    new = jax.tree.map(lambda *a: jnp.stack(a), *members)  # a sweep's params: [S, ...] leaves
    old = {**new, "hidden": {"w_t": jnp.swapaxes(new["hidden"]["w"], -1, -2), "b": new["hidden"]["b"]}}
    assert old["hidden"]["w_t"].shape == (3, 4, 6)
    checkpoint.save(tmp_path, old, epoch=1, history=[], config={}, is_best=True)
    restored, _ = checkpoint.restore(tmp_path, jax.tree.map(jnp.zeros_like, new))
    assert_same(restored, new)


