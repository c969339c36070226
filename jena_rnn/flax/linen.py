"""The Flax face's layers for linen users: ``SimpleRNN``, ``LSTM``, ``GRU``, ``Forecaster`` as linen Modules.

Each is a factory returning ``flax.nnx.bridge.ToLinen`` over the NNX layer of ``jena_rnn.flax.layers``
(``bridge.to_linen``; Flax's public bridge API): it takes the NNX layer's arguments (``GRU(in_features=14, hidden_features=32, reset_after=False)``, no
``rngs``), ``init`` draws the weights from linen's "params" rng, and the weights live in the "params"
collection under the NNX attribute names (``variables["params"]["cell"]["w_x"]``, ...). Dropout as in
linen: ``apply(variables, xs, deterministic=False, rngs={"dropout": key})``; ``deterministic=True`` (or
rates of 0) needs no rng, and training-mode dropout without a "dropout" rng is refused (never a fixed
mask from the bridge's "default" stream). ``Bidirectional`` takes layer instances, so linen users build it inside an
NNX module and wrap that (``nnx.bridge.ToLinen``).
"""
from __future__ import annotations

from flax.nnx import bridge

from jena_rnn.flax import layers

__all__ = ["SimpleRNN", "LSTM", "GRU", "Forecaster"]


def _linen(nnx_class: type):
    def make(*args, name: str | None = None, **kwargs) -> bridge.ToLinen:
        # linen's Dropout draws only from a "dropout" rng; ToLinen's own "default" stream (seed 0) must not
        # stand in for it, or a forgotten rngs= would give the same mask on every call
        return bridge.to_linen(nnx_class, *args, name=name, dropout_stream_required=True, **kwargs)

    make.__name__ = make.__qualname__ = nnx_class.__name__
    make.__doc__ = (f"Return a linen Module (``bridge.ToLinen``) over ``jena_rnn.flax.{nnx_class.__name__}``; "
                    "arguments as its constructor's, without ``rngs``; ``name``: the linen submodule name.")
    return make


SimpleRNN = _linen(layers.SimpleRNN)
LSTM = _linen(layers.LSTM)
GRU = _linen(layers.GRU)
Forecaster = _linen(layers.Forecaster)
