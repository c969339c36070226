"""Run cells over sequences: ``unroll`` (one ``lax.scan``), variational dropout, ``bidirectional``, ``stack``.

Sequences are batch-major ``xs [B, T, F]`` at the API and time-major inside the scan. Masking follows
Keras: at a padded step the carry is left unchanged and the output is the carried ``h``. Dropout is
Gal & Ghahramani's variational dropout: one input mask ``[B, F]`` and one recurrent mask ``[B, H]`` per
sequence, reused at every step, scaled by ``1 / keep``.
"""
from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp

from jena_rnn import backend
from jena_rnn.backend import ScanPolicy
from jena_rnn.config import LayerConfig
from jena_rnn.nn import cudnn
from jena_rnn.nn.cells import (CELL_FNS, check_cell, check_params, check_state, get_activation, init_cell,
                               input_projection, shape_of, zero_state)

Array = jax.Array
MERGE = {"concat": lambda a, b: jnp.concatenate([a, b], axis=-1), "sum": lambda a, b: a + b,
         "ave": lambda a, b: (a + b) / 2, "mul": lambda a, b: a * b}


def _is_number(rate) -> bool:
    return isinstance(rate, (int, float))


def _active(rate) -> bool:
    """Whether dropout at ``rate`` needs a mask: a Python rate > 0, or any array (a traced sweep rate)."""
    return rate is not None and (not _is_number(rate) or rate > 0)


def _validate(cell: str, params: dict, xs: Array, *, state, lengths, mask, padding: str,
              activation: str, dropout: float, recurrent_dropout: float, key, train: bool,
              reset_after: bool) -> int:
    """Check the sequence arguments before tracing (the params and carry: ``cells.check_params`` and
    ``check_state``); return H. Errors name the argument and the shapes."""
    check_cell(cell)
    get_activation(activation)
    if xs.ndim != 3:
        raise ValueError(f"unroll: xs must be [B, T, F] (rank 3), got shape {shape_of(xs)}")
    feats, units = check_params("unroll", cell, params, reset_after=reset_after)
    batch = xs.shape[0]
    if xs.shape[2] != feats:
        raise ValueError(f"unroll: xs has {xs.shape[2]} features but params['w_x'] expects {feats} "
                         f"(shape {shape_of(params['w_x'])})")
    for name, rate in (("dropout", dropout), ("recurrent_dropout", recurrent_dropout)):
        if _is_number(rate) and not 0.0 <= rate < 1.0:
            raise ValueError(f"unroll: {name} must be in [0, 1), got {rate!r}")
        if _active(rate) and train and key is None:
            raise ValueError(f"unroll: {name}={rate} with train=True needs a PRNG key, got key=None")
    if lengths is not None and mask is not None:
        raise ValueError("unroll: pass lengths or mask, not both")
    if lengths is not None and shape_of(lengths) != (batch,):
        raise ValueError(f"unroll: lengths must have shape (B,) = ({batch},), got {shape_of(lengths)}")
    if mask is not None and shape_of(mask) != xs.shape[:2]:
        raise ValueError(f"unroll: mask must have shape (B, T) = {xs.shape[:2]}, got {shape_of(mask)}")
    if padding not in ("right", "pre"):
        raise ValueError(f"unroll: padding must be 'right' or 'pre', got {padding!r}")
    if state is not None:
        check_state("unroll", cell, state, batch, units)
    return units


def dropout_masks(key: Array, batch: int, in_features: int, units: int, dropout: float,
                  recurrent_dropout: float, dtype=jnp.float32, *, rows: tuple | None = None
                  ) -> tuple[Array | None, Array | None]:
    """Draw one variational-dropout mask pair per sequence (inverted scaling).

    Args:
      key: PRNG key, split here into an input key and a recurrent key.
      dropout, recurrent_dropout: drop rates in [0, 1); a Python rate of 0 gives ``None``. A rate may
        be a scalar array (e.g. traced under a sweep's ``vmap``): a mask is then always drawn, and a
        rate of 0 gives a mask of ones (``uniform < 1`` always holds), the same result as no mask.
      rows: ``(start, total)``: draw the masks of a ``total``-row batch and return its rows
        ``[start, start + batch)`` (``start`` may be traced). Data parallelism passes each device's
        slice, so the masks do not depend on how many devices share the batch. None = ``(0, batch)``.
    Returns:
      (input mask [B, F] or None, recurrent mask [B, H] or None); kept entries are ``1 / (1 - rate)``.
    """
    k_in, k_rec = jax.random.split(key)
    start, total = (0, batch) if rows is None else rows

    def draw(k, rate, n):
        if not _active(rate):
            return None
        keep = 1.0 - rate
        mask = jax.random.bernoulli(k, keep, (total, n))
        if rows is not None:
            mask = jax.lax.dynamic_slice_in_dim(mask, start, batch, axis=0)
        return mask.astype(dtype) / jnp.asarray(keep, dtype)

    return draw(k_in, dropout, in_features), draw(k_rec, recurrent_dropout, units)


def _step_mask(lengths, mask, padding: str, batch: int, steps: int) -> Array | None:
    """Return the validity mask [B, T] (True = real step) or None."""
    if mask is not None:
        return jnp.asarray(mask, bool)
    if lengths is None:
        return None
    t = jnp.arange(steps)[None, :]
    lengths = jnp.asarray(lengths)[:, None]
    return t < lengths if padding == "right" else t >= steps - lengths


def unroll(cell: str, params: dict, xs: Array, *, state=None, reverse: bool = False,
           go_backwards: bool = False, return_sequences: bool = True, lengths: Array | None = None,
           mask: Array | None = None, padding: str = "right", reset_after: bool = False,
           activation: str = "tanh", dropout: float = 0.0, recurrent_dropout: float = 0.0,
           key: Array | None = None, train: bool = False, dropout_rows: tuple | None = None,
           policy: ScanPolicy | None = None):
    """Run ``cell`` over ``xs`` with one ``lax.scan`` over time.

    Args:
      cell: "simple_rnn" | "lstm" | "gru".   params: that cell's params (``cells.init_<cell>``).
      xs: inputs [B, T, F].
      state: initial carry, h [B, H] or LSTMState; None = zeros.
      reverse: process t = T-1 .. 0 and return ys aligned to the original time axis (lax.scan's).
      go_backwards: Keras's: process the time-reversed input, return ys in processing order.
      return_sequences: return ys [B, T, H] (True) or the final h [B, H] (False; for reverse=True
        that is the output at t=0, the last processed step).
      lengths: true lengths [B], or mask: [B, T] bool (True = real step). Padded steps leave the carry
        unchanged and output the carried h.   padding: "right" (real steps first) or "pre" (Keras
        ``pad_sequences`` default: padding at the front); used with ``lengths`` only.
      reset_after, activation: forwarded to the cell (``reset_after`` only matters for the GRU, whose
        params must be that form's: ``b_h`` only when True, ``cells.param_keys``).
      dropout, recurrent_dropout: variational rates in [0, 1) (floats, or scalar arrays so that a
        sweep can vmap them), active only when ``train``; masks are
        drawn from ``key`` (``dropout_masks``) and applied to x before ``x @ w_x`` and to h before
        ``h @ w_h`` (never to the LSTM's c). ``dropout_rows``: ``(start, total)``, see ``dropout_masks``.
      policy: how the scan compiles (``backend.ScanPolicy``: hoisted or in-loop input projection,
        remat, the GRU's opaque mask of ones, ``lax.scan``'s unroll); never the values.
        None = ``backend.for_backend(backend.platform())``, the measured choice for this backend. With
        ``policy.cudnn_lstm`` an LSTM that ``cudnn.allowed`` accepts runs cuDNN's kernel instead of the scan.
    Returns:
      (final_state, ys): final carry (h [B, H] or LSTMState), ys [B, T, H] or [B, H].
    Raises:
      ValueError: before any tracing, for bad shapes, names, rates or a missing key.
    """
    xs = jnp.asarray(xs)
    if reverse and go_backwards:
        raise ValueError("unroll: reverse=True and go_backwards=True together are ambiguous; pass one "
                         "(reverse: outputs aligned to the input's time axis; go_backwards: Keras's order)")
    units = _validate(cell, params, xs, state=state, lengths=lengths, mask=mask, padding=padding,
                      activation=activation, dropout=dropout, recurrent_dropout=recurrent_dropout,
                      key=key, train=train, reset_after=reset_after)
    batch, steps, feats = xs.shape
    policy = backend.for_backend(backend.platform()) if policy is None else policy
    hoist_input = policy.hoist_input
    if state is None:
        state = zero_state(cell, batch, units, xs.dtype)
    in_mask = rec_mask = None
    if train and (_active(dropout) or _active(recurrent_dropout)):
        in_mask, rec_mask = dropout_masks(key, batch, feats, units, dropout, recurrent_dropout, xs.dtype,
                                          rows=dropout_rows)
    if in_mask is not None:
        xs = xs * in_mask[:, None, :]
    if policy.cudnn_lstm and cudnn.allowed(cell, xs, params, activation=activation, mask=mask, lengths=lengths,
                                           padding=padding, reverse=reverse, go_backwards=go_backwards,
                                           recurrent_dropout=recurrent_dropout if train else 0.0)[0]:
        return cudnn.lstm_unroll_cudnn(params, xs, state=state, lengths=lengths, reverse=reverse,
                                       go_backwards=go_backwards, return_sequences=return_sequences)
    valid = _step_mask(lengths, mask, padding, batch, steps)

    xs_t = jnp.swapaxes(xs, 0, 1)  # [T, B, F]
    valid_t = None if valid is None else jnp.swapaxes(valid, 0, 1)[:, :, None]  # [T, B, 1]
    if go_backwards:
        xs_t = jnp.flip(xs_t, 0)
        valid_t = None if valid_t is None else jnp.flip(valid_t, 0)
    # Hoisted: per-gate [T, B, H] arrays (slicing a fused [T, B, G*H] in the step compiles badly on CPU).
    inputs = input_projection(cell, params, xs_t) if hoist_input else xs_t
    if rec_mask is None and cell == "gru" and policy.gru_mask_barrier:
        # A recurrent mask of ones that XLA cannot see through (optimization_barrier; h * 1 == h
        # exactly): with h used only through h * mask, XLA:CPU fuses the GRU's backward pass more
        # cheaply (backend.CPU's gru_mask_barrier says where that was measured).
        rec_mask = jax.lax.optimization_barrier(jnp.ones((batch, units), xs.dtype))
    kwargs = {"activation": activation, "rec_mask": rec_mask}
    if cell == "gru":
        kwargs["reset_after"] = reset_after
    cell_fn = partial(CELL_FNS[cell], params, **kwargs)

    def body(carry, slot):
        inp, m = slot
        xp = inp if hoist_input else input_projection(cell, params, inp)
        new, _ = cell_fn(carry, xp)
        if m is not None:
            new = jax.tree.map(lambda a, b: jnp.where(m, a, b), new, carry)
        return new, (new.h if cell == "lstm" else new)

    if policy.remat:  # prevent_cse is unneeded inside a scan (jax.checkpoint's docstring) and can cost speed (GPU)
        body = jax.checkpoint(body, prevent_cse=False)
    final, ys = jax.lax.scan(body, state, (inputs, valid_t), reverse=reverse, unroll=policy.unroll)
    if not return_sequences:
        return final, (final.h if cell == "lstm" else final)
    return final, jnp.swapaxes(ys, 0, 1)


def bidirectional(cell: str, params: dict, xs: Array, *, merge_mode: str = "concat",
                  return_sequences: bool = False, key: Array | None = None, **unroll_kwargs):
    """Run a forward and a backward ``unroll`` and merge them (Keras ``Bidirectional`` semantics).

    The backward direction runs ``reverse=True``, so its outputs are aligned with the original time
    axis; with ``return_sequences=False`` its output is its last processed step (the one at t=0).

    Args:
      params: {"forward": p, "backward": p}, each a ``cell`` param dict.   xs: inputs [B, T, F].
      merge_mode: "concat" ([.., 2H], forward first) | "sum" | "ave" | "mul".
      key: split into one key per direction (dropout).   unroll_kwargs: forwarded to ``unroll``
        (not ``reverse``/``go_backwards``; ``state`` is not supported here).
    Returns:
      ((fw_final, bw_final), ys): ys [B, T, 2H] / [B, 2H] for concat, else [B, T, H] / [B, H].
    """
    if merge_mode not in MERGE:
        raise ValueError(f"bidirectional: merge_mode must be one of {tuple(MERGE)}, got {merge_mode!r}")
    if set(params) != {"forward", "backward"}:
        raise ValueError(f"bidirectional: params must have keys 'forward' and 'backward', got {sorted(params)}")
    for bad in ("reverse", "go_backwards", "state"):
        if bad in unroll_kwargs:
            raise ValueError(f"bidirectional: {bad!r} is not supported")
    k_fw = k_bw = None
    if key is not None:
        k_fw, k_bw = jax.random.split(key)
    fw_state, fw = unroll(cell, params["forward"], xs, return_sequences=return_sequences, key=k_fw,
                          **unroll_kwargs)
    bw_state, bw = unroll(cell, params["backward"], xs, reverse=True, return_sequences=return_sequences,
                          key=k_bw, **unroll_kwargs)
    return (fw_state, bw_state), MERGE[merge_mode](fw, bw)


def output_width(layer: LayerConfig) -> int:
    """Return the width of ``layer``'s output: H, or 2H for a bidirectional layer that concatenates."""
    return layer.units * (2 if layer.bidirectional and layer.merge_mode == "concat" else 1)


def init_stack(key: Array, layers: Sequence[LayerConfig], in_features: int) -> list[dict]:
    """Initialise stacked layers bottom to top.

    Returns:
      One param dict per layer (``cells.init_cell``, a GRU in its layer's ``reset_after`` form), or
      {"forward": p, "backward": p} for a bidirectional layer. Layer k+1's F is layer k's output width
      (2H for bidirectional concat).
    """
    params = []
    for layer, k in zip(layers, jax.random.split(key, len(layers))):
        ra = layer.reset_after
        if layer.bidirectional:
            k_fw, k_bw = jax.random.split(k)
            params.append({"forward": init_cell(layer.cell, k_fw, in_features, layer.units, reset_after=ra),
                           "backward": init_cell(layer.cell, k_bw, in_features, layer.units, reset_after=ra)})
        else:
            params.append(init_cell(layer.cell, k, in_features, layer.units, reset_after=ra))
        in_features = output_width(layer)
    return params


def stack(layers: Sequence[LayerConfig], params_list: Sequence[dict], xs: Array, *, key: Array | None = None,
          train: bool = False, return_sequences: bool = False, lengths: Array | None = None,
          mask: Array | None = None, padding: str = "right", rates: Sequence[tuple[Array, Array]] | None = None,
          dropout_rows: tuple | None = None, policy: ScanPolicy | None = None) -> Array:
    """Run stacked recurrent layers; all but the last return sequences.

    Args:
      layers: ``LayerConfig`` per layer, bottom to top.   params_list: from ``init_stack``.
      xs: inputs [B, T, F].   key: split into one key per layer (dropout; needed when train and a
        rate > 0).   train: enable dropout.   policy: see ``unroll`` (every layer).
      return_sequences: whether the last layer returns its whole sequence.
      lengths, mask, padding: masking, applied to every layer (see ``unroll``).
      rates: optional per-layer ``(dropout, recurrent_dropout)`` overriding the ``LayerConfig`` rates;
        scalar arrays, so a sweep can vmap them (``jena_rnn.sweep``). None = the config's rates.
      dropout_rows: ``(start, total)``: this batch is rows ``[start, start + B)`` of a ``total``-row batch
        (data parallelism); dropout masks are drawn for the whole batch and sliced (``dropout_masks``).
    Returns:
      The last layer's output: [B, H] (or [B, T, H] with return_sequences), H = ``output_width``.
    """
    if len(layers) != len(params_list):
        raise ValueError(f"stack: {len(layers)} layers but {len(params_list)} param dicts")
    if rates is not None and len(rates) != len(layers):
        raise ValueError(f"stack: {len(layers)} layers but {len(rates)} (dropout, recurrent_dropout) pairs")
    keys = [None] * len(layers) if key is None else list(jax.random.split(key, len(layers)))
    for n, (layer, params, k) in enumerate(zip(layers, params_list, keys)):
        seq = return_sequences or n < len(layers) - 1
        drop, rec = (layer.dropout, layer.recurrent_dropout) if rates is None else rates[n]
        kwargs = dict(return_sequences=seq, key=k, train=train, policy=policy, reset_after=layer.reset_after,
                      activation=layer.activation, dropout=drop, recurrent_dropout=rec, lengths=lengths,
                      mask=mask, padding=padding, dropout_rows=dropout_rows)
        if layer.bidirectional:
            _, xs = bidirectional(layer.cell, params, xs, merge_mode=layer.merge_mode, **kwargs)
        else:
            _, xs = unroll(layer.cell, params, xs, **kwargs)
    return xs
