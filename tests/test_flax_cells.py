"""jena_rnn.flax.cells: our cells inside nnx.RNN / nnx.Bidirectional equal rnn.unroll; Flax's own cells map exactly."""
import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jena_rnn.flax
from jena_rnn import flax as jflax
from jena_rnn.nn import cells, rnn
from jena_rnn.nn.spec import LSTMState

from conftest import B, CELL_IDS, CELLS, F, H, T, random_params, step_kwargs

CLASSES = {"simple_rnn": jflax.SimpleCell, "lstm": jflax.LSTMCell, "gru": jflax.GRUCell}


def _cell(kind, reset_after, seed=0):
    return CLASSES[kind].from_params(random_params(kind, seed, F, H, reset_after=reset_after),
                                     **step_kwargs(kind, reset_after))


def _xs(seed=1, shape=(B, T, F)):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


def test_the_package_name_does_not_shadow_flax():
    assert jena_rnn.flax is jflax and jflax.__name__ == "jena_rnn.flax"
    assert jflax.cells.nnx is flax.nnx and jflax.layers.nnx is flax.nnx
    assert "jena_rnn" not in flax.__file__


@pytest.mark.parametrize("kind,reset_after", CELLS, ids=CELL_IDS)
def test_nnx_rnn_over_our_cell_equals_unroll_values_and_gradients(kind, reset_after):
    cell, xs = _cell(kind, reset_after), _xs()
    kw = step_kwargs(kind, reset_after)
    w = _xs(2, (B, T, H))  # a weighted sum, so that every output enters the gradient differently

    def loss_nnx(c):
        return jnp.sum(nnx.RNN(c)(xs) * w)

    def loss_pure(p):
        return jnp.sum(rnn.unroll(kind, p, xs, **kw)[1] * w)

    params = cell.to_params()
    np.testing.assert_allclose(nnx.RNN(cell)(xs), rnn.unroll(kind, params, xs, **kw)[1], rtol=1e-6, atol=1e-6)
    got, want = nnx.grad(loss_nnx)(cell), jax.grad(loss_pure)(params)
    assert set(want) == set(cells.param_keys(kind, reset_after=bool(reset_after)))
    for k in want:
        np.testing.assert_allclose(got[k][...], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


@pytest.mark.parametrize("kind,reset_after", CELLS, ids=CELL_IDS)
def test_nnx_bidirectional_over_our_cells_equals_rnn_bidirectional(kind, reset_after):
    fw, bw, xs = _cell(kind, reset_after, 0), _cell(kind, reset_after, 5), _xs()
    got = nnx.Bidirectional(nnx.RNN(fw), nnx.RNN(bw))(xs)
    _, want = rnn.bidirectional(kind, {"forward": fw.to_params(), "backward": bw.to_params()}, xs,
                                return_sequences=True, **step_kwargs(kind, reset_after))
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("kind,reset_after", CELLS, ids=CELL_IDS)
def test_to_params_from_params_round_trip_is_exact(kind, reset_after):
    params = random_params(kind, 3, F, H, reset_after=reset_after)
    cell = CLASSES[kind].from_params(params, **step_kwargs(kind, reset_after))
    back = cell.to_params()
    assert set(back) == set(params)
    for k in params:
        np.testing.assert_array_equal(back[k], params[k])
    again = CLASSES[kind].from_params(back, **step_kwargs(kind, reset_after))
    np.testing.assert_array_equal(nnx.RNN(again)(_xs()), nnx.RNN(cell)(_xs()))


@pytest.mark.parametrize("kind,reset_after", CELLS, ids=CELL_IDS)
def test_cells_draw_our_initialisers(kind, reset_after):
    cell = CLASSES[kind](F, H, rngs=nnx.Rngs(params=7), **step_kwargs(kind, reset_after))
    # the first key of the same stream
    want = cells.init_cell(kind, nnx.Rngs(params=7).params(), F, H, reset_after=bool(reset_after))
    for k in want:
        np.testing.assert_array_equal(cell.to_params()[k], want[k])


def test_lstm_carry_is_flax_order_c_then_h():
    cell, x = _cell("lstm", None), _xs(4, (B, F))
    c, h = _xs(5, (B, H)), _xs(6, (B, H))  # distinct, so a swapped order fails
    (c_new, h_new), y = cell((c, h), x)
    want, _ = cells.lstm_step(cell.to_params(), LSTMState(h=h, c=c), x)
    np.testing.assert_allclose(c_new, want.c, rtol=1e-6)
    np.testing.assert_allclose(h_new, want.h, rtol=1e-6)
    np.testing.assert_array_equal(y, h_new)
    carry = cell.initialize_carry((B, F))
    assert isinstance(carry, tuple) and [a.shape for a in carry] == [(B, H), (B, H)]
    assert cell.num_feature_axes == 1


def test_extra_batch_axes_are_flattened_and_restored():
    cell = _cell("gru", False)
    x, h = _xs(4, (2, 3, F)), _xs(5, (2, 3, H))
    h_new, _ = cell(h, x)
    want, _ = cells.gru_step(cell.to_params(), h.reshape(6, H), x.reshape(6, F))
    np.testing.assert_allclose(h_new, want.reshape(2, 3, H), rtol=1e-6)
    assert cell.initialize_carry((2, 3, F)).shape == (2, 3, H)


def _randomise(module, seed):
    """Every Param of a Flax cell (biases included) drawn N(0, 0.5²)."""
    r = np.random.default_rng(seed)
    for _, var in nnx.iter_graph(module):
        if isinstance(var, nnx.Param):
            var[...] = jnp.asarray(0.5 * r.standard_normal(var.shape), jnp.float32)
    return module


@pytest.mark.parametrize("flax_cls,ours", [(nnx.GRUCell, jflax.GRUCell), (nnx.LSTMCell, jflax.LSTMCell),
                                           (nnx.SimpleCell, jflax.SimpleCell)], ids=["gru", "lstm", "simple"])
def test_flax_own_cell_maps_exactly_onto_ours(flax_cls, ours):
    """The mapping of cells.py's docstring: Flax's GRU is reset-after with b_h = 0, gates r, z, n, and its
    z is our 1-z (negated z block); Flax's LSTM has our order i, f, g, o with the bias on the h-Linears."""
    theirs = _randomise(flax_cls(F, H, rngs=nnx.Rngs(0)), 11)
    params, kwargs = jflax.params_from_flax(theirs)
    assert kwargs == ({"reset_after": True} if flax_cls is nnx.GRUCell else {})
    mine, xs = ours.from_params(params, **kwargs), _xs()
    np.testing.assert_allclose(nnx.RNN(mine)(xs), nnx.RNN(theirs)(xs), rtol=1e-5, atol=1e-5)
    if flax_cls is nnx.GRUCell:  # the z block really is negated, the r block copied (a swap would fail)
        ki = theirs.dense_i.kernel[...]
        np.testing.assert_array_equal(params["w_x"][:, :H], -ki[:, H:2 * H])
        np.testing.assert_array_equal(params["w_x"][:, H:2 * H], ki[:, :H])
        np.testing.assert_array_equal(params["b_h"], 0.0)


def test_params_from_flax_refuses_what_does_not_map():
    with pytest.raises(ValueError, match="residual=True"):
        jflax.params_from_flax(nnx.SimpleCell(F, H, residual=True, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="activation_fn=tanh"):
        jflax.params_from_flax(nnx.GRUCell(F, H, activation_fn=jax.nn.relu, rngs=nnx.Rngs(0)))
    with pytest.raises(ValueError, match="got Linear"):
        jflax.params_from_flax(nnx.Linear(F, H, rngs=nnx.Rngs(0)))


def test_cells_refuse_bad_arguments_naming_them():
    before = random_params("gru", 0, F, H, reset_after=False)
    with pytest.raises(ValueError, match=r"GRUCell.from_params: .*missing \['b_h'\]"):
        jflax.GRUCell.from_params(before, reset_after=True)
    with pytest.raises(ValueError, match="GRUCell: pass rngs"):
        jflax.GRUCell(F, H)
    with pytest.raises(ValueError, match="hidden_features must be a positive int, got 0"):
        jflax.GRUCell(F, 0, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="unknown activation 'swish'"):
        jflax.LSTMCell(F, H, activation="swish", rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"inputs have 4 features, expected in_features=3"):
        _cell("simple_rnn", None)(jnp.zeros((B, H)), jnp.zeros((B, 4)))
