"""Convert cell weights to and from PyTorch and Keras layouts (numpy in, numpy out).

Our layout (``cells.py``): row-vector ``x @ w_x``, ``w_x [F, G*H]``, ``w_h [H, G*H]``; LSTM order
``i, f, g, o`` with one bias ``b``; GRU order ``z, r, n`` with ``b_x`` (plus ``b_h`` in the reset-after
form only) and ``h' = (1-z)*h + z*n``.

PyTorch (``nn.RNN`` with tanh, ``nn.LSTM``, ``nn.GRU``): ``weight_ih_l{k} [G*H, F]``,
``weight_hh_l{k} [G*H, H]``, ``bias_ih_l{k}``, ``bias_hh_l{k}`` ``[G*H]``; LSTM order ``i|f|g|o``;
GRU order ``r|z|n``, always the reset-after form, ``h' = (1-z)*n + z*h``.
Keras (``SimpleRNN``, ``LSTM``, ``GRU``): ``kernel [F, G*H]``, ``recurrent_kernel [H, G*H]``; LSTM
``[i, f, c, o]`` (= ours) with ``bias [4H]``; GRU ``[z, r, h]``, ``h = z*h_prev + (1-z)*hh``, ``bias``
``[3H]`` (``reset_after=False``, Keras 2.0.8's form: one bias, our ``b_x``) or ``[2, 3H]``
(``reset_after=True``: input row ``b_x``, recurrent row ``b_h``).

The GRU's z: PyTorch's and Keras's z is our 1-z. Since σ(-a) = 1-σ(a), negating the z block of both
weight matrices and of the biases converts exactly (no rounding), in both directions.
A torch GRU is a reset-after GRU: ``from_torch`` gives reset-after params (``b_x``, ``b_h``); run them
with ``reset_after=True``. PyTorch has no reset-before form, so ``to_torch`` refuses a reset-before GRU
(one bias) rather than export weights that torch would run as a different function. Keras's
``reset_after`` must match the form of our params: it fixes the bias layout on both sides.

Exactness: every conversion is a transpose, a block permutation and a negation, except that torch keeps
two biases for SimpleRNN/LSTM that we store as one sum: ``from_torch`` sets ``b = bias_ih + bias_hh``
(one float32 rounding), ``to_torch`` writes ``bias_ih = b``, ``bias_hh = 0``. So params -> foreign ->
params is bit-exact everywhere, and foreign -> params -> foreign is bit-exact for the GRU (both libraries,
both forms) and for zero ``bias_hh``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from jena_rnn.nn.cells import GATES, check_cell, check_param_keys

_TORCH_GRU = (1, 0, 2)  # torch block k holds our block _TORCH_GRU[k]: torch r|z|n, ours z|r|n


def _np(a) -> np.ndarray:
    """numpy view of a numpy/JAX array or a torch tensor (without importing torch)."""
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _blocks(a: np.ndarray, g: int, axis: int) -> list[np.ndarray]:
    return np.split(a, g, axis=axis)


def _neg_z(a: np.ndarray, axis: int = -1) -> np.ndarray:
    """Negate block 0 (z, in our and Keras's order) of a fused GRU axis."""
    z, r, n = _blocks(a, 3, axis)
    return np.concatenate([-z, r, n], axis=axis)


def _check_units(cell: str, name: str, a: np.ndarray, axis: int) -> int:
    g = GATES[cell]
    if a.ndim < 1 or a.shape[axis] % g:
        raise ValueError(f"{name} has shape {a.shape}; axis {axis} must be {g}*H for {cell!r}")
    return a.shape[axis] // g


def from_torch(cell: str, weights, *, layer: int = 0, suffix: str = "") -> dict:
    """Convert PyTorch ``nn.RNN`` (tanh) / ``nn.LSTM`` / ``nn.GRU`` weights to our params.

    Args:
      cell: "simple_rnn" | "lstm" | "gru".
      weights: a ``state_dict`` (keys ``weight_ih_l{layer}{suffix}`` etc.; tensors or arrays), or a
        tuple ``(weight_ih [G*H, F], weight_hh [G*H, H], bias_ih [G*H] | None, bias_hh [G*H] | None)``.
      layer, suffix: which layer / direction of a state_dict (``suffix="_reverse"`` for the backward one).
    Returns:
      numpy params: w_x [F, G*H], w_h [H, G*H], and b [G*H] or (GRU, the reset-after form) b_x, b_h [3H],
      z negated.
    """
    check_cell(cell)
    if isinstance(weights, Mapping):
        names = [f"{w}_l{layer}{suffix}" for w in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if names[0] not in weights or names[1] not in weights:
            raise ValueError(f"from_torch: state_dict lacks {names[:2]}; got keys {sorted(weights)}")
        weights = tuple(weights.get(n) for n in names)
    w_ih, w_hh, b_ih, b_hh = (None if a is None else _np(a) for a in weights)
    units = _check_units(cell, "from_torch: weight_ih", w_ih, 0)
    g = GATES[cell]
    if w_hh.shape != (g * units, units):
        raise ValueError(f"from_torch: weight_hh has shape {w_hh.shape}, expected {(g * units, units)}")
    b_ih = np.zeros(g * units, w_ih.dtype) if b_ih is None else b_ih
    b_hh = np.zeros(g * units, w_ih.dtype) if b_hh is None else b_hh
    for name, b in (("bias_ih", b_ih), ("bias_hh", b_hh)):
        if b.shape != (g * units,):
            raise ValueError(f"from_torch: {name} has shape {b.shape}, expected {(g * units,)}")
    if cell != "gru":
        return {"w_x": np.ascontiguousarray(w_ih.T), "w_h": np.ascontiguousarray(w_hh.T), "b": b_ih + b_hh}

    def reorder(a, axis):  # torch r|z|n -> our z|r|n with z negated
        r, z, n = _blocks(a, 3, axis)
        return np.concatenate([-z, r, n], axis=axis)

    return {"w_x": np.ascontiguousarray(reorder(w_ih, 0).T), "w_h": np.ascontiguousarray(reorder(w_hh, 0).T),
            "b_x": reorder(b_ih, 0), "b_h": reorder(b_hh, 0)}


def to_torch(cell: str, params: dict, *, layer: int = 0, suffix: str = "") -> dict[str, np.ndarray]:
    """Convert our params to a PyTorch ``state_dict`` fragment of numpy arrays.

    Load with ``module.load_state_dict({k: torch.from_numpy(v) for k, v in out.items()})``. A GRU must
    be the reset-after form (``b_x``, ``b_h``), the only one torch has; SimpleRNN/LSTM get
    ``bias_ih = b`` and ``bias_hh = 0``.

    Returns:
      {"weight_ih_l{layer}{suffix}": [G*H, F], "weight_hh_...": [G*H, H], "bias_ih_...", "bias_hh_...": [G*H]}.
    Raises:
      ValueError: a reset-before GRU (one bias ``b_x``): torch's GRU would run it as a different function.
    """
    check_cell(cell)
    if cell == "gru" and "b_h" not in params and "b_x" in params:
        raise ValueError("to_torch: these GRU params have one bias (b_x), i.e. the reset-before form "
                         "(reset_after=False); PyTorch's nn.GRU is always reset-after and would compute a "
                         "different function with these weights. Train with reset_after=True to export to "
                         "PyTorch, or use to_keras(..., reset_after=False)")
    check_param_keys("to_torch", cell, params, reset_after=True)
    p = {k: _np(v) for k, v in params.items()}
    _check_units(cell, "to_torch: params['w_x']", p["w_x"], 1)
    if cell == "gru":
        def reorder(a):  # our z|r|n -> torch r|z|n with z negated back
            z, r, n = _blocks(a, 3, -1)
            return np.concatenate([r, -z, n], axis=-1)

        w_ih, w_hh, b_ih, b_hh = reorder(p["w_x"]).T, reorder(p["w_h"]).T, reorder(p["b_x"]), reorder(p["b_h"])
    else:
        w_ih, w_hh, b_ih, b_hh = p["w_x"].T, p["w_h"].T, p["b"], np.zeros_like(p["b"])
    out = (w_ih, w_hh, b_ih, b_hh)
    return {f"{w}_l{layer}{suffix}": np.ascontiguousarray(a)
            for w, a in zip(("weight_ih", "weight_hh", "bias_ih", "bias_hh"), out)}


def from_keras(cell: str, kernel, recurrent_kernel, bias, *, reset_after: bool | None = None) -> dict:
    """Convert Keras ``SimpleRNN`` / ``LSTM`` / ``GRU`` weights (``layer.get_weights()``) to our params.

    Args:
      kernel: [F, G*H].   recurrent_kernel: [H, G*H].   bias: [G*H], or for a reset-after GRU [2, G*H].
      reset_after: GRU only; None infers it from ``bias.ndim`` (2 = True). Run ours with the same form.
    Returns:
      numpy params in our layout (GRU: z block negated; ``b_h`` only for ``reset_after=True``).
    """
    check_cell(cell)
    k, rk, b = _np(kernel), _np(recurrent_kernel), _np(bias)
    units = _check_units(cell, "from_keras: kernel", k, 1)
    g = GATES[cell]
    if rk.shape != (units, g * units):
        raise ValueError(f"from_keras: recurrent_kernel has shape {rk.shape}, expected {(units, g * units)}")
    if cell != "gru":
        if b.shape != (g * units,):
            raise ValueError(f"from_keras: bias has shape {b.shape}, expected {(g * units,)}")
        return {"w_x": k.copy(), "w_h": rk.copy(), "b": b.copy()}
    inferred = b.ndim == 2
    if reset_after is None:
        reset_after = inferred
    expected = (2, 3 * units) if reset_after else (3 * units,)
    if b.shape != expected:
        raise ValueError(f"from_keras: GRU bias with reset_after={reset_after} must have shape {expected}, "
                         f"got {b.shape}")
    out = {"w_x": _neg_z(k), "w_h": _neg_z(rk), "b_x": _neg_z(b[0] if reset_after else b)}
    return {**out, "b_h": _neg_z(b[1])} if reset_after else out


def to_keras(cell: str, params: dict, *, reset_after: bool | None = None) -> tuple[np.ndarray, ...]:
    """Convert our params to Keras ``set_weights`` order ``(kernel, recurrent_kernel, bias)``.

    Args:
      reset_after: required for the GRU: the ``reset_after`` of the Keras layer and the form of
        ``params``. True gives bias [2, 3H] (rows b_x, b_h); False gives bias [3H] = b_x.
    Returns:
      kernel [F, G*H], recurrent_kernel [H, G*H], bias (z block negated for the GRU).
    """
    check_cell(cell)
    if cell == "gru" and reset_after is None:
        raise ValueError("to_keras: pass reset_after=True|False for a GRU (it fixes the Keras bias shape)")
    check_param_keys("to_keras", cell, params, reset_after=bool(reset_after))
    p = {k: _np(v) for k, v in params.items()}
    _check_units(cell, "to_keras: params['w_x']", p["w_x"], 1)
    if cell != "gru":
        return p["w_x"].copy(), p["w_h"].copy(), p["b"].copy()
    bias = np.stack([p["b_x"], p["b_h"]]) if reset_after else p["b_x"]
    return _neg_z(p["w_x"]), _neg_z(p["w_h"]), _neg_z(bias)


__all__: Sequence[str] = ("from_torch", "to_torch", "from_keras", "to_keras")
