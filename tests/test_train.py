"""Training loop: loss, optimiser, one-trace epochs, determinism, resume, divergence guard, acceptance."""
import dataclasses
import json
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jena_rnn.runtime import checkpoint
from jena_rnn import data
from jena_rnn.forecast import train
from jena_rnn.config import LayerConfig, ModelConfig, OptimConfig, TrainConfig

from tiny import TINY_DATA, tiny_config, with_model

TIMING = {"train_seconds", "step_ms", "epoch_seconds", "first_in_process"}  # first: differs on a resume


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    # a private cache so tests never touch the user's ~/.cache
    return data.load_dataset(dataclasses.replace(TINY_DATA))


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _strip(history):
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def test_mae_value_and_shape_check():
    y_hat, y = jnp.array([1.0, 2.0, 4.0]), jnp.array([1.5, 2.0, 1.0])
    assert float(train.mae(y_hat, y)) == pytest.approx((0.5 + 0.0 + 3.0) / 3)
    with pytest.raises(ValueError, match=r"y_hat has shape \(3, 1\) but y has shape \(3,\)"):
        train.mae(y_hat[:, None], y)


def test_rmsprop_matches_keras_update_rule():
    """One step by hand: nu = (1-rho) g^2, w -= lr g / sqrt(nu + eps) (Keras 3, epsilon inside)."""
    cfg = OptimConfig(learning_rate=0.01, decay=0.9, eps=1e-7)
    opt = train.make_optimizer(cfg)
    w, g = jnp.array([1.0, -2.0]), jnp.array([0.3, -0.001])
    updates, _ = opt.update(g, opt.init(w), w)
    nu = 0.1 * np.asarray(g) ** 2
    expected = -0.01 * np.asarray(g) / np.sqrt(nu + 1e-7)
    np.testing.assert_allclose(np.asarray(updates), expected, rtol=1e-5)
    assert float(opt.init(w).hyperparams["learning_rate"]) == pytest.approx(0.01)


def test_train_step_traces_once_and_lowers_loss(ds):
    config = tiny_config(units=8, steps=1)
    traces = []
    step = train.make_train_step(config, ds.train, ds.target_col)

    def counted(state, series):
        traces.append(1)
        return step(state, series)

    jitted = jax.jit(counted)
    state = train.init_state(config, jax.random.PRNGKey(0), ds.series.shape[1])
    # a fixed tiny batch: freeze the key so every step draws the same rows and dropout masks
    key = state.key
    losses = []
    for _ in range(30):
        state, metrics = jitted(state._replace(key=key), ds.series)
        losses.append(float(metrics["loss"]))
    assert len(traces) == 1
    assert losses[-1] < 0.7 * losses[0]


def test_epoch_is_one_call_and_advances_step(ds):
    config = tiny_config(steps=7)
    traces = []
    inner = train.make_train_epoch(config, ds.train, ds.target_col, jit=False)
    epoch = jax.jit(lambda state, series: (traces.append(1), inner(state, series))[1])
    state = train.init_state(config, jax.random.PRNGKey(1), ds.series.shape[1])
    state, metrics = epoch(state, ds.series)
    state, metrics = epoch(state, ds.series)
    assert metrics["loss"].shape == (7,)
    assert int(state.step) == 14
    assert len(traces) == 1  # the second epoch reuses the compiled program


def test_progress_callback_sees_every_50th_of_the_epoch(ds):
    config = tiny_config(steps=100)
    seen = []
    epoch = train.make_train_epoch(config, ds.train, ds.target_col, progress=lambda i: seen.append(int(i)))
    state = train.init_state(config, jax.random.PRNGKey(1), ds.series.shape[1])
    jax.block_until_ready(epoch(state, ds.series))
    jax.effects_barrier()
    assert sorted(seen) == list(range(2, 101, 2))


def test_resume_with_patience_stops_where_uninterrupted_run_stops(ds, tmp_path):
    config = tiny_config(epochs=8, steps=3)
    config = dataclasses.replace(config, optim=OptimConfig(learning_rate=0.05),
                                 train=dataclasses.replace(config.train, patience=1))
    _, h_full = train.fit(config, ds, tmp_path / "full", log=None)
    assert len(h_full) < 8  # early stopping happened (lr 0.05 makes validation MAE bounce)
    k = len(h_full) - 1  # interrupt after the epoch before the stop, then resume
    short = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=k))
    train.fit(short, ds, tmp_path / "part", log=None)
    _, h_res = train.fit(config, ds, tmp_path / "part", resume=True, log=None)
    assert _strip(h_res) == _strip(h_full)
    # resuming a run that already stopped early trains nothing more
    _, h_again = train.fit(config, ds, tmp_path / "full", resume=True, log=None)
    assert _strip(h_again) == _strip(h_full)


def test_crash_inside_first_checkpoint_leaves_a_resumable_run(ds, tmp_path, monkeypatch):
    config = tiny_config(epochs=2, steps=3)
    _, h_full = train.fit(config, ds, tmp_path / "full", log=None)

    def crash(stage):
        if stage == "before_run_files":  # epoch 1 committed by orbax, config.json/history.json not rewritten
            raise KeyboardInterrupt("killed while saving")

    monkeypatch.setattr(checkpoint, "_on_stage", crash)
    with pytest.raises(KeyboardInterrupt):
        train.fit(config, ds, tmp_path / "run", log=None)
    monkeypatch.undo()
    assert (tmp_path / "run" / "config.json").is_file()
    # the epoch-1 checkpoint is committed but the save never finished: resume goes on from it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, h_res = train.fit(config, ds, tmp_path / "run", resume=True, log=None)
    assert _strip(h_res) == _strip(h_full)


def test_same_seed_same_history_other_seed_differs(ds):
    config = tiny_config(epochs=2, steps=4, dropout=0.2, recurrent_dropout=0.2)
    _, h1 = train.fit(config, ds, log=None)
    _, h2 = train.fit(config, ds, log=None)
    _, h3 = train.fit(dataclasses.replace(config, train=TrainConfig(epochs=2, steps_per_epoch=4, seed=1)),
                      ds, log=None)
    assert _strip(h1) == _strip(h2)
    assert _strip(h1) != _strip(h3)


def test_resume_equals_uninterrupted(ds, tmp_path):
    config = tiny_config(epochs=3, steps=4, recurrent_dropout=0.3)
    full, h_full = train.fit(config, ds, tmp_path / "full", log=None)
    short = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2))
    train.fit(short, ds, tmp_path / "part", log=None)
    assert checkpoint.latest(tmp_path / "part") == 2
    saved = json.loads((tmp_path / "part" / "config.json").read_text())
    del saved["model"]["remat"]  # as written before the field existed: its default applies on resume
    (tmp_path / "part" / "config.json").write_text(json.dumps(saved))
    resumed, h_res = train.fit(config, ds, tmp_path / "part", resume=True, log=None)
    assert _strip(h_res) == _strip(h_full)
    for a, b in zip(jax.tree.leaves(full.params), jax.tree.leaves(resumed.params)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert (tmp_path / "part" / "history.csv").read_text().count("\n") == 4  # header + 3 epochs
    assert (tmp_path / "part" / "loss.png").stat().st_size > 1000


def test_refuses_to_overwrite_or_resume_a_different_config(ds, tmp_path):
    config = tiny_config(epochs=1, steps=2)
    train.fit(config, ds, tmp_path / "run", log=None)
    with pytest.raises(FileExistsError, match="resume"):
        train.fit(config, ds, tmp_path / "run", log=None)
    other = dataclasses.replace(config, model=ModelConfig(layers=(LayerConfig(cell="lstm", units=8),)))
    with pytest.raises(ValueError, match=r"differs in \['model'\]"):
        train.fit(other, ds, tmp_path / "run", resume=True, log=None)


def test_nan_loss_stops_with_epoch_named_and_keeps_checkpoint(ds, tmp_path):
    config = tiny_config(epochs=1, steps=2)
    train.fit(config, ds, tmp_path / "run", log=None)
    poisoned = ds._replace(series=ds.series.at[: ds.train[1]].set(jnp.nan))
    longer = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=3))
    with pytest.raises(train.TrainingDiverged, match=r"epoch 2: .*not finite.*epoch 1"):
        train.fit(longer, poisoned, tmp_path / "run", resume=True, log=None)
    assert checkpoint.latest(tmp_path / "run") == 1
    state, meta = checkpoint.restore(tmp_path / "run", train.init_state(
        config, jax.random.PRNGKey(0), ds.series.shape[1]))
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(state.params))


def test_naive_model_refuses_training(ds):
    config = dataclasses.replace(tiny_config(), model=ModelConfig(kind="naive", layers=()))
    with pytest.raises(ValueError, match="nothing to train"):
        train.fit(config, ds, log=None)


def test_mlp_epoch_carrying_the_kernel_transposed_is_the_plain_epoch(ds, monkeypatch):
    # the CPU epoch carries the MLP's kernel as w_t through its scan (backend's choice); it must train the
    # very same function as the plain [in, out] epoch and hand the state back in the stored layout
    config = with_model(tiny_config(steps=6), ModelConfig(kind="mlp", mlp_units=8))
    state0 = train.init_state(config, jax.random.PRNGKey(3), ds.series.shape[1])
    w = state0.params["hidden"]["w"]
    assert w.shape[0] > w.shape[1]  # [T*F, units]
    swapped = train.swap_mlp_kernel(state0)
    assert swapped.params["hidden"]["w"].shape == w.shape[::-1]
    nu = [x for p, x in jax.tree_util.tree_leaves_with_path(swapped.opt_state) if train._is_mlp_kernel(p)]
    assert nu and all(x.shape == w.shape[::-1] for x in nu)  # the optimiser's copies swap with it
    assert swapped.params["head"]["w"].shape == state0.params["head"]["w"].shape
    out = {}
    for carried in (True, False):
        monkeypatch.setattr(train.backend, "CARRY_TRANSPOSED_MLP_KERNEL", {train.backend.name(): carried})
        assert train.carries_transposed_kernel(config) is carried
        out[carried] = train.make_train_epoch(config, ds.train, ds.target_col)(state0, ds.series)
    (s_t, m_t), (s_p, m_p) = out[True], out[False]
    assert s_t.params["hidden"]["w"].shape == w.shape
    np.testing.assert_allclose(m_t["loss"], m_p["loss"], rtol=1e-5, atol=1e-7)
    for a, b in zip(jax.tree.leaves(s_t), jax.tree.leaves(s_p)):
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64), rtol=1e-4, atol=1e-6)
    assert not np.allclose(s_p.params["hidden"]["w"], w)  # it did train


def test_loss_png_gets_the_naive_validation_baseline_and_the_target_scale(ds, tmp_path, monkeypatch):
    from jena_rnn.forecast import runs
    from jena_rnn.runtime import report

    seen = []
    real = report.history_figure
    monkeypatch.setattr(report, "history_figure", lambda history, **kw: seen.append(kw) or real(history, **kw))
    config = tiny_config(epochs=1, steps=2)
    train.fit(config, ds, tmp_path / "run", log=None)
    assert (tmp_path / "run" / "loss.png").is_file() and len(seen) == 1
    assert seen[0]["baseline"] == pytest.approx(runs.naive_mae(config, ds, "val"), rel=1e-6)
    assert seen[0]["scale"] == pytest.approx(data.target_scale(ds))
