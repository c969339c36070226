"""The reset-before GRU has one bias per gate (Keras 2.0.8); checkpoints of the older two-bias layout.

Runs saved before the change hold a reset-before GRU with ``b_x`` and ``b_h``: they restore with
``b_x + b_h`` as the one bias (the same GRU) for evaluate and predict, and a ``--resume`` of them is
refused, since RMSprop's running averages of the two biases cannot be combined exactly. A params dict
with the wrong bias keys for its form gets one clear error naming the key.
"""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import B, F, H, T, random_params

import reference as ref
from jena_rnn.nn import cells, interop, rnn
from jena_rnn.runtime import checkpoint
from jena_rnn.forecast import runs, train
from jena_rnn.config import LayerConfig, ModelConfig, to_dict
from jena_rnn.nn.models import apply_model
from tiny import TINY_DATA, tiny_config, with_model

OLD_RUN = r"older jena_rnn whose reset-before GRU \(reset_after=False\) had two biases.*" \
          r"Evaluate and predict still work; start a new run"
# a reset-before layer, a reset-after one (which keeps b_h), and a bidirectional reset-before one
MODEL = ModelConfig(layers=(LayerConfig(cell="gru", units=4), LayerConfig(cell="gru", units=3, reset_after=True),
                            LayerConfig(cell="gru", units=2, bidirectional=True)))


def _old_layout(state: train.TrainState, config, seed: int) -> train.TrainState:
    """The state as an older jena_rnn saved it: every reset-before GRU with b_x and b_h, all non-zero,
    and RMSprop's nu after one update (so that its copies of both biases hold values)."""
    r = np.random.default_rng(seed)

    def old(p):
        if isinstance(p, dict) and "forward" in p:
            return {d: old(p[d]) for d in p}
        if "b_h" in p:  # a reset-after layer: already two biases
            return p
        return {**p, "b_x": jnp.asarray(r.normal(size=p["b_x"].shape), jnp.float32),
                "b_h": jnp.asarray(r.normal(size=p["b_x"].shape), jnp.float32)}

    params = {**state.params, "layers": [old(p) for p in state.params["layers"]]}
    opt = train.make_optimizer(config.optim)
    grads = jax.tree.map(lambda a: jnp.asarray(r.normal(size=a.shape), a.dtype), params)
    _, opt_state = opt.update(grads, opt.init(params), params)
    return state._replace(params=params, opt_state=opt_state)


def _old_gru_before(p, xs):
    """The older two-bias reset-before GRU, float64: b_h added to each gate's recurrent term."""
    p = {k: np.asarray(v, np.float64) for k, v in p.items()}
    n = p["w_h"].shape[0]
    blk = lambda a, k: a[..., k * n:(k + 1) * n]  # noqa: E731
    h, ys = np.zeros((xs.shape[0], n)), []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        z, r = (ref.sigmoid(x @ blk(p["w_x"], k) + blk(p["b_x"], k) + h @ blk(p["w_h"], k) + blk(p["b_h"], k))
                for k in (0, 1))
        cand = np.tanh(x @ blk(p["w_x"], 2) + blk(p["b_x"], 2) + (r * h) @ blk(p["w_h"], 2) + blk(p["b_h"], 2))
        h = (1 - z) * h + z * cand
        ys.append(h)
    return np.stack(ys, axis=1)


def _old_model(params, xs):
    """MODEL's output computed from the old layout, layer by layer."""
    h = np.asarray(xs, np.float64)
    run = lambda lp, layer, s: (ref.run("gru", lp, s, True)[2] if layer.reset_after  # noqa: E731
                                else _old_gru_before(lp, s))
    for layer, lp in zip(MODEL.layers, params["layers"]):
        if layer.bidirectional:
            h = np.concatenate([run(lp["forward"], layer, h), run(lp["backward"], layer, h[:, ::-1])[:, ::-1]], -1)
        else:
            h = run(lp, layer, h)
    u = MODEL.layers[-1].units
    last = np.concatenate([h[:, -1, :u], h[:, 0, u:]], -1)
    return (last @ np.asarray(params["head"]["w"], np.float64) + np.asarray(params["head"]["b"]))[:, 0]


def test_old_two_bias_checkpoint_restores_folded_with_the_same_outputs(tmp_path):
    config = with_model(tiny_config(), MODEL)
    like = train.init_state(config, jax.random.PRNGKey(0), F)
    old = _old_layout(train.init_state(config, jax.random.PRNGKey(1), F), config, 2)
    checkpoint.save(tmp_path, old, epoch=1, history=[], config={}, is_best=True)
    new, _ = checkpoint.restore(tmp_path, like)
    assert jax.tree.structure(new) == jax.tree.structure(like)
    before, after = old.params["layers"], new.params["layers"]
    for o, n in ((before[0], after[0]), (before[2]["forward"], after[2]["forward"]),
                 (before[2]["backward"], after[2]["backward"])):
        assert sorted(n) == ["b_x", "w_h", "w_x"]
        np.testing.assert_array_equal(n["b_x"], np.add(o["b_x"], o["b_h"]))  # the one bias: b_x + b_h
        np.testing.assert_array_equal(n["w_h"], o["w_h"])
    for k in ("b_x", "b_h"):  # the reset-after layer keeps both biases, untouched
        np.testing.assert_array_equal(after[1][k], before[1][k])
    np.testing.assert_array_equal(new.step, old.step)
    xs = np.random.default_rng(3).standard_normal((B, T, F)).astype(np.float32)
    got = apply_model(MODEL, new.params, jnp.asarray(xs))
    np.testing.assert_allclose(got, _old_model(old.params, xs), rtol=1e-4, atol=1e-5)  # float32 vs float64
    with pytest.raises(ValueError, match="cannot resume from checkpoint .*" + OLD_RUN):
        checkpoint.restore(tmp_path, like, resume=True)


def test_old_two_bias_sweep_checkpoint_folds_member_by_member(tmp_path):
    config = tiny_config(units=3)
    members = [_old_layout(train.init_state(config, jax.random.PRNGKey(k), F), config, k) for k in range(3)]
    old = jax.tree.map(lambda *a: jnp.stack(a), *members)  # a sweep's stacked leaves [S, ...]
    checkpoint.save(tmp_path, old, epoch=1, history=[], config={}, is_best=True)
    like = jax.tree.map(lambda *a: jnp.stack(a), *[train.init_state(config, jax.random.PRNGKey(0), F)] * 3)
    new, _ = checkpoint.restore(tmp_path, like)
    p_old, p_new = old.params["layers"][0], new.params["layers"][0]
    assert p_new["b_x"].shape == (3, 9) and "b_h" not in p_new
    np.testing.assert_array_equal(p_new["b_x"], np.add(p_old["b_x"], p_old["b_h"]))
    with pytest.raises(ValueError, match=OLD_RUN):
        checkpoint.restore(tmp_path, like, resume=True)


def test_old_two_bias_run_evaluates_and_predicts_but_refuses_resume(tmp_path):
    from jena_rnn import data
    config = tiny_config(units=4, epochs=1, steps=2)
    ds = data.load_dataset(dataclasses.replace(TINY_DATA))
    run = tmp_path / "run"
    _, history = train.fit(config, ds, run, log=None)
    like = train.init_state(config, jax.random.PRNGKey(0), ds.series.shape[1])
    saved, _ = checkpoint.restore(run, like)
    old = _old_layout(saved, config, 4)
    checkpoint.save(run, old, epoch=2, history=[*history, {**history[0], "epoch": 2}], config=to_dict(config),
                    is_best=True)
    folded = {**old.params, "layers": [{k: v for k, v in old.params["layers"][0].items() if k != "b_h"}]}
    folded["layers"][0]["b_x"] = np.add(old.params["layers"][0]["b_x"], old.params["layers"][0]["b_h"])
    expected = train.evaluate_split(config, jax.tree.map(jnp.asarray, folded), ds, "val")
    got = runs.evaluate(run, split="val", mesh=None)
    assert got["epoch"] == 2 and got["mae"] == pytest.approx(expected, rel=1e-6)
    assert np.isfinite(runs.predict(run)["forecast"])
    more = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=3))
    with pytest.raises(ValueError, match=OLD_RUN):
        train.fit(more, ds, run, resume=True, log=None)
    assert checkpoint.latest(run) == 2  # nothing was written


_BEFORE = random_params("gru", 0, F, H, reset_after=False)
_AFTER = random_params("gru", 0, F, H, reset_after=True)
_ONE_BIAS = r"unexpected \['b_h'\].*reset-before GRU, reset_after=False, has one bias per gate"
_TWO_BIASES = r"missing \['b_h'\].*reset-after GRU, reset_after=True, has two biases"
_XS = np.zeros((B, T, F), np.float32)
_H0, _X = np.zeros((B, H), np.float32), np.zeros((B, F), np.float32)


@pytest.mark.parametrize("call,match", [
    (lambda: cells.gru_step(_AFTER, _H0, _X, reset_after=False), "gru_step: .*" + _ONE_BIAS),
    (lambda: cells.gru_step(_BEFORE, _H0, _X, reset_after=True), "gru_step: .*" + _TWO_BIASES),
    (lambda: rnn.unroll("gru", _AFTER, _XS), "unroll: .*" + _ONE_BIAS),
    (lambda: rnn.unroll("gru", _BEFORE, _XS, reset_after=True), "unroll: .*" + _TWO_BIASES),
    (lambda: rnn.unroll("gru", {**_BEFORE, "b": _BEFORE["b_x"]}, _XS), r"unexpected \['b'\]"),
    (lambda: rnn.unroll("lstm", {**random_params("lstm", 0, F, H), "b_x": np.zeros(4 * H)}, _XS),
     r"params for 'lstm' unexpected \['b_x'\]; expected keys \['w_x', 'w_h', 'b'\]"),
    (lambda: rnn.stack(MODEL.layers[:1], [_AFTER], _XS), "unroll: .*" + _ONE_BIAS),
    (lambda: interop.to_keras("gru", _AFTER, reset_after=False), "to_keras: .*" + _ONE_BIAS),
    (lambda: interop.to_keras("gru", _BEFORE, reset_after=True), "to_keras: .*" + _TWO_BIASES),
    (lambda: interop.to_torch("gru", _BEFORE), r"to_torch: .*one bias \(b_x\).*nn.GRU is always reset-after"),
], ids=["step-before-b_h", "step-after-no-b_h", "unroll-before-b_h", "unroll-after-no-b_h", "unroll-gru-b",
        "unroll-lstm-b_x", "stack-before-b_h", "keras-before-b_h", "keras-after-no-b_h", "torch-before"])
def test_wrong_bias_keys_are_refused_by_name(call, match):
    with pytest.raises(ValueError, match=match):
        call()
