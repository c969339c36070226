"""The lecture's models: parameter shapes of every preset, and outputs against numpy by hand."""
import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jena_rnn.config import LECTURE_MODELS, ModelConfig, from_dict, lecture_config, to_dict
from jena_rnn.nn.models import apply_model, count_params, init_model

T, F = 7, 3


@pytest.mark.parametrize("name", sorted(LECTURE_MODELS))
def test_presets_shapes_and_output(name):
    config = lecture_config(name)
    assert from_dict(to_dict(config)) == config
    old = to_dict(config)
    del old["model"]["remat"]  # a config.json written before the field existed
    assert from_dict(old) == config
    params = init_model(jax.random.PRNGKey(0), config.model, F, T)
    xs = jax.random.normal(jax.random.PRNGKey(1), (2, T, F))
    y_hat = apply_model(config.model, params, xs, target_col=1)
    assert y_hat.shape == (2,)
    assert np.isfinite(np.asarray(y_hat)).all()


def test_param_counts_match_keras():
    """Keras's param counts for F=14, T=240 (Keras 2.0.8 GRU, reset before: 3*(F*H + H*H + H))."""
    F14, T240 = 14, 240
    counts = {name: count_params(init_model(jax.random.PRNGKey(0), lecture_config(name).model, F14, T240))
              for name in ("mlp", "gru", "lstm", "bidirectional_gru", "stacked_gru")}
    gru32 = 3 * (14 * 32 + 32 * 32 + 32)
    assert counts["gru"] == gru32 + 33 == 4545  # model.summary() of the lecture's GRU(32) + Dense(1)
    assert counts["mlp"] == 240 * 14 * 32 + 32 + 33
    assert counts["lstm"] == 4 * (14 * 32 + 32 * 32 + 32) + 33
    assert counts["bidirectional_gru"] == 2 * gru32 + 65
    assert counts["stacked_gru"] == gru32 + 3 * (32 * 64 + 64 * 64 + 64) + 65


def test_reset_after_gru_counts_its_second_bias():
    """Keras 2.3+'s reset-after GRU(32) adds a recurrent bias [3H]: 3*(F*H + H*H + 2H) + Dense(1)."""
    gru = lecture_config("gru").model
    after = dataclasses.replace(gru, layers=tuple(dataclasses.replace(l, reset_after=True) for l in gru.layers))
    params = init_model(jax.random.PRNGKey(0), after, 14, 240)
    assert count_params(params) == 3 * (14 * 32 + 32 * 32 + 2 * 32) + 33 == 4641
    assert sorted(params["layers"][0]) == ["b_h", "b_x", "w_h", "w_x"]


def test_naive_returns_last_target():
    xs = jnp.arange(2 * T * F, dtype=jnp.float32).reshape(2, T, F)
    y_hat = apply_model(ModelConfig(kind="naive", layers=()), {}, xs, target_col=2)
    np.testing.assert_array_equal(np.asarray(y_hat), np.asarray(xs[:, -1, 2]))


def test_mlp_matches_numpy():
    config = ModelConfig(kind="mlp", layers=(), mlp_units=4)
    params = init_model(jax.random.PRNGKey(0), config, F, T)
    xs = np.random.default_rng(0).normal(size=(2, T, F)).astype(np.float32)
    p = jax.tree.map(np.asarray, params)
    assert p["hidden"]["w"].shape == (T * F, 4)  # the row-vector convention [in, out] (models docstring)
    hidden = np.maximum(xs.reshape(2, -1) @ p["hidden"]["w"] + p["hidden"]["b"], 0)
    expected = (hidden @ p["head"]["w"] + p["head"]["b"])[:, 0]
    with jax.default_matmul_precision("highest"):
        got = apply_model(config, params, jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
    # glorot-uniform bound of Keras for the head: sqrt(6 / (fan_in + fan_out))
    assert np.abs(p["head"]["w"]).max() <= np.sqrt(6 / 5)


@pytest.mark.parametrize("name", ["gru", "lstm", "stacked_gru", "bidirectional_gru"])
def test_recurrent_models_match_numpy_reference(name):
    """apply_model = the float64 reference layers (tests/reference.py) + the dense head, by hand."""
    import reference as ref

    config = lecture_config(name).model
    params = init_model(jax.random.PRNGKey(2), config, F, T)
    xs = np.random.default_rng(1).normal(size=(2, T, F)).astype(np.float32)
    p = jax.tree.map(np.asarray, params)
    h = xs
    for layer, lp in zip(config.layers, p["layers"]):
        ra = layer.reset_after if layer.cell == "gru" else None
        if layer.bidirectional:
            fw = ref.run(layer.cell, lp["forward"], h, ra, layer.activation)[2]
            bw = ref.run(layer.cell, lp["backward"], h[:, ::-1], ra, layer.activation)[2][:, ::-1]
            h = np.concatenate([fw, bw], axis=-1)
        else:
            h = ref.run(layer.cell, lp, h, ra, layer.activation)[2]
    last = h[:, -1] if not config.layers[-1].bidirectional else np.concatenate(
        [h[:, -1, : h.shape[-1] // 2], h[:, 0, h.shape[-1] // 2:]], axis=-1)
    expected = (last @ p["head"]["w"] + p["head"]["b"])[:, 0]
    with jax.default_matmul_precision("highest"):
        got = apply_model(config, params, jnp.asarray(xs))
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-4, atol=1e-5)
