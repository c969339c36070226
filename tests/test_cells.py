"""cells.py: one step vs the numpy reference, param shapes and Keras init statistics."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_IDS, CELLS, B, F, H, random_params, step_kwargs

import reference as ref
from jena_rnn.nn import cells


def _ref_step(cell, reset_after, p, h, c, x, activation):
    if cell == "simple_rnn":
        return ref.simple_rnn_step(p, h, x, activation), None
    if cell == "lstm":
        return ref.lstm_step(p, h, c, x, activation)
    return ref.gru_step(p, h, x, reset_after, activation), None


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_step_matches_reference(cell, reset_after, activation, rng):
    p = random_params(cell, 1, F, H, reset_after=reset_after)
    h = rng.standard_normal((B, H)).astype(np.float32)
    c = rng.standard_normal((B, H)).astype(np.float32)
    x = rng.standard_normal((B, F)).astype(np.float32)
    state = cells.LSTMState(h=h, c=c) if cell == "lstm" else h
    step = jax.jit(lambda p, s, x: cells.STEP_FNS[cell](p, s, x, activation=activation,
                                                        **step_kwargs(cell, reset_after)))
    new_state, out = step(p, state, x)
    h_ref, c_ref = _ref_step(cell, reset_after, p, h, c, x, activation)
    np.testing.assert_allclose(out, h_ref, rtol=1e-5, atol=1e-6)
    if cell == "lstm":
        np.testing.assert_allclose(new_state.h, h_ref, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(new_state.c, c_ref, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(new_state, out)


def test_gru_forms_differ_on_same_params(rng):
    """The two forms on the same w_x, w_h, b_x (b_h = 0 in the reset-after form) give different h'."""
    before = random_params("gru", 2, F, H, reset_after=False)
    after = {**before, "b_h": np.zeros(3 * H, np.float32)}
    h, x = rng.standard_normal((B, H)), rng.standard_normal((B, F))
    a, _ = cells.gru_step(after, h, x, reset_after=True)
    b, _ = cells.gru_step(before, h, x, reset_after=False)
    assert not np.allclose(a, b, atol=1e-3)
    np.testing.assert_allclose(b, ref.gru_step(before, h, x, False), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a, ref.gru_step(after, h, x, True), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_param_shapes(cell, reset_after, key):
    gates = cells.GATES[cell]
    shapes = jax.tree.map(jnp.shape, cells.init_cell(cell, key, F, H, reset_after=bool(reset_after)))
    # one bias per gate, except the reset-after GRU's second, recurrent bias (STYLE.md "Naming")
    biases = {"b": (gates * H,)} if cell != "gru" else {"b_x": (gates * H,)}
    if reset_after:
        biases["b_h"] = (gates * H,)
    assert shapes == {"w_x": (F, gates * H), "w_h": (H, gates * H), **biases}
    assert sorted(shapes) == sorted(cells.param_keys(cell, reset_after=bool(reset_after)))


@pytest.mark.parametrize("cell,gates", [("simple_rnn", 1), ("lstm", 4), ("gru", 3)])
def test_init_statistics(cell, gates, key):
    """Keras defaults: glorot-uniform w_x, orthogonal w_h [H, G*H] (orthonormal rows), zero bias, forget bias 1."""
    f_in, units = 40, 24
    p = cells.init_cell(cell, key, f_in, units, reset_after=True)
    limit = np.sqrt(6.0 / (f_in + gates * units))  # Glorot & Bengio 2010: U(-l, l), l = sqrt(6 / (fan_in + fan_out))
    w_x = np.asarray(p["w_x"])
    assert np.abs(w_x).max() <= limit and np.abs(w_x).max() > 0.95 * limit
    np.testing.assert_allclose(w_x.var(), limit ** 2 / 3, rtol=0.1)  # variance of U(-l, l)
    w_h = np.asarray(p["w_h"], np.float64)
    np.testing.assert_allclose(w_h @ w_h.T, np.eye(units), atol=1e-5)
    if cell == "lstm":
        expected = np.concatenate([np.zeros(units), np.ones(units), np.zeros(2 * units)])
        np.testing.assert_array_equal(p["b"], expected)
    else:
        for k in ("b_x", "b_h") if cell == "gru" else ("b",):
            np.testing.assert_array_equal(p[k], 0.0)


def test_zero_state_and_unknown_names():
    state = cells.zero_state("lstm", B, H)
    assert isinstance(state, cells.LSTMState) and state.h.shape == state.c.shape == (B, H)
    assert cells.zero_state("gru", B, H).shape == (B, H)
    with pytest.raises(ValueError, match="unknown cell 'rnn'"):
        cells.init_cell("rnn", jax.random.key(0), F, H)
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        cells.get_activation("gelu")


def test_step_errors_name_the_argument():
    p = cells.init_gru(jax.random.PRNGKey(0), F, H)
    h, x = jnp.zeros((B, H)), jnp.zeros((B, F))
    with pytest.raises(ValueError, match=rf"gru_step: x has 4 features but params\['w_x'\] expects {F}"):
        cells.gru_step(p, h, jnp.zeros((B, 4)))
    with pytest.raises(ValueError, match=r"gru_step: x must be \[B, F\] \(rank 2\)"):
        cells.gru_step(p, h, jnp.zeros((B, 1, F)))
    with pytest.raises(ValueError, match=rf"gru_step: h must have shape \(B, H\) = \({B}, {H}\), got \({B}, {H + 1}\)"):
        cells.gru_step(p, jnp.zeros((B, H + 1)), x)
    lp = cells.init_lstm(jax.random.PRNGKey(0), F, H)
    with pytest.raises(ValueError, match=r"lstm_step: state for 'lstm' must be an LSTMState\(h, c\), got "):
        cells.lstm_step(lp, h, x)
    with pytest.raises(ValueError, match=r"gru_step: h for 'gru' must be an array h \[B, H\], got LSTMState"):
        cells.gru_step(p, cells.LSTMState(h, h), x)
    # the params' shapes: the same check (cells.check_params) as rnn.unroll's, named for the step
    with pytest.raises(ValueError, match=rf"gru_step: params\['w_h'\] has shape \({3 * H}, {H}\) but params\['w_x'\] "
                                         rf"\({F}, {3 * H}\) implies H={H}, i.e. \({H}, {3 * H}\)"):
        cells.gru_step({**p, "w_h": p["w_h"].T}, h, x)
    with pytest.raises(ValueError, match=rf"lstm_step: params\['b'\] has shape \({H},\), expected \({4 * H},\)"):
        cells.lstm_step({**lp, "b": jnp.zeros(H)}, cells.LSTMState(h, h), x)
    with pytest.raises(ValueError, match=r"simple_rnn_step: params\['w_x'\] must be \[F, 1\*H\] for 'simple_rnn', "
                                         r"got shape \(3,\)"):
        cells.simple_rnn_step({"w_x": jnp.zeros(F), "w_h": jnp.zeros((H, H)), "b": jnp.zeros(H)}, h, x)
    with pytest.raises(ValueError, match=r"lstm_step: c must have shape"):
        cells.lstm_step(lp, cells.LSTMState(h, jnp.zeros((B, 1))), x)
    # the checks read static shapes, so the step still jits
    jax.jit(cells.gru_step)(p, h, x)
