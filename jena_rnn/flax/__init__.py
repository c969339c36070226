"""The Flax face: our cells and the tuned ``rnn.unroll`` as Flax NNX (and, through the bridge, linen) modules.

``import jena_rnn.flax as jflax`` (or ``from jena_rnn import flax as jflax``). Inside this package
``flax`` always means the real Flax (absolute imports); only the attribute path ``jena_rnn.flax`` is ours.

- ``cells``: ``SimpleCell``, ``LSTMCell``, ``GRUCell`` (``reset_after``), ``flax.nnx`` RNN cells that drop
  into ``nnx.RNN`` / ``nnx.Bidirectional`` and call ``jena_rnn.nn.cells``' pure steps; ``to_params()`` /
  ``from_params``; ``params_from_flax`` maps Flax's own cells' weights onto ours (exact).
- ``layers``: ``SimpleRNN``, ``LSTM``, ``GRU``, ``Bidirectional`` over ``rnn.unroll`` / ``rnn.bidirectional``
  (variational dropout from an ``nnx.Rngs`` stream, ``model.eval()``), and ``Forecaster`` (layer -> Dense(1),
  ``nn.models``' "rnn" model).
- ``linen``: the same layers as linen modules (``flax.nnx.bridge.ToLinen``).

This wing imports ``jena_rnn.config``, ``backend``, ``atomic`` and ``jena_rnn.nn`` only. docs/flax.md has the
weight mapping and the dropout conventions.
"""
from jena_rnn.flax import linen
from jena_rnn.flax.cells import GRUCell, LSTMCell, SimpleCell, params_from_flax
from jena_rnn.flax.layers import GRU, LSTM, LAYERS, Bidirectional, Forecaster, SimpleRNN

__all__ = ["GRUCell", "LSTMCell", "SimpleCell", "params_from_flax", "GRU", "LSTM", "LAYERS", "Bidirectional",
           "Forecaster", "SimpleRNN", "linen"]
