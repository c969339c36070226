"""Recurrent cells as pure functions: parameter init and one time step.

Row-vector convention (``x @ w_x``). Fused column order: LSTM ``i, f, g, o``; GRU ``z, r, n``.
``*`` is elementwise, ``σ`` is the sigmoid; ``act`` is the candidate activation (Keras's
``activation``, ``tanh`` by default); the gates always use ``σ``.

```
SimpleRNN h' = act(x Wx + h Wh + b)
LSTM  i = σ(x Wxi + h Whi + bi)   f = σ(x Wxf + h Whf + bf)   g = act(x Wxg + h Whg + bg)
      o = σ(x Wxo + h Who + bo)   c' = f*c + i*g              h' = o*act(c')
GRU   reset_after=False (the lecture's, Keras 2.0.8: one bias per gate)
        z = σ(x Wxz + bz + h Whz)   r = σ(x Wxr + br + h Whr)   n = act(x Wxn + bn + (r*h) Whn)
      reset_after=True (Keras 2.3+ default, PyTorch, cuDNN: a second, recurrent bias)
        z = σ(x Wxz + bxz + h Whz + bhz)   r = σ(x Wxr + bxr + h Whr + bhr)
        n = act(x Wxn + bxn + r*(h Whn + bhn))
      h' = (1-z)*h + z*n        (the lecture's convention: z close to 1 takes the new candidate)
```
The GRU's params are ``w_x [F, 3H]``, ``w_h [H, 3H]``, ``b_x [3H]`` (b above, or bx), plus ``b_h [3H]``
(bh) in the reset-after form only. In the reset-before form a second bias would only duplicate the first
(both just add to the same pre-activation: identical gradients, so RMSprop would move their sum twice
as fast, and GRU(32) + Dense(1) on 14 features would have 4,641 parameters instead of Keras 2.0.8's
4,545), so it has one. ``param_keys`` (``spec.py``) gives the keys of each form; the steps and
``rnn.unroll`` refuse any other key set. Keras and PyTorch write ``h' = z*h + (1-z)*n``: their z is our
1-z, so ``interop.py`` negates the z block of their weights and biases (σ(-a) = 1-σ(a)), which is exact.

Each cell has one private gate function taking the precomputed input projection
``xp = x @ w_x + b`` (``b_x`` for the GRU) already split per gate. The public ``*_step`` computes
``xp`` from ``x``; ``rnn.unroll`` either does the same inside its scan or hoists the projection of all
steps out of the scan. Both paths call the same gate function, so they cannot drift apart.

Init (Keras defaults): ``w_x`` glorot-uniform over the fused ``[F, G*H]`` matrix, ``w_h`` orthogonal
``[H, G*H]`` (orthonormal rows, as Keras's ``Orthogonal`` builds it), zero biases, LSTM forget bias 1.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

# what each cell's params and carry are, and their checks (re-exported here: ``cells.GATES``, ...)
from jena_rnn.nn.spec import (ACTIVATIONS, GATES, LSTMState, check_cell, check_param_keys, check_params,
                              check_state, get_activation, param_keys, shape_of)

Array = jax.Array
__all__ = ["ACTIVATIONS", "GATES", "LSTMState", "check_cell", "check_param_keys", "check_params",
           "check_state", "get_activation", "param_keys", "shape_of", "init_simple_rnn", "init_lstm",
           "init_gru", "init_cell", "zero_state", "simple_rnn_cell", "lstm_cell", "gru_cell",
           "input_projection", "simple_rnn_step", "lstm_step", "gru_step", "INIT_FNS", "STEP_FNS", "CELL_FNS"]


# ---------------------------------------------------------------- init
def _init_weights(key: Array, in_features: int, units: int, gates: int) -> tuple[Array, Array]:
    k_x, k_h = jax.random.split(key)
    w_x = jax.nn.initializers.glorot_uniform()(k_x, (in_features, gates * units), jnp.float32)
    w_h = jax.nn.initializers.orthogonal()(k_h, (units, gates * units), jnp.float32)
    return w_x, w_h


def init_simple_rnn(key: Array, in_features: int, units: int) -> dict:
    """Initialise a SimpleRNN (Keras defaults).

    Returns:
      {"w_x": [F, H] glorot-uniform, "w_h": [H, H] orthogonal, "b": [H] zeros}.
    """
    w_x, w_h = _init_weights(key, in_features, units, 1)
    return {"w_x": w_x, "w_h": w_h, "b": jnp.zeros((units,), jnp.float32)}


def init_lstm(key: Array, in_features: int, units: int) -> dict:
    """Initialise an LSTM (Keras defaults, including ``unit_forget_bias=True``).

    Returns:
      {"w_x": [F, 4H], "w_h": [H, 4H], "b": [4H]} in gate order i, f, g, o; b is 1 on the f block, 0 elsewhere.
    """
    w_x, w_h = _init_weights(key, in_features, units, 4)
    b = jnp.zeros((4 * units,), jnp.float32).at[units:2 * units].set(1.0)
    return {"w_x": w_x, "w_h": w_h, "b": b}


def init_gru(key: Array, in_features: int, units: int, *, reset_after: bool = False) -> dict:
    """Initialise a GRU of the given form (Keras defaults).

    Args:
      reset_after: the form (module docstring): True adds the recurrent bias ``b_h``.
    Returns:
      {"w_x": [F, 3H], "w_h": [H, 3H], "b_x": [3H] zeros} (+ "b_h": [3H] zeros when reset_after), in
      gate order z, r, n.
    """
    w_x, w_h = _init_weights(key, in_features, units, 3)
    zeros = jnp.zeros((3 * units,), jnp.float32)
    return {"w_x": w_x, "w_h": w_h, "b_x": zeros, **({"b_h": zeros} if reset_after else {})}


# ---------------------------------------------------------------- gate functions (shared)
def _recurrent(params: dict, h: Array, rec_mask: Array | None) -> Array:
    """``h @ w_h`` with the (variational) recurrent dropout mask applied to h first."""
    return (h if rec_mask is None else h * rec_mask) @ params["w_h"]


def simple_rnn_cell(params: dict, h: Array, xp: tuple[Array], *, activation: str = "tanh",
                    rec_mask: Array | None = None) -> tuple[Array, Array]:
    """Advance a SimpleRNN given its input projection ``xp = (x @ w_x + b,)``, each [B, H]."""
    h_new = get_activation(activation)(xp[0] + _recurrent(params, h, rec_mask))
    return h_new, h_new


def lstm_cell(params: dict, state: LSTMState, xp: tuple[Array, Array, Array, Array], *,
              activation: str = "tanh", rec_mask: Array | None = None) -> tuple[LSTMState, Array]:
    """Advance an LSTM given ``xp = (xi, xf, xg, xo)``, the blocks of ``x @ w_x + b``, each [B, H].

    The recurrent dropout mask touches only ``h`` in ``h @ w_h``, never ``c``.
    """
    act = get_activation(activation)
    hi, hf, hg, ho = jnp.split(_recurrent(params, state.h, rec_mask), 4, axis=-1)
    i = jax.nn.sigmoid(xp[0] + hi)
    f = jax.nn.sigmoid(xp[1] + hf)
    g = act(xp[2] + hg)
    o = jax.nn.sigmoid(xp[3] + ho)
    c = f * state.c + i * g
    h = o * act(c)
    return LSTMState(h=h, c=c), h


def gru_cell(params: dict, h: Array, xp: tuple[Array, Array, Array], *, reset_after: bool = False,
             activation: str = "tanh", rec_mask: Array | None = None) -> tuple[Array, Array]:
    """Advance a GRU given ``xp = (xz, xr, xn)``, the blocks of ``x @ w_x + b_x``, each [B, H].

    ``params["b_h"]`` is read only when ``reset_after`` (the reset-before form has no such key).
    """
    units = h.shape[-1]
    w_h = params["w_h"]
    h_in = h if rec_mask is None else h * rec_mask
    if reset_after:
        hz, hr, hn = jnp.split(h_in @ w_h + params["b_h"], 3, axis=-1)
        z = jax.nn.sigmoid(xp[0] + hz)
        r = jax.nn.sigmoid(xp[1] + hr)
        n = get_activation(activation)(xp[2] + r * hn)
    else:  # one bias per gate, already in xp
        hz, hr = jnp.split(h_in @ w_h[:, :2 * units], 2, axis=-1)
        z = jax.nn.sigmoid(xp[0] + hz)
        r = jax.nn.sigmoid(xp[1] + hr)
        n = get_activation(activation)(xp[2] + (r * h_in) @ w_h[:, 2 * units:])
    h_new = (1.0 - z) * h + z * n
    return h_new, h_new


def input_projection(cell: str, params: dict, x: Array) -> tuple[Array, ...]:
    """Return ``x @ w_x + b`` (``b_x`` for the GRU) split into its G gate blocks.

    Args:
      x: inputs [..., F] (one step [B, F] or a whole time-major sequence [T, B, F]).
    Returns:
      G arrays [..., H], in the cell's gate order.
    """
    bias = params["b_x"] if cell == "gru" else params["b"]
    return tuple(jnp.split(x @ params["w_x"] + bias, GATES[cell], axis=-1))


def _check_step(cell: str, params: dict, state, x: Array, *, reset_after: bool = False) -> None:
    """Check a public step's arguments (static shapes, so also under jit); errors name the argument."""
    name = f"{cell}_step"
    feats, units = check_params(name, cell, params, reset_after=reset_after)
    if len(shape_of(x)) != 2:
        raise ValueError(f"{name}: x must be [B, F] (rank 2), got shape {shape_of(x)}")
    if x.shape[1] != feats:
        raise ValueError(f"{name}: x has {x.shape[1]} features but params['w_x'] expects {feats} "
                         f"(shape {shape_of(params['w_x'])})")
    check_state(name, cell, state, x.shape[0], units, arg="state" if cell == "lstm" else "h")


# ---------------------------------------------------------------- public steps
def simple_rnn_step(params: dict, h: Array, x: Array, *, activation: str = "tanh") -> tuple[Array, Array]:
    """Advance a SimpleRNN by one step, ``h' = act(x Wx + h Wh + b)``.

    Args:
      params: w_x [F, H], w_h [H, H], b [H].
      h: previous hidden state [B, H].   x: inputs at this step [B, F].
      activation: name of ``act`` (``ACTIVATIONS``).
    Returns:
      (h_new, h_new), each [B, H], i.e. lax.scan's (carry, output).
    """
    _check_step("simple_rnn", params, h, x)
    return simple_rnn_cell(params, h, input_projection("simple_rnn", params, x), activation=activation)


def lstm_step(params: dict, state: LSTMState, x: Array, *, activation: str = "tanh") -> tuple[LSTMState, Array]:
    """Advance an LSTM by one step (equations: module docstring, order i, f, g, o).

    Args:
      params: w_x [F, 4H], w_h [H, 4H], b [4H].
      state: LSTMState(h [B, H], c [B, H]).   x: inputs at this step [B, F].
      activation: applied to g and to c' in h' = o*act(c'); the gates stay sigmoid.
    Returns:
      (LSTMState(h_new, c_new), h_new), h_new [B, H].
    """
    _check_step("lstm", params, state, x)
    return lstm_cell(params, state, input_projection("lstm", params, x), activation=activation)


def gru_step(params: dict, h: Array, x: Array, *, reset_after: bool = False,
             activation: str = "tanh") -> tuple[Array, Array]:
    """Advance a GRU by one step (equations: module docstring, order z, r, n; h' = (1-z)*h + z*n).

    Args:
      params: w_x [F, 3H], w_h [H, 3H], b_x [3H] (+ b_h [3H] when reset_after; exactly these keys).
      h: previous hidden state [B, H].   x: inputs at this step [B, F].
      reset_after: apply r after the recurrent matmul (True, Keras default / PyTorch) or before it
        (False, the lecture / Cho et al. 2014).
      activation: the candidate n's activation; z and r stay sigmoid.
    Returns:
      (h_new, h_new), each [B, H], i.e. lax.scan's (carry, output).
    """
    _check_step("gru", params, h, x, reset_after=reset_after)
    return gru_cell(params, h, input_projection("gru", params, x), reset_after=reset_after,
                    activation=activation)


# ---------------------------------------------------------------- registry
INIT_FNS = {"simple_rnn": init_simple_rnn, "lstm": init_lstm, "gru": init_gru}
STEP_FNS = {"simple_rnn": simple_rnn_step, "lstm": lstm_step, "gru": gru_step}
CELL_FNS = {"simple_rnn": simple_rnn_cell, "lstm": lstm_cell, "gru": gru_cell}  # gate functions on xp


def init_cell(cell: str, key: Array, in_features: int, units: int, *, reset_after: bool = False) -> dict:
    """Initialise the params of ``cell`` ("simple_rnn" | "lstm" | "gru"); see ``init_<cell>``.

    ``reset_after``: the GRU's form (``init_gru``); ignored for the other cells.
    """
    check_cell(cell)
    return INIT_FNS[cell](key, in_features, units, **({"reset_after": reset_after} if cell == "gru" else {}))


def zero_state(cell: str, batch: int, units: int, dtype=jnp.float32) -> Array | LSTMState:
    """Return the all-zeros carry: ``h [B, H]``, or ``LSTMState(h, c)`` for the LSTM."""
    check_cell(cell)
    h = jnp.zeros((batch, units), dtype)
    return LSTMState(h=h, c=h) if cell == "lstm" else h
