"""Our cells as Flax NNX cells: ``SimpleCell``, ``LSTMCell``, ``GRUCell`` (both forms), and Flax's weights in ours.

Each cell is a ``flax.nnx.nn.recurrent.RNNCellBase`` with Flax's conventions (``in_features,
hidden_features, *, ..., rngs``; ``initialize_carry``; ``num_feature_axes == 1``), so it drops into
``nnx.RNN`` and ``nnx.Bidirectional`` unchanged. Its step calls the pure step of ``jena_rnn.nn.cells``
(``simple_rnn_step``, ``lstm_step``, ``gru_step``) on ``to_params()``: the equations have one home (that
module's docstring; GRU ``h' = (1-z)*h + z*n``), and so do the initialisers (``cells.init_*``). The
parameters are ``nnx.Param``s named like the pure dict's keys (``w_x [F, G*H]``, ``w_h [H, G*H]``, ``b``
or ``b_x`` (+ ``b_h``)); ``to_params()`` / ``from_params`` move them between the two faces exactly.

Carry: ``h [..., H]``; the LSTM's is Flax's ``(c, h)`` tuple (nnx.LSTMCell's order, the reverse of our
``LSTMState(h, c)``). Inputs ``x [..., F]``: every axis but the last is a batch axis.

Flax's own cells in our layout (``params_from_flax``; exact, tested on random weights). Flax's Linear
kernels are ``[in, out]``, our row-vector convention. With ``H`` units and blocks ``[:H], [H:2H], [2H:]``:

- ``nnx.SimpleCell`` (``h' = tanh(x Wi + bi + h Wh)``): ``w_x = dense_i.kernel``, ``b = dense_i.bias``,
  ``w_h = dense_h.kernel`` (``residual=False`` only).
- ``nnx.LSTMCell`` (order i, f, g, o like ours; eight Linears, the bias on the recurrent ones):
  ``w_x = [ii | if_ | ig | io].kernel``, ``w_h = [hi | hf | hg | ho].kernel``, ``b = [hi | hf | hg | ho].bias``.
- ``nnx.GRUCell`` is the **reset-after** form with no recurrent bias (``n = tanh(x Win + bin + r*(h Whn))``),
  fused in the order r, z, n, and writes ``h' = (1-z_F)*n + z_F*h``: its ``z_F`` is our ``1-z``, so its z
  block is negated (``σ(-a) = 1-σ(a)``, exact). Ours with ``reset_after=True``:
  ``w_x = [-Ki[:, H:2H] | Ki[:, :H] | Ki[:, 2H:]]`` (``Ki = dense_i.kernel``), ``w_h`` likewise from
  ``dense_h.kernel``, ``b_x = [-bi[H:2H] | bi[:H] | bi[2H:]]`` (``bi = dense_i.bias``), ``b_h = 0``.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx
from flax.nnx.nn.recurrent import RNNCellBase

from jena_rnn.nn import cells
from jena_rnn.nn.spec import LSTMState, check_params, get_activation, param_keys

Array = jax.Array
__all__ = ["SimpleCell", "LSTMCell", "GRUCell", "params_from_flax"]


def draw_key(rngs, stream: str) -> Array:
    """A key from an ``nnx.Rngs`` (its ``stream``), an ``nnx.RngStream`` or a raw key."""
    if isinstance(rngs, nnx.Rngs):
        return rngs[stream]()
    if isinstance(rngs, nnx.RngStream):
        return rngs()
    return rngs


class _Cell(RNNCellBase):
    """Shared body of the three cells: params as ``nnx.Param``s, carry init, the reshaped step."""

    kind = ""  # "simple_rnn" | "lstm" | "gru"

    def __init__(self, in_features: int, hidden_features: int, *, reset_after: bool = False,
                 activation: str = "tanh", rngs: nnx.Rngs | None = None, params: dict | None = None):
        name = type(self).__name__
        get_activation(activation)
        self.in_features, self.hidden_features = in_features, hidden_features
        self.reset_after, self.activation = bool(reset_after), activation
        if params is None:
            if rngs is None:
                raise ValueError(f"{name}: pass rngs (to draw the initial weights) or params")
            for arg, n in (("in_features", in_features), ("hidden_features", hidden_features)):
                if not isinstance(n, int) or n < 1:
                    raise ValueError(f"{name}: {arg} must be a positive int, got {n!r}")
            params = cells.init_cell(self.kind, draw_key(rngs, "params"), in_features, hidden_features,
                                     reset_after=self.reset_after)
        got = check_params(name, self.kind, params, reset_after=self.reset_after)
        if got != (in_features, hidden_features):
            raise ValueError(f"{name}: params are for (in_features, hidden_features) = {got}, "
                             f"expected ({in_features}, {hidden_features})")
        for k in param_keys(self.kind, reset_after=self.reset_after):
            setattr(self, k, nnx.Param(jnp.asarray(params[k])))

    @classmethod
    def from_params(cls, params: dict, *, reset_after: bool = False, activation: str = "tanh",
                    rngs: nnx.Rngs | None = None):
        """Build a cell holding ``params`` (a pure-cell dict, ``jena_rnn.nn.cells.init_<cell>``'s keys).

        F and H are read from ``w_x`` and ``w_h``; ``rngs`` is unused (the weights are given), accepted
        for symmetry with the constructor.
        """
        feats, units = check_params(f"{cls.__name__}.from_params", cls.kind, params, reset_after=reset_after)
        return cls(feats, units, activation=activation, params=params,
                   **({"reset_after": reset_after} if cls.kind == "gru" else {}))

    def to_params(self) -> dict:
        """Return the pure cell's parameter dict (``w_x``, ``w_h``, ``b`` / ``b_x`` (+ ``b_h``))."""
        return {k: getattr(self, k)[...] for k in param_keys(self.kind, reset_after=self.reset_after)}

    def initialize_carry(self, input_shape: tuple[int, ...], rngs=None, carry_init=None):
        """Return the carry for inputs of shape ``[..., F]``: zeros (or ``carry_init(key, shape)``) of
        shape ``[..., H]``; the LSTM's is ``(c, h)``. ``rngs`` feeds ``carry_init`` only (its "carry" stream)."""
        shape = tuple(input_shape[:-1]) + (self.hidden_features,)
        if carry_init is None:
            leaves = [jnp.zeros(shape, jnp.float32) for _ in range(2 if self.kind == "lstm" else 1)]
        else:
            if rngs is None:
                raise ValueError(f"{type(self).__name__}.initialize_carry: carry_init needs rngs")
            leaves = [carry_init(draw_key(rngs, "carry"), shape, jnp.float32)
                      for _ in range(2 if self.kind == "lstm" else 1)]
        return tuple(leaves) if self.kind == "lstm" else leaves[0]

    @property
    def num_feature_axes(self) -> int:
        return 1

    def _step(self, params: dict, carry, x: Array):
        raise NotImplementedError

    def __call__(self, carry, inputs: Array):
        """Advance one step: ``inputs [..., F]``, carry ``[..., H]`` (LSTM ``(c, h)``) -> ``(carry', h')``.

        The batch axes are flattened to the ``[B, F]`` the pure step takes, then restored.
        """
        if inputs.shape[-1] != self.in_features:
            raise ValueError(f"{type(self).__name__}: inputs have {inputs.shape[-1]} features, expected "
                             f"in_features={self.in_features} (shape {tuple(inputs.shape)})")
        lead = inputs.shape[:-1]
        flat = jax.tree.map(lambda a: a.reshape(-1, a.shape[-1]), carry)
        new, h = self._step(self.to_params(), flat, inputs.reshape(-1, inputs.shape[-1]))
        unflat = lambda a: a.reshape(lead + a.shape[-1:])  # noqa: E731
        return jax.tree.map(unflat, new), unflat(h)


class SimpleCell(_Cell):
    """SimpleRNN cell ``h' = act(x Wx + h Wh + b)`` (``cells.simple_rnn_step``); carry h [..., H]."""

    kind = "simple_rnn"

    def __init__(self, in_features: int, hidden_features: int, *, activation: str = "tanh",
                 rngs: nnx.Rngs | None = None, params: dict | None = None):
        super().__init__(in_features, hidden_features, activation=activation, rngs=rngs, params=params)

    def _step(self, params, h, x):
        return cells.simple_rnn_step(params, h, x, activation=self.activation)


class LSTMCell(_Cell):
    """LSTM cell, order i, f, g, o (``cells.lstm_step``); carry ``(c, h)``, each [..., H], as nnx.LSTMCell's.

    Init: glorot-uniform ``w_x``, orthogonal ``w_h``, zero ``b`` but 1 on the forget block (Keras).
    """

    kind = "lstm"

    def __init__(self, in_features: int, hidden_features: int, *, activation: str = "tanh",
                 rngs: nnx.Rngs | None = None, params: dict | None = None):
        super().__init__(in_features, hidden_features, activation=activation, rngs=rngs, params=params)

    def _step(self, params, carry, x):
        c, h = carry
        state, y = cells.lstm_step(params, LSTMState(h=h, c=c), x, activation=self.activation)
        return (state.c, state.h), y


class GRUCell(_Cell):
    """GRU cell, order z, r, n, ``h' = (1-z)*h + z*n`` (``cells.gru_step``); carry h [..., H].

    ``reset_after=False`` is the lecture's form (one bias ``b_x``), True the Keras 2.3+/PyTorch form (plus
    ``b_h``); Flax's own ``nnx.GRUCell`` is the latter with ``b_h = 0`` and z negated (module docstring).
    """

    kind = "gru"

    def _step(self, params, h, x):
        return cells.gru_step(params, h, x, reset_after=self.reset_after, activation=self.activation)


def _blocks(a: Array, n: int) -> list[Array]:
    return jnp.split(jnp.asarray(a), n, axis=-1)


def params_from_flax(cell) -> tuple[dict, dict]:
    """Return ``(params, kwargs)`` of Flax's ``nnx.SimpleCell``, ``nnx.LSTMCell`` or ``nnx.GRUCell`` in our layout.

    ``params`` is the pure cell's dict (mapping: module docstring); ``kwargs`` the matching constructor
    arguments (``{"reset_after": True}`` for Flax's GRU), so ``GRUCell.from_params(params, **kwargs)``
    computes what ``cell`` does. Only the tanh/sigmoid defaults map; other ``activation_fn``/``gate_fn``
    are refused.
    """
    if not isinstance(cell, (nnx.GRUCell, nnx.LSTMCell, nnx.SimpleCell)):
        raise ValueError(f"params_from_flax: expected nnx.SimpleCell, nnx.LSTMCell or nnx.GRUCell, "
                         f"got {type(cell).__name__}")
    if getattr(cell, "gate_fn", jax.nn.sigmoid) is not jax.nn.sigmoid or cell.activation_fn is not jnp.tanh:
        raise ValueError("params_from_flax: only gate_fn=sigmoid and activation_fn=tanh map onto our cells")
    if isinstance(cell, nnx.GRUCell):
        ki, kh, bi = cell.dense_i.kernel[...], cell.dense_h.kernel[...], cell.dense_i.bias[...]
        zrn = lambda a: jnp.concatenate([-a[1], a[0], a[2]], axis=-1)  # noqa: E731 -- Flax's r, z, n
        return ({"w_x": zrn(_blocks(ki, 3)), "w_h": zrn(_blocks(kh, 3)), "b_x": zrn(_blocks(bi, 3)),
                 "b_h": jnp.zeros_like(bi)}, {"reset_after": True})
    if isinstance(cell, nnx.LSTMCell):
        def cat(names, attr):
            return jnp.concatenate([getattr(getattr(cell, n), attr)[...] for n in names], axis=-1)
        hs = ("hi", "hf", "hg", "ho")
        return {"w_x": cat(("ii", "if_", "ig", "io"), "kernel"), "w_h": cat(hs, "kernel"), "b": cat(hs, "bias")}, {}
    if cell.residual:  # nnx.SimpleCell
        raise ValueError("params_from_flax: nnx.SimpleCell(residual=True) adds h, which ours does not")
    return {"w_x": cell.dense_i.kernel[...], "w_h": cell.dense_h.kernel[...], "b": cell.dense_i.bias[...]}, {}
