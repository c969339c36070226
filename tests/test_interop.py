"""interop.py: PyTorch and Keras layouts. Outputs vs torch.nn (when installed) and vs a numpy Keras GRU;
round trips bit-exact."""
import jax
import numpy as np
import pytest
from conftest import B, F, H, T, random_params

import reference as ref
from jena_rnn.nn import interop, rnn

TORCH_CELLS = [("simple_rnn", "RNN"), ("lstm", "LSTM"), ("gru", "GRU")]


def _torch():
    return pytest.importorskip("torch", reason="torch is not installed: PyTorch cross-checks skipped")


def _torch_module(torch, name, seed):
    torch.manual_seed(seed)
    module = getattr(torch.nn, name)(F, H, batch_first=True)
    with torch.no_grad():  # default biases are small; make every block matter
        for p in module.parameters():
            p.uniform_(-0.8, 0.8)
    return module


@pytest.mark.parametrize("cell,name", TORCH_CELLS, ids=[c for c, _ in TORCH_CELLS])
def test_from_torch_matches_torch_outputs(cell, name, rng):
    torch = _torch()
    module = _torch_module(torch, name, 0)
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    with torch.no_grad():
        expected = module(torch.from_numpy(xs))[0].numpy()
    params = interop.from_torch(cell, module.state_dict())
    _, ys = rnn.unroll(cell, params, xs, reset_after=True)  # torch's GRU is the reset-after form
    np.testing.assert_allclose(ys, expected, rtol=1e-5, atol=1e-5)  # float32 on both sides


@pytest.mark.parametrize("cell,name", TORCH_CELLS, ids=[c for c, _ in TORCH_CELLS])
def test_to_torch_loads_into_torch(cell, name, rng):
    torch = _torch()
    module = getattr(torch.nn, name)(F, H, batch_first=True)
    params = random_params(cell, 1, F, H, reset_after=True)  # torch's only GRU form
    module.load_state_dict({k: torch.from_numpy(v) for k, v in interop.to_torch(cell, params).items()})
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    with torch.no_grad():
        out = module(torch.from_numpy(xs))[0].numpy()
    _, ys = rnn.unroll(cell, params, xs, reset_after=True)
    np.testing.assert_allclose(ys, out, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cell", ["simple_rnn", "lstm", "gru"])
def test_torch_round_trips_are_exact(cell):
    params = random_params(cell, 2, F, H, reset_after=True)
    back = interop.from_torch(cell, interop.to_torch(cell, params, layer=1, suffix="_reverse"),
                              layer=1, suffix="_reverse")
    assert jax.tree.map(np.array_equal, back, params) == {k: True for k in params}
    r = np.random.default_rng(3)
    g = {"simple_rnn": 1, "lstm": 4, "gru": 3}[cell]
    torch_w = (r.standard_normal((g * H, F)).astype(np.float32), r.standard_normal((g * H, H)).astype(np.float32),
               r.standard_normal(g * H).astype(np.float32),
               r.standard_normal(g * H).astype(np.float32) if cell == "gru" else np.zeros(g * H, np.float32))
    again = interop.to_torch(cell, interop.from_torch(cell, torch_w))
    for a, b in zip(again.values(), torch_w):
        np.testing.assert_array_equal(a, b)


def test_from_torch_negates_gru_z_block():
    """torch r|z|n -> ours z|r|n, with z = -torch z (σ(-a) = 1-σ(a))."""
    w = np.arange(3 * H * F, dtype=np.float32).reshape(3 * H, F)
    p = interop.from_torch("gru", (w, np.zeros((3 * H, H), np.float32), None, None))
    np.testing.assert_array_equal(p["w_x"][:, :H], -w[H:2 * H].T)
    np.testing.assert_array_equal(p["w_x"][:, H:2 * H], w[:H].T)
    np.testing.assert_array_equal(p["w_x"][:, 2 * H:], w[2 * H:].T)


@pytest.mark.parametrize("reset_after", [True, False], ids=["after", "before"])
def test_from_keras_gru_matches_keras_equations(reset_after, rng):
    kernel = rng.standard_normal((F, 3 * H)).astype(np.float32) * 0.5
    rec = rng.standard_normal((H, 3 * H)).astype(np.float32) * 0.5
    bias = rng.standard_normal((2, 3 * H) if reset_after else (3 * H,)).astype(np.float32) * 0.5
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    params = interop.from_keras("gru", kernel, rec, bias)  # reset_after inferred from bias.ndim
    _, ys = rnn.unroll("gru", params, xs, reset_after=reset_after)
    np.testing.assert_allclose(ys, ref.keras_gru(kernel, rec, bias, xs, reset_after), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell,reset_after", [("simple_rnn", None), ("lstm", None), ("gru", True), ("gru", False)],
                         ids=["simple", "lstm", "gru-after", "gru-before"])
def test_keras_round_trips_are_exact(cell, reset_after):
    params = random_params(cell, 4, F, H, reset_after=reset_after)  # reset_after=False: one bias, as Keras
    keras = interop.to_keras(cell, params, reset_after=reset_after)
    back = interop.from_keras(cell, *keras, reset_after=reset_after)
    assert jax.tree.map(np.array_equal, back, params) == {k: True for k in params}
    again = interop.to_keras(cell, back, reset_after=reset_after)
    for a, b in zip(again, keras):
        np.testing.assert_array_equal(a, b)
    if cell == "lstm":  # Keras's [i, f, c, o] is our i, f, g, o: nothing moves
        np.testing.assert_array_equal(keras[0], params["w_x"])


def test_keras_reset_before_export_is_our_one_bias():
    """Our reset-before GRU's one bias b_x is Keras 2.0.8's one bias (z negated); both compute the same."""
    params = random_params("gru", 5, F, H, reset_after=False)
    assert sorted(params) == ["b_x", "w_h", "w_x"]
    xs = np.random.default_rng(6).standard_normal((B, T, F)).astype(np.float32)
    _, ys = rnn.unroll("gru", params, xs, reset_after=False)
    kernel, rec, bias = interop.to_keras("gru", params, reset_after=False)
    np.testing.assert_array_equal(bias, np.concatenate([-params["b_x"][:H], params["b_x"][H:]]))
    np.testing.assert_allclose(ys, ref.keras_gru(kernel, rec, bias, xs, False), rtol=1e-4, atol=1e-5)


def test_interop_errors():
    with pytest.raises(ValueError, match="reset_after=True|False"):
        interop.to_keras("gru", random_params("gru", 0, F, H))
    with pytest.raises(ValueError, match=r"reset_after=True must have shape \(2, 15\), got \(15,\)"):
        interop.from_keras("gru", np.zeros((F, 3 * H)), np.zeros((H, 3 * H)), np.zeros(3 * H), reset_after=True)
    with pytest.raises(ValueError, match=r"weight_hh has shape \(20, 4\), expected \(20, 5\)"):
        interop.from_torch("lstm", (np.zeros((4 * H, F)), np.zeros((4 * H, 4)), None, None))
    with pytest.raises(ValueError, match="state_dict lacks"):
        interop.from_torch("lstm", {"weight_ih_l1": np.zeros((4 * H, F))})
