"""Our cells against Keras 3's own SimpleRNN / LSTM / GRU layers (both GRU forms), when Keras is installed.

Keras runs on its JAX backend here (``KERAS_BACKEND=jax``, no TensorFlow needed); its recurrent layers
are backend-neutral code, so this checks Keras's equations, not ours twice. Weights cross with
``interop.from_keras`` / ``to_keras``.
"""
import os

import numpy as np
import pytest
from conftest import CELL_IDS, CELLS, B, F, H, T, random_params

from jena_rnn.nn import interop, rnn

os.environ["KERAS_BACKEND"] = "jax"  # the oracle is Keras's own layer code, on the backend we have
keras = pytest.importorskip("keras", reason="keras is not installed: Keras cross-checks skipped")

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")



def _layer(cell, reset_after, activation="tanh"):
    kw = dict(return_sequences=True, return_state=False, activation=activation)
    if cell == "simple_rnn":
        return keras.layers.SimpleRNN(H, **kw)
    if cell == "lstm":
        return keras.layers.LSTM(H, **kw)
    return keras.layers.GRU(H, reset_after=reset_after, **kw)


def _randomise(layer, rng):
    layer.set_weights([rng.uniform(-0.6, 0.6, w.shape).astype(np.float32) for w in layer.get_weights()])


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_from_keras_matches_keras_layer(cell, reset_after, rng):
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    layer = _layer(cell, reset_after)
    layer(xs)  # builds the weights
    _randomise(layer, rng)  # Keras's zero biases would hide bias-layout mistakes
    expected = np.asarray(layer(xs))
    params = interop.from_keras(cell, *layer.get_weights(), reset_after=reset_after)
    _, ys = rnn.unroll(cell, params, xs, reset_after=bool(reset_after))
    np.testing.assert_allclose(ys, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_to_keras_runs_our_weights_in_keras(cell, reset_after, rng):
    params = random_params(cell, 7, F, H, reset_after=reset_after)
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    layer = _layer(cell, reset_after)
    layer(xs)
    layer.set_weights(list(interop.to_keras(cell, params, reset_after=reset_after)))
    _, ys = rnn.unroll(cell, params, xs, reset_after=bool(reset_after))
    np.testing.assert_allclose(np.asarray(layer(xs)), ys, rtol=1e-5, atol=1e-5)


def test_relu_gru_matches_keras(rng):
    """The lecture's stacked model tops out with GRU(64, activation="relu"): the candidate uses relu."""
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    layer = _layer("gru", False, activation="relu")
    layer(xs)
    _randomise(layer, rng)
    params = interop.from_keras("gru", *layer.get_weights(), reset_after=False)
    _, ys = rnn.unroll("gru", params, xs, reset_after=False, activation="relu")
    np.testing.assert_allclose(ys, np.asarray(layer(xs)), rtol=1e-5, atol=1e-5)
