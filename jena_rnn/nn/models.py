"""The lecture's forecasting models as pure ``init_model`` / ``apply_model`` functions.

Every model maps a window ``xs [B, T, F]`` to one prediction per sample ``y_hat [B]``:

- ``naive``: ``y_hat = xs[:, -1, target_col]``, the last observed (normalised) target; no parameters.
  With ``reverse=True`` windows the last observation sits at ``xs[:, 0]``; the naive model is
  evaluated on forward windows only.
- ``mlp``: Flatten -> Dense(mlp_units, relu) -> Dense(1)  (``relu(flat(xs) W1 + b1) W2 + b2``).
- ``rnn``: the stacked recurrent layers of ``ModelConfig.layers`` (``jena_rnn.nn.rnn.stack``: every layer
  but the last returns sequences; a layer may be bidirectional) -> Dense(1) on the last output.

Dense kernels use Keras's glorot-uniform initialiser and zero biases, like the recurrent kernels.
Params are plain dicts: ``{"layers": [...], "head": {"w": [H, 1], "b": [1]}}``; the MLP's are
``{"hidden": {"w": [T*F, mlp_units], "b": [mlp_units]}, "head": ...}``. Every dense kernel is stored in the
row-vector convention ``[in, out]`` (Keras's and Flax's layout), so ``dense`` is ``x @ w + b``. What the
plain layout costs the MLP's step on XLA:CPU against a transposed kernel: benchmarks/RESULTS.md "The MLP's
kernel back in [in, out]" (``benchmarks/bench_mlp.py``).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jena_rnn import backend
from jena_rnn.config import ModelConfig
from jena_rnn.nn import rnn

Array = jax.Array


def init_dense(key: Array, fan_in: int, fan_out: int) -> dict:
    """Return ``{"w": [fan_in, fan_out], "b": [fan_out]}``: glorot-uniform kernel, zero bias."""
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    w = jax.random.uniform(key, (fan_in, fan_out), jnp.float32, -limit, limit)
    return {"w": w, "b": jnp.zeros((fan_out,), jnp.float32)}


def dense(params: dict, x: Array) -> Array:
    """Apply ``x @ w + b``: x [B, fan_in], w [fan_in, fan_out], b [fan_out] -> [B, fan_out]."""
    return x @ params["w"] + params["b"]


def output_features(config: ModelConfig) -> int:
    """Width of the recurrent stack's last output (``rnn.output_width`` of the top layer)."""
    return rnn.output_width(config.layers[-1])


def init_model(key: Array, config: ModelConfig, in_features: int, timesteps: int) -> dict:
    """Initialise the parameters of ``config`` for windows ``[B, timesteps, in_features]``.

    Returns:
      A dict pytree (empty for ``naive``).
    """
    if config.kind == "naive":
        return {}
    k_body, k_head = jax.random.split(key)
    if config.kind == "mlp":
        return {"hidden": init_dense(k_body, timesteps * in_features, config.mlp_units),
                "head": init_dense(k_head, config.mlp_units, 1)}
    return {"layers": rnn.init_stack(k_body, config.layers, in_features),
            "head": init_dense(k_head, output_features(config), 1)}


def apply_model(config: ModelConfig, params: dict, xs: Array, *, key: Array | None = None,
                train: bool = False, target_col: int = 1,
                rates: list[tuple[Array, Array]] | None = None, dropout_rows: tuple | None = None) -> Array:
    """Predict one value per window.

    Args:
      config: the model's static structure.
      params: from ``init_model``.
      xs: windows [B, T, F].
      key: PRNG key for dropout (needed only when ``train`` and a dropout rate is > 0).
      train: enable dropout.
      target_col: feature index of the target (the naive model's output column).
      rates: optional per-layer ``(dropout, recurrent_dropout)`` scalar arrays overriding the config's
        rates (``rnn.stack``); sweeps pass them to vmap dropout rates. None = the config's rates.
      dropout_rows: ``(start, total)`` when ``xs`` is a slice of a larger batch (``rnn.stack``).
    Returns:
      y_hat [B].
    """
    if config.kind == "naive":
        return xs[:, -1, target_col]
    if config.kind == "mlp":
        flat = xs.reshape(xs.shape[0], -1)
        return dense(params["head"], jax.nn.relu(dense(params["hidden"], flat)))[:, 0]
    policy = backend.scan_policy(hoist_input=config.hoist_input, remat=config.remat)  # None = per backend
    h = rnn.stack(config.layers, params["layers"], xs, key=key, train=train, rates=rates,
                  dropout_rows=dropout_rows, policy=policy)
    return dense(params["head"], h)[:, 0]


def count_params(params: dict) -> int:
    """Return the number of scalars in ``params``."""
    return int(sum(x.size for x in jax.tree.leaves(params)))
