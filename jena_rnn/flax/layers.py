"""Recurrent layers as NNX Modules over the tuned ``rnn.unroll``: ``SimpleRNN``, ``LSTM``, ``GRU``, ``Bidirectional``.

Our speed (``jena_rnn.nn.rnn.unroll``: one ``lax.scan``, the backend's measured ``ScanPolicy``), Flax's
ergonomics (``nnx.Rngs``, ``model.train()`` / ``model.eval()``, ``nnx.jit``, ``nnx.Optimizer``), Keras's
argument names where Flax has none (``dropout``, ``recurrent_dropout``, ``return_sequences``,
``go_backwards``, ``reset_after``, ``activation``, ``merge_mode``). A layer maps ``inputs [B, T, F]`` to
``[B, T, H]`` (``return_sequences``) or the last output ``[B, H]``; ``return_carry`` (nnx.RNN's word)
returns ``(carry, outputs)`` instead, the carry being h [B, H] or the LSTM's ``(c, h)``. Its cell
(``layer.cell``, a ``jena_rnn.flax.cells`` cell) holds the parameters.

Dropout is variational (Gal & Ghahramani, ``rnn.dropout_masks``): one input mask [B, F] and one recurrent
mask [B, H] per sequence, reused at every step. It follows ``nnx.Dropout``: active unless
``deterministic`` (a constructor argument and attribute that ``model.eval()`` sets True and
``model.train()`` False, or ``nnx.view(model, deterministic=...)``; a call's ``deterministic=`` wins);
the key comes from the call's ``rngs`` (an ``nnx.Rngs``, whose "dropout" stream is used, an
``RngStream`` or a key) or else from the stream forked at construction (``rngs.dropout.fork()``).
"""
from __future__ import annotations

import jax
from flax import nnx

from jena_rnn.flax.cells import GRUCell, LSTMCell, SimpleCell, draw_key
from jena_rnn.nn import models, rnn
from jena_rnn.nn.spec import LSTMState, shape_of

Array = jax.Array
__all__ = ["SimpleRNN", "LSTM", "GRU", "Bidirectional", "Forecaster", "LAYERS"]


def _check_inputs(name: str, inputs, in_features: int) -> None:
    shape = shape_of(inputs)
    if len(shape) != 3:
        raise ValueError(f"{name}: inputs must be [B, T, F] (rank 3), got shape {shape}")
    if shape[2] != in_features:
        raise ValueError(f"{name}: inputs have {shape[2]} features, expected in_features={in_features}")


def _fork(rngs, own_stream: bool = False):
    """The dropout stream a Module keeps (``nnx.Dropout``'s way), or None (also for an Rngs without one,
    e.g. linen's init, which passes "params" only).

    ``own_stream``: only an explicit "dropout" stream counts, never nnx's fallback to "default" (linen's
    convention: ``bridge.ToLinen`` always adds a "default" stream seeded 0, which would otherwise give one
    fixed mask on every call when the user passed no dropout rng).
    """
    if isinstance(rngs, nnx.Rngs):
        if own_stream and "dropout" not in rngs:
            return nnx.data(None)
        try:
            return rngs["dropout"].fork()
        except KeyError:
            return nnx.data(None)
    return rngs.fork() if isinstance(rngs, nnx.RngStream) else nnx.data(None)


def _dropout_key(name: str, rates: tuple[float, float], train: bool, rngs, own):
    """The key for this call's masks: None when no mask is drawn."""
    if not train or not any(rates):
        return None
    source = own if rngs is None else rngs
    if source is None:
        raise ValueError(f"{name}: dropout={rates[0]}, recurrent_dropout={rates[1]} in training mode "
                         "(deterministic=False) needs rngs: pass rngs=nnx.Rngs(...) to the constructor or "
                         "the call, or call model.eval() (linen: apply(..., rngs={'dropout': key}), or "
                         "deterministic=True)")
    return draw_key(source, "dropout")


def _lstm_state(name: str, carry) -> LSTMState:
    """The LSTM carry as ``rnn.unroll``'s state: an ``LSTMState`` as it is, a pair as Flax's ``(c, h)``."""
    if isinstance(carry, LSTMState):  # a NamedTuple, so test it before the plain pair
        return carry
    if isinstance(carry, (tuple, list)) and len(carry) == 2:
        return LSTMState(h=carry[1], c=carry[0])
    raise ValueError(f"{name}: initial_carry must be the LSTM's (c, h) pair (as nnx.LSTMCell's carry) or an "
                     f"rnn.LSTMState, got {type(carry).__name__} of shape {shape_of(carry)}")


class _Recurrent(nnx.Module):
    """One recurrent layer over ``rnn.unroll`` (module docstring); subclasses name the cell."""

    cell_class: type = SimpleCell

    def __init__(self, in_features: int, hidden_features: int, *, activation: str = "tanh",
                 reset_after: bool = False, dropout: float = 0.0, recurrent_dropout: float = 0.0,
                 return_sequences: bool = False, go_backwards: bool = False, return_carry: bool = False,
                 padding: str = "right", deterministic: bool = False, rngs: nnx.Rngs | None = None,
                 params: dict | None = None, dropout_stream_required: bool = False):
        name = type(self).__name__
        for arg, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
            if not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                raise ValueError(f"{name}: {arg} must be a number in [0, 1), got {rate!r}")
        if padding not in ("right", "pre"):
            raise ValueError(f"{name}: padding must be 'right' or 'pre', got {padding!r}")
        kind = self.cell_class.kind
        if kind != "gru" and reset_after:
            raise ValueError(f"{name}: reset_after is the GRU's form; {name} has none")
        self.cell = self.cell_class(in_features, hidden_features, activation=activation, rngs=rngs, params=params,
                                    **({"reset_after": reset_after} if kind == "gru" else {}))
        self.in_features, self.hidden_features = in_features, hidden_features
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.return_sequences, self.go_backwards = return_sequences, go_backwards
        self.return_carry, self.padding, self.deterministic = return_carry, padding, deterministic
        self.rngs = _fork(rngs, dropout_stream_required)

    @classmethod
    def from_params(cls, params: dict, **kwargs):
        """Build a layer holding ``params`` (a pure-cell dict; F, H read from it); kwargs as the constructor's."""
        cell = cls.cell_class.from_params(params, **{k: kwargs[k] for k in ("reset_after", "activation")
                                                     if k in kwargs})
        return cls(cell.in_features, cell.hidden_features, params=params, **kwargs)

    def options(self) -> dict:
        """The constructor's keyword arguments that shape the computation (a ``Bidirectional`` copies them)."""
        out = {"activation": self.cell.activation, "dropout": self.dropout, "padding": self.padding,
               "recurrent_dropout": self.recurrent_dropout, "return_sequences": self.return_sequences}
        return {**out, **({"reset_after": self.cell.reset_after} if self.cell.kind == "gru" else {})}

    def set_view(self, deterministic: bool | None = None):
        """``nnx.view``'s hook, as ``nnx.Dropout``'s."""
        if deterministic is not None:
            self.deterministic = deterministic

    def __call__(self, inputs: Array, *, lengths: Array | None = None, mask: Array | None = None,
                 initial_carry=None, deterministic: bool | None = None, rngs=None,
                 return_carry: bool | None = None):
        """Run the layer over ``inputs [B, T, F]``.

        Args:
          lengths: true lengths [B] (with the constructor's ``padding``), or mask: [B, T] bool (True = real
            step). Padded steps leave the carry unchanged and output the carried h (``rnn.unroll``).
          initial_carry: h [B, H] or the LSTM's ``(c, h)``; None = zeros.
          deterministic, rngs: dropout off / its key source (module docstring).
          return_carry: override the constructor's.
        Returns:
          outputs [B, T, H] or [B, H]; with return_carry ``(carry, outputs)``.
        """
        name, kind = type(self).__name__, self.cell.kind
        _check_inputs(name, inputs, self.in_features)
        train = not (self.deterministic if deterministic is None else deterministic)
        key = _dropout_key(name, (self.dropout, self.recurrent_dropout), train, rngs, self.rngs)
        if kind == "lstm" and initial_carry is not None:
            initial_carry = _lstm_state(name, initial_carry)
        final, ys = rnn.unroll(kind, self.cell.to_params(), inputs, state=initial_carry,
                               go_backwards=self.go_backwards, return_sequences=self.return_sequences,
                               lengths=lengths, mask=mask, padding=self.padding, reset_after=self.cell.reset_after,
                               activation=self.cell.activation, dropout=self.dropout,
                               recurrent_dropout=self.recurrent_dropout, key=key, train=train)
        carry = (final.c, final.h) if kind == "lstm" else final
        return (carry, ys) if (self.return_carry if return_carry is None else return_carry) else ys


class SimpleRNN(_Recurrent):
    """Keras's SimpleRNN, ``h' = act(x Wx + h Wh + b)``, over ``rnn.unroll`` (``jena_rnn.flax.layers``)."""

    cell_class = SimpleCell


class LSTM(_Recurrent):
    """Keras's LSTM (order i, f, g, o; forget bias 1 at init); carry ``(c, h)`` as nnx.LSTMCell's."""

    cell_class = LSTMCell


class GRU(_Recurrent):
    """Keras's GRU, ``h' = (1-z)*h + z*n``; ``reset_after=False`` is the lecture's form, True Keras 2.3+'s."""

    cell_class = GRUCell


LAYERS = {"simple_rnn": SimpleRNN, "lstm": LSTM, "gru": GRU}


class Bidirectional(nnx.Module):
    """Keras's Bidirectional over ``rnn.bidirectional``: a forward and a backward layer, merged.

    The backward layer runs ``reverse=True``: its outputs are aligned with the input's time axis, and with
    ``return_sequences=False`` its output is its last processed step (t = 0). Both layers must be of one
    class, size and ``options()`` (one ``rnn.bidirectional`` call; the forward layer's ``return_sequences``
    applies); neither may ``go_backwards``. ``backward_layer=None`` draws a fresh copy of the forward
    layer from ``rngs``. One dropout key per call, split into one per direction.

    Args:
      merge_mode: "concat" ([.., 2H], forward first) | "sum" | "ave" | "mul".
    """

    def __init__(self, forward_layer: _Recurrent, backward_layer: _Recurrent | None = None, *,
                 merge_mode: str = "concat", return_carry: bool = False, deterministic: bool = False,
                 rngs: nnx.Rngs | None = None):
        if merge_mode not in rnn.MERGE:
            raise ValueError(f"Bidirectional: merge_mode must be one of {tuple(rnn.MERGE)}, got {merge_mode!r}")
        if not isinstance(forward_layer, _Recurrent):
            raise ValueError(f"Bidirectional: forward_layer must be a jena_rnn.flax layer (SimpleRNN, LSTM, GRU), "
                             f"got {type(forward_layer).__name__}")
        fw = forward_layer
        if backward_layer is None:
            if rngs is None:
                raise ValueError("Bidirectional: pass backward_layer, or rngs to draw its weights")
            backward_layer = type(fw)(fw.in_features, fw.hidden_features, **fw.options(), rngs=rngs)
        bw = backward_layer
        if (type(bw), bw.in_features, bw.hidden_features, bw.options()) != \
                (type(fw), fw.in_features, fw.hidden_features, fw.options()):
            raise ValueError(f"Bidirectional: backward_layer must match forward_layer: got "
                             f"{type(bw).__name__}({bw.in_features}, {bw.hidden_features}, {bw.options()}), expected "
                             f"{type(fw).__name__}({fw.in_features}, {fw.hidden_features}, {fw.options()})")
        for arg, layer in (("forward_layer", fw), ("backward_layer", bw)):
            if layer.go_backwards:
                raise ValueError(f"Bidirectional: {arg} has go_backwards=True; Bidirectional runs the backward "
                                 "direction itself")
        self.forward_layer, self.backward_layer = fw, bw
        self.merge_mode, self.return_carry, self.deterministic = merge_mode, return_carry, deterministic
        self.rngs = _fork(rngs)

    set_view = _Recurrent.set_view

    def __call__(self, inputs: Array, *, lengths: Array | None = None, mask: Array | None = None,
                 deterministic: bool | None = None, rngs=None, return_carry: bool | None = None):
        """Run both directions over ``inputs [B, T, F]`` (arguments as the layers'; no ``initial_carry``).

        Returns:
          outputs [B, T, 2H] / [B, 2H] for concat, else [B, T, H] / [B, H]; with return_carry
          ``((forward carry, backward carry), outputs)``.
        """
        fw, bw = self.forward_layer, self.backward_layer
        _check_inputs("Bidirectional", inputs, fw.in_features)
        train = not (self.deterministic if deterministic is None else deterministic)
        own = self.rngs if self.rngs is not None else fw.rngs
        key = _dropout_key("Bidirectional", (fw.dropout, fw.recurrent_dropout), train, rngs, own)
        (f_c, b_c), ys = rnn.bidirectional(
            fw.cell.kind, {"forward": fw.cell.to_params(), "backward": bw.cell.to_params()}, inputs,
            merge_mode=self.merge_mode, return_sequences=fw.return_sequences, key=key, lengths=lengths, mask=mask,
            padding=fw.padding, reset_after=fw.cell.reset_after, activation=fw.cell.activation,
            dropout=fw.dropout, recurrent_dropout=fw.recurrent_dropout, train=train)
        if fw.cell.kind == "lstm":
            f_c, b_c = (f_c.c, f_c.h), (b_c.c, b_c.h)
        return ((f_c, b_c), ys) if (self.return_carry if return_carry is None else return_carry) else ys


class Forecaster(nnx.Module):
    """The lecture's recurrent forecaster, one layer -> Dense(1): ``y_hat = dense(layer(xs))[:, 0]``, [B].

    ``to_params()`` is ``jena_rnn.nn.models``' "rnn" model dict (``{"layers": [cell params], "head": {"w":
    [H, 1], "b": [1]}}``), so ``models.apply_model`` on it computes the same; a raw key as ``rngs`` draws the
    masks ``apply_model(key=key)`` draws (split once, as ``rnn.stack`` does).
    """

    def __init__(self, in_features: int, hidden_features: int = 32, *, cell: str = "gru", rngs: nnx.Rngs | None = None,
                 params: dict | None = None, **layer_kwargs):
        if cell not in LAYERS:
            raise ValueError(f"Forecaster: cell must be one of {tuple(LAYERS)}, got {cell!r}")
        for arg in ("return_sequences", "return_carry"):
            if layer_kwargs.get(arg):
                raise ValueError(f"Forecaster: {arg}=True is not a forecaster's: it predicts one value per window "
                                 "from the layer's last output")
        if params is not None:
            _check_forecaster_params(params, hidden_features)
        if params is None:
            if rngs is None:
                raise ValueError("Forecaster: pass rngs (to draw the initial weights) or params")
            body = LAYERS[cell](in_features, hidden_features, rngs=rngs, **layer_kwargs)
            head = models.init_dense(draw_key(rngs, "params"), hidden_features, 1)
        else:
            body = LAYERS[cell].from_params(params["layers"][0], rngs=rngs, **layer_kwargs)
            head = params["head"]
        self.rnn = body
        self.w, self.b = nnx.Param(head["w"]), nnx.Param(head["b"])

    @classmethod
    def from_params(cls, params: dict, *, cell: str = "gru", rngs: nnx.Rngs | None = None, **layer_kwargs):
        """Build from a ``models.init_model`` "rnn" dict with one layer (kwargs: the layer's)."""
        _check_forecaster_params(params, None)
        feats, units = params["layers"][0]["w_x"].shape[0], params["layers"][0]["w_h"].shape[0]
        return cls(feats, units, cell=cell, params=params, rngs=rngs, **layer_kwargs)

    def to_params(self) -> dict:
        return {"layers": [self.rnn.cell.to_params()], "head": {"w": self.w[...], "b": self.b[...]}}

    def __call__(self, xs: Array, *, deterministic: bool | None = None, rngs=None) -> Array:
        """Predict one value per window ``xs [B, T, F]`` -> ``y_hat [B]``."""
        if isinstance(rngs, jax.Array):
            rngs = jax.random.split(rngs, 1)[0]
        h = self.rnn(xs, deterministic=deterministic, rngs=rngs, return_carry=False)
        return models.dense({"w": self.w[...], "b": self.b[...]}, h)[:, 0]


def _check_forecaster_params(params, units: int | None) -> None:
    """Refuse a model dict that is not one recurrent layer -> Dense(1) (a stack would run only its first layer)."""
    layers = params.get("layers") if isinstance(params, dict) else None
    if not isinstance(layers, (list, tuple)) or len(layers) != 1 or not isinstance(params.get("head"), dict):
        got = f"{len(layers)} layers" if isinstance(layers, (list, tuple)) else f"keys {sorted(params)}" \
            if isinstance(params, dict) else type(params).__name__
        raise ValueError(f"Forecaster: params must be a one-layer 'rnn' model dict {{'layers': [cell params], "
                         f"'head': {{'w': [H, 1], 'b': [1]}}}}, got {got}; a stack runs through "
                         "jena_rnn.nn.models.apply_model")
    h = layers[0]["w_h"].shape[0] if isinstance(layers[0], dict) and "w_h" in layers[0] else None
    w = shape_of(params["head"].get("w"))
    if h is None or w != (h, 1) or (units is not None and units != h):
        raise ValueError(f"Forecaster: params' head w must be [H, 1] = [{h}, 1] for a layer of {h} units"
                         f"{'' if units is None else f' (hidden_features={units})'}, got {w}")
