"""What each cell's parameters and carry are, and the one home of the checks that enforce them.

``GATES`` (fused gate blocks G per cell), the carry type ``LSTMState``, the activations, the exact param
keys of each cell and GRU form (``param_keys``), and the argument checks that the public steps
(``cells.*_step``), ``rnn.unroll`` and ``interop`` call: ``check_params`` (keys and shapes of a cell's
params) and ``check_state`` (the carry). Checks read static shapes only, so they also run under ``jit``;
every error names the function, the argument and the shapes. ``cells`` re-exports these names.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp

Array = jax.Array

GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3}  # fused gate blocks G per cell

ACTIVATIONS: dict[str, Callable[[Array], Array]] = {"tanh": jnp.tanh, "relu": jax.nn.relu,
                                                   "sigmoid": jax.nn.sigmoid, "linear": lambda a: a}


class LSTMState(NamedTuple):
    """LSTM carry: hidden state ``h [B, H]`` and cell state ``c [B, H]``."""

    h: Array
    c: Array


def get_activation(name: str) -> Callable[[Array], Array]:
    """Return the activation function called ``name`` (one of ``ACTIVATIONS``)."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {tuple(ACTIVATIONS)}")
    return ACTIVATIONS[name]


def check_cell(cell: str) -> None:
    """Raise ``ValueError`` unless ``cell`` names a known cell."""
    if cell not in GATES:
        raise ValueError(f"unknown cell {cell!r}; expected one of {tuple(GATES)}")


def param_keys(cell: str, *, reset_after: bool = False) -> tuple[str, ...]:
    """Return the param keys of ``cell`` (``reset_after``: the GRU's form; ignored for other cells)."""
    check_cell(cell)
    if cell != "gru":
        return ("w_x", "w_h", "b")
    return ("w_x", "w_h", "b_x", "b_h") if reset_after else ("w_x", "w_h", "b_x")


def check_param_keys(name: str, cell: str, params, *, reset_after: bool = False) -> None:
    """Raise ``ValueError`` (prefixed ``name``) unless ``params`` has exactly ``param_keys``' keys.

    The message names each missing or unexpected key; for the GRU it also names the form, since the
    two forms differ by ``b_h`` only.
    """
    if not hasattr(params, "keys"):
        raise ValueError(f"{name}: params for {cell!r} must be a dict, got {type(params).__name__}")
    want = param_keys(cell, reset_after=reset_after)
    missing = [k for k in want if k not in params]
    extra = sorted(str(k) for k in params if k not in want)
    if not missing and not extra:
        return
    form = ""
    if cell == "gru":
        form = (" (a reset-after GRU, reset_after=True, has two biases: b_x and b_h)" if reset_after else
                " (a reset-before GRU, reset_after=False, has one bias per gate: b_x only; a b_h from an "
                "older jena_rnn adds to the same pre-activation, so use b_x + b_h as b_x)")
    what = "; ".join([f"missing {missing}"] * bool(missing) + [f"unexpected {extra}"] * bool(extra))
    raise ValueError(f"{name}: params for {cell!r} {what}; expected keys {list(want)}, "
                     f"got {sorted(map(str, params))}{form}")


def shape_of(a) -> tuple:
    """Return ``a.shape`` as a tuple, or () for an object without one (for error messages)."""
    return tuple(getattr(a, "shape", ()))


def check_params(name: str, cell: str, params, *, reset_after: bool = False) -> tuple[int, int]:
    """Raise ``ValueError`` (prefixed ``name``) unless ``params`` are ``cell``'s; return ``(F, H)``.

    Exactly ``param_keys``' keys, ``w_x [F, G*H]``, ``w_h [H, G*H]``, biases ``[G*H]`` (steps and ``unroll``).
    """
    check_param_keys(name, cell, params, reset_after=reset_after)
    g, w_x, w_h = GATES[cell], params["w_x"], params["w_h"]
    if len(shape_of(w_x)) != 2 or w_x.shape[1] % g:
        raise ValueError(f"{name}: params['w_x'] must be [F, {g}*H] for {cell!r}, got shape {shape_of(w_x)}")
    units = w_x.shape[1] // g
    if shape_of(w_h) != (units, g * units):
        raise ValueError(f"{name}: params['w_h'] has shape {shape_of(w_h)} but params['w_x'] {shape_of(w_x)} "
                         f"implies H={units}, i.e. ({units}, {g * units})")
    for k in param_keys(cell, reset_after=reset_after)[2:]:
        if shape_of(params[k]) != (g * units,):
            raise ValueError(f"{name}: params[{k!r}] has shape {shape_of(params[k])}, expected ({g * units},)")
    return w_x.shape[0], units


def check_state(name: str, cell: str, state, batch: int, units: int, *, arg: str = "state") -> None:
    """Raise ``ValueError`` unless ``state`` is ``cell``'s carry of shape [B, H] (``arg``: its argument name)."""
    if (cell == "lstm") != isinstance(state, LSTMState):
        raise ValueError(f"{name}: {arg} for {cell!r} must be "
                         + ("an LSTMState(h, c)" if cell == "lstm" else "an array h [B, H]")
                         + f", got {type(state).__name__}")
    for label, leaf in (state._asdict().items() if cell == "lstm" else [(arg, state)]):
        if shape_of(leaf) != (batch, units):
            raise ValueError(f"{name}: {label} must have shape (B, H) = ({batch}, {units}), got {shape_of(leaf)}")
