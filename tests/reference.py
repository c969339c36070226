"""Independent numpy float64 reference for the cell equations (STYLE.md), one gate at a time.

Written from the equations only; imports nothing from ``jena_rnn``. Params use the documented layout
(``w_x [F, G*H]``, ``w_h [H, G*H]``, ``b``, or for the GRU ``b_x`` plus, in the reset-after form only,
``b_h``), sliced per gate here. Also holds
Keras's GRU equations in Keras's own layout (z on the old state), to test ``interop``'s converters.
"""
from __future__ import annotations

import numpy as np

ACT = {"tanh": np.tanh, "relu": lambda a: np.maximum(a, 0.0), "sigmoid": lambda a: 1 / (1 + np.exp(-a)),
       "linear": lambda a: a}


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def _f64(params):
    return {k: np.asarray(v, np.float64) for k, v in params.items()}


def _block(a, k, units):
    """Gate block k (0-based) of a fused last axis."""
    return a[..., k * units:(k + 1) * units]


def simple_rnn_step(p, h, x, activation="tanh"):
    p = _f64(p)
    return ACT[activation](x @ p["w_x"] + h @ p["w_h"] + p["b"])


def lstm_step(p, h, c, x, activation="tanh"):
    p, n = _f64(p), np.shape(h)[-1]
    wx, wh, b = (lambda k: _block(p["w_x"], k, n)), (lambda k: _block(p["w_h"], k, n)), (lambda k: _block(p["b"], k, n))
    i = sigmoid(x @ wx(0) + h @ wh(0) + b(0))
    f = sigmoid(x @ wx(1) + h @ wh(1) + b(1))
    g = ACT[activation](x @ wx(2) + h @ wh(2) + b(2))
    o = sigmoid(x @ wx(3) + h @ wh(3) + b(3))
    c_new = f * c + i * g
    return o * ACT[activation](c_new), c_new


def gru_step(p, h, x, reset_after, activation="tanh"):
    """One bias per gate (b_x) in the reset-before form; b_x and b_h in the reset-after form."""
    p, n = _f64(p), np.shape(h)[-1]
    wx, wh, bx = ((lambda k, a=a: _block(p[a], k, n)) for a in ("w_x", "w_h", "b_x"))
    if reset_after:
        bh = lambda k: _block(p["b_h"], k, n)  # noqa: E731
        z = sigmoid(x @ wx(0) + bx(0) + h @ wh(0) + bh(0))
        r = sigmoid(x @ wx(1) + bx(1) + h @ wh(1) + bh(1))
        cand = ACT[activation](x @ wx(2) + bx(2) + r * (h @ wh(2) + bh(2)))
    else:
        assert "b_h" not in p, "the reset-before GRU has one bias per gate"
        z = sigmoid(x @ wx(0) + bx(0) + h @ wh(0))
        r = sigmoid(x @ wx(1) + bx(1) + h @ wh(1))
        cand = ACT[activation](x @ wx(2) + bx(2) + (r * h) @ wh(2))
    return (1 - z) * h + z * cand


def run(cell, p, xs, reset_after=None, activation="tanh", h0=None, c0=None):
    """Unroll with a Python loop over time. xs [B, T, F] -> (h_T [B, H], c_T or None, ys [B, T, H])."""
    xs = np.asarray(xs, np.float64)
    units = np.shape(p["w_h"])[0]
    h = np.zeros((xs.shape[0], units)) if h0 is None else np.asarray(h0, np.float64)
    c = np.zeros_like(h) if c0 is None else np.asarray(c0, np.float64)
    ys = []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        if cell == "simple_rnn":
            h = simple_rnn_step(p, h, x, activation)
        elif cell == "lstm":
            h, c = lstm_step(p, h, c, x, activation)
        else:
            h = gru_step(p, h, x, reset_after, activation)
        ys.append(h)
    return h, (c if cell == "lstm" else None), np.stack(ys, axis=1)


def keras_gru(kernel, recurrent_kernel, bias, xs, reset_after):
    """Keras's GRU (gate order z, r, h; ``h = z*h_prev + (1-z)*hh``) in Keras's layout.

    kernel [F, 3H], recurrent_kernel [H, 3H], bias [3H] (reset_after=False) or [2, 3H] (input row,
    recurrent row; reset_after=True). Returns ys [B, T, H].
    """
    k, rk, xs = np.asarray(kernel, np.float64), np.asarray(recurrent_kernel, np.float64), np.asarray(xs, np.float64)
    n = rk.shape[0]
    bias = np.asarray(bias, np.float64)
    b_in, b_rec = (bias, np.zeros_like(bias)) if not reset_after else (bias[0], bias[1])
    h, ys = np.zeros((xs.shape[0], n)), []
    for t in range(xs.shape[1]):
        x = xs[:, t]
        x_z, x_r, x_h = (x @ _block(k, j, n) + _block(b_in, j, n) for j in range(3))
        z = sigmoid(x_z + h @ _block(rk, 0, n) + _block(b_rec, 0, n))
        r = sigmoid(x_r + h @ _block(rk, 1, n) + _block(b_rec, 1, n))
        if reset_after:
            hh = np.tanh(x_h + r * (h @ _block(rk, 2, n) + _block(b_rec, 2, n)))
        else:
            hh = np.tanh(x_h + (r * h) @ _block(rk, 2, n))
        h = z * h + (1 - z) * hh
        ys.append(h)
    return np.stack(ys, axis=1)
