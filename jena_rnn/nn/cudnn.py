"""cuDNN's LSTM (``jax.experimental.rnn.lstm``) behind ``rnn.unroll``: our params in cuDNN's layout and back.

The layout, as jax.experimental.rnn's module docstring documents it (one layer here; a bidirectional layer
is two "pseudo-layers", forward then reverse): one flat float32 vector holding, per pseudo-layer,
``W_ih [4H, F]`` then ``W_hh [4H, H]``; after all the matrices, per pseudo-layer, ``b_ih [4H]`` then
``b_hh [4H]``. The gate blocks are ``i, f, g, o``, cuDNN's CUDNN_LSTM order, which is ours (cells.py) and
``lstm_ref``'s: packing is a transpose (our row-vector ``x @ w_x`` is ``W_ih = w_x.T``), no block
permutation. (``jax.experimental.rnn.swap_lstm_gates`` moves blocks to MIOpen's ``i, f, o, g``: ROCm, not
used here; ``backend`` turns this path on for CUDA only.)

Biases: our LSTM has one bias ``b`` where cuDNN adds two, ``b_ih + b_hh``. ``pack_lstm`` writes
``b_ih = b`` and ``b_hh = 0``; ``unpack_lstm`` returns ``b = b_ih + b_hh`` (one float32 rounding, unless
``b_hh`` is zero). So params -> weights -> params is exact.

Padding: cuDNN's ``seq_lengths`` mean right padding (real steps first); cuDNN's outputs are 0 at padded
steps, ours (rnn.py, Keras's masking) the carried ``h``, so ``lstm_unroll_cudnn`` puts the final ``h``
there. A length of 0 keeps the initial state (the kernel is given length 1, then overruled).

vmap: the cuDNN primitive has no batching rule, so under ``vmap`` (a sweep's members) the call runs
``jax.experimental.rnn.lstm_ref`` (a ``lax.scan``) instead, through ``jax.custom_batching.custom_vmap``;
the backward pass is a ``custom_vjp`` whose rule is cuDNN's own backward (``jax.vjp`` of the kernel,
which recomputes its forward once) or, under vmap, the scan's.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import rnn as jrnn

from jena_rnn.nn.spec import LSTMState, check_params, shape_of

Array = jax.Array


def _directions(params) -> list[dict]:
    """[params] or [forward, backward] for ``{"forward": p, "backward": p}`` (a bidirectional layer)."""
    return [params["forward"], params["backward"]] if "forward" in params else [params]


def pack_lstm(params) -> Array:
    """Pack LSTM params into cuDNN's flat weight vector (module docstring: layout and biases).

    Args:
      params: w_x [F, 4H], w_h [H, 4H], b [4H] (``cells.init_lstm``), or ``{"forward": p,
        "backward": p}`` for a bidirectional layer (two pseudo-layers).
    Returns:
      weights [get_num_params_in_lstm(F, H, 1, bidirectional)], float32.
    """
    dirs = _directions(params)
    for p in dirs:
        check_params("pack_lstm", "lstm", p)
    mats = [m for p in dirs for m in (jnp.asarray(p["w_x"]).T, jnp.asarray(p["w_h"]).T)]
    biases = [v for p in dirs for v in (jnp.asarray(p["b"]), jnp.zeros_like(jnp.asarray(p["b"])))]
    return jnp.concatenate([a.reshape(-1) for a in mats + biases]).astype(jnp.float32)


def unpack_lstm(weights: Array, in_features: int, units: int, *, bidirectional: bool = False):
    """Invert ``pack_lstm``: cuDNN's flat weights -> our params, ``b = b_ih + b_hh``.

    Args:
      weights: [get_num_params_in_lstm(F, H, 1, bidirectional)].   in_features: F.   units: H.
    Returns:
      {"w_x": [F, 4H], "w_h": [H, 4H], "b": [4H]}, or {"forward": ..., "backward": ...}.
    """
    want = jrnn.get_num_params_in_lstm(in_features, units, 1, bidirectional)
    if shape_of(weights) != (want,):
        raise ValueError(f"unpack_lstm: weights must have shape ({want},) for F={in_features}, H={units}, "
                         f"bidirectional={bidirectional}, got {shape_of(weights)}")
    w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(jnp.asarray(weights), in_features, units, 1, bidirectional)
    dirs = [{"w_x": w_ih[k].T, "w_h": w_hh[k].T, "b": b_ih[k] + b_hh[k]} for k in range(len(w_ih))]
    return {"forward": dirs[0], "backward": dirs[1]} if bidirectional else dirs[0]


def allowed(cell: str, xs: Array, params: dict, *, activation: str = "tanh", recurrent_dropout=0.0,
            mask: Array | None = None, lengths: Array | None = None, padding: str = "right",
            reverse: bool = False, go_backwards: bool = False) -> tuple[bool, str]:
    """Say whether ``rnn.unroll`` with these arguments can run as cuDNN's LSTM, and why not.

    Args: as ``rnn.unroll``'s; ``recurrent_dropout`` is the rate in effect (0 when not training).
    Returns:
      (True, "") or (False, the reason). cuDNN's LSTM is fixed: sigmoid gates and tanh, no recurrent
      dropout, float32 here, right padding given as lengths.
    """
    why = []
    if cell != "lstm":
        why.append(f"cell {cell!r} (cuDNN's path here is the LSTM only)")
    if activation != "tanh":
        why.append(f"activation {activation!r} (cuDNN's LSTM uses tanh)")
    if not isinstance(recurrent_dropout, (int, float)) or recurrent_dropout > 0:
        why.append(f"recurrent dropout {recurrent_dropout!r} (cuDNN's LSTM has none; a traced rate counts)")
    dtypes = {jnp.dtype(xs.dtype)} | {jnp.dtype(getattr(v, "dtype", np.float32)) for v in params.values()}
    if dtypes != {jnp.dtype(jnp.float32)}:
        why.append(f"dtypes {sorted(map(str, dtypes))} (jax.experimental.rnn takes float32 only)")
    if mask is not None:
        why.append("a mask (cuDNN takes lengths with right padding)")
    if lengths is not None and padding != "right":
        why.append(f"padding {padding!r} (cuDNN's seq_lengths mean right padding)")
    if lengths is not None and (reverse or go_backwards):
        why.append("reverse/go_backwards with lengths (a padded sequence would need a per-row flip)")
    return (not why, "; ".join(why))


def _kernel(x, h0, c0, w, seq, *, in_features: int, units: int):
    """cuDNN: x [B, T, F], h0/c0 [1, B, H], w packed, seq [B] int32 -> (y [B, T, H], h_n, c_n [1, B, H])."""
    return jrnn.lstm(x, h0, c0, w, seq, in_features, units, 1, 0.0, False)  # 1 layer, no dropout, one way


def _reference(x, h0, c0, w, seq, *, in_features: int, units: int):
    """The same through ``lstm_ref`` (one ``lax.scan``; runs anywhere and under vmap)."""
    w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(w, in_features, units, 1, False)
    return jrnn.lstm_ref(x, h0, c0, w_ih, w_hh, b_ih, b_hh, seq, in_features, units, 1, 0.0, False)


def _batched(fn):
    """A custom_vmap rule running ``vmap(fn)`` over every argument (unbatched ones broadcast)."""
    def rule(axis_size, in_batched, *args):
        args = [a if b else jnp.broadcast_to(a, (axis_size, *a.shape)) for a, b in zip(args, in_batched)]
        out = jax.vmap(fn)(*args)
        return out, jax.tree.map(lambda _: True, out)
    return rule


def _vjp(fn, x, h0, c0, w, seq, dy, dh, dc):
    _, pull = jax.vjp(lambda x, h0, c0, w: fn(x, h0, c0, w, seq), x, h0, c0, w)
    return pull((dy, dh, dc))


def _call(x, h0, c0, w, seq, *, in_features: int, units: int):
    """cuDNN's kernel, or the scan under vmap; differentiable either way (module docstring)."""
    kernel = partial(_kernel, in_features=in_features, units=units)
    ref = partial(_reference, in_features=in_features, units=units)
    forward = jax.custom_batching.custom_vmap(kernel)
    forward.def_vmap(_batched(ref))
    backward = jax.custom_batching.custom_vmap(partial(_vjp, kernel))
    backward.def_vmap(_batched(partial(_vjp, ref)))

    @jax.custom_vjp
    def run(x, h0, c0, w, seq):
        return forward(x, h0, c0, w, seq)

    def fwd(x, h0, c0, w, seq):
        return forward(x, h0, c0, w, seq), (x, h0, c0, w, seq)

    def bwd(res, g):
        return (*backward(*res, *g), None)

    run.defvjp(fwd, bwd)
    return run(x, h0, c0, w, seq)


def lstm_unroll_cudnn(params: dict, xs: Array, *, state: LSTMState | None = None,
                      lengths: Array | None = None, reverse: bool = False, go_backwards: bool = False,
                      return_sequences: bool = True):
    """Run an LSTM through cuDNN with ``rnn.unroll("lstm", ...)``'s arguments and results.

    Args:
      params: w_x [F, 4H], w_h [H, 4H], b [4H].   xs: inputs [B, T, F] (dropout already applied).
      state: initial LSTMState(h, c), each [B, H]; None = zeros.
      lengths: [B] true lengths, right padding (``allowed``); padded steps output the final h.
      reverse, go_backwards: as ``rnn.unroll`` (without lengths): the time axis is flipped around the call.
      return_sequences: ys [B, T, H] (True) or the final h [B, H].
    Returns:
      (LSTMState(h [B, H], c [B, H]), ys [B, T, H] or [B, H]), the values ``rnn.unroll`` returns.
    """
    feats, units = check_params("lstm_unroll_cudnn", "lstm", params)
    batch, steps, _ = xs.shape
    if state is None:
        state = LSTMState(h=jnp.zeros((batch, units), xs.dtype), c=jnp.zeros((batch, units), xs.dtype))
    x = jnp.flip(xs, 1) if reverse or go_backwards else xs
    raw = jnp.full((batch,), steps, jnp.int32) if lengths is None else jnp.asarray(lengths, jnp.int32)
    seq = jnp.clip(raw, 1, steps)
    y, h_n, c_n = _call(x, state.h[None], state.c[None], pack_lstm(params), seq, in_features=feats, units=units)
    empty = (raw <= 0)[:, None]
    final = LSTMState(h=jnp.where(empty, state.h, h_n[0]), c=jnp.where(empty, state.c, c_n[0]))
    if not return_sequences:
        return final, final.h
    if lengths is not None:
        valid = jnp.arange(steps)[None, :, None] < raw[:, None, None]
        y = jnp.where(valid, y, final.h[:, None, :])
    return final, (jnp.flip(y, 1) if reverse else y)
