"""Training state and optimisers: what every task carries from step to step.

The optimiser is ``optax.inject_hyperparams`` over RMSprop, Adam or SGD with every hyperparameter explicit, so
that the learning rate (and RMSprop's rho) live in ``opt_state``, where a sweep can vmap them. RMSprop follows
Keras: ``w -= lr * g / sqrt(nu + eps)`` (epsilon inside the square root; PyTorch puts it outside).
"""
from __future__ import annotations

from typing import Any, NamedTuple

import jax
import optax

from jena_rnn.config import OptimConfig

Array = jax.Array


class TrainState(NamedTuple):
    """Everything a training run carries from step to step (a pytree, checkpointed whole)."""

    params: dict  # model parameters (models.init_model)
    opt_state: Any  # optax state of make_optimizer(config.optim)
    step: Array  # int32 [] global step count
    key: Array  # uint32 [2] PRNG key: split every step for the batch draw and dropout masks


def make_optimizer(cfg: OptimConfig) -> optax.GradientTransformation:
    """Build the optimiser of ``cfg`` with every hyperparameter explicit (no library defaults)."""
    if cfg.name == "rmsprop":
        opt = optax.inject_hyperparams(optax.rmsprop, static_args=("eps_in_sqrt",))(
            learning_rate=cfg.learning_rate, decay=cfg.decay, eps=cfg.eps,
            initial_scale=cfg.initial_scale, eps_in_sqrt=cfg.eps_in_sqrt,
            momentum=cfg.momentum or None)
    elif cfg.name == "adam":
        opt = optax.inject_hyperparams(optax.adam)(learning_rate=cfg.learning_rate, eps=cfg.eps)
    else:
        opt = optax.inject_hyperparams(optax.sgd)(learning_rate=cfg.learning_rate,
                                                  momentum=cfg.momentum or None)
    if cfg.clip_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(cfg.clip_norm), opt)
    return opt
