"""rnn.py: unroll vs the reference, scan mechanics on a closed-form toy, masking, dropout, bidirectional, stack."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import CELL_IDS, CELLS, B, F, H, T, random_params, step_kwargs
from jax.test_util import check_grads

import reference as ref
from jena_rnn.nn.cells import LSTMState
from jena_rnn import backend
from jena_rnn.nn import cells, rnn
from jena_rnn.config import LayerConfig


def _h(state):
    return state.h if isinstance(state, cells.LSTMState) else state


def _state(cell, h, c):
    return cells.LSTMState(h=h, c=c) if cell == "lstm" else h


@pytest.mark.parametrize("b,t,f,h", [(B, T, F, H), (1, 1, 4, 2)], ids=["B2T7F3H5", "B1T1F4H2"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_unroll_matches_reference_and_step_loop(cell, reset_after, b, t, f, h, rng):
    p = random_params(cell, 3, f, h, reset_after=reset_after)
    xs = rng.standard_normal((b, t, f)).astype(np.float32)
    h0, c0 = (rng.standard_normal((b, h)).astype(np.float32) for _ in range(2))
    kw = step_kwargs(cell, reset_after)
    h_ref, c_ref, ys_ref = ref.run(cell, p, xs, reset_after, h0=h0, c0=c0)

    state, loop_ys = _state(cell, h0, c0), []
    for k in range(t):
        state, y = cells.STEP_FNS[cell](p, state, xs[:, k], **kw)
        loop_ys.append(y)
    loop_ys = np.stack(loop_ys, axis=1)

    ys_in_loop = None
    for hoist in (False, True):
        pol = backend.scan_policy(hoist_input=hoist)
        final, ys = rnn.unroll(cell, p, xs, state=_state(cell, h0, c0), policy=pol, **kw)
        assert ys.shape == (b, t, h)
        np.testing.assert_allclose(ys, ys_ref, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ys, loop_ys, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(_h(final), h_ref, rtol=1e-4, atol=1e-5)
        if cell == "lstm":
            np.testing.assert_allclose(final.c, c_ref, rtol=1e-4, atol=1e-5)
        if hoist:  # same gate function on both paths: hoisting changes only where x @ w_x happens
            np.testing.assert_allclose(ys, ys_in_loop, rtol=1e-6, atol=1e-6)
        ys_in_loop = ys


# A SimpleRNN with w_x = w_h = I, b = 0 and a linear activation is a running sum: h_t = h_{t-1} + x_t.
SUM = {"w_x": np.eye(3, dtype=np.float32), "w_h": np.eye(3, dtype=np.float32), "b": np.zeros(3, np.float32)}


def _toy(xs, **kw):
    return rnn.unroll("simple_rnn", SUM, xs, activation="linear", **kw)


@pytest.mark.parametrize("hoist", [False, True])
def test_unroll_mechanics_running_sum(hoist, rng):
    xs = rng.integers(-3, 4, (B, T, 3)).astype(np.float32)  # integers: every sum below is exact
    h0 = rng.integers(-3, 4, (B, 3)).astype(np.float32)
    fwd = h0[:, None] + np.cumsum(xs, axis=1)
    pol = backend.scan_policy(hoist_input=hoist)
    final, ys = _toy(xs, state=h0, policy=pol.replace(unroll=3))  # lax.scan's unroll=3 does not divide T=7
    np.testing.assert_array_equal(ys, fwd)
    np.testing.assert_array_equal(final, fwd[:, -1])
    # reverse=True: t = T-1 .. 0, outputs aligned to the original time axis; last output is at t = 0
    bwd = h0[:, None] + np.flip(np.cumsum(np.flip(xs, 1), axis=1), 1)
    np.testing.assert_array_equal(_toy(xs, state=h0, reverse=True, policy=pol)[1], bwd)
    np.testing.assert_array_equal(_toy(xs, state=h0, reverse=True, return_sequences=False)[1], bwd[:, 0])
    # go_backwards=True (Keras): reversed input, outputs in processing order
    np.testing.assert_array_equal(_toy(xs, state=h0, go_backwards=True, policy=pol)[1],
                                  h0[:, None] + np.cumsum(np.flip(xs, 1), axis=1))
    np.testing.assert_array_equal(_toy(xs, return_sequences=False)[1], np.cumsum(xs, axis=1)[:, -1])
    # a mask with holes: masked steps add nothing and output the carried sum
    mask = rng.random((B, T)) < 0.6
    final, ys = _toy(xs, mask=mask, policy=pol)
    np.testing.assert_array_equal(ys, np.cumsum(xs * mask[..., None], axis=1))
    # lengths with right and pre padding
    lengths = np.array([T, 3])
    right = np.arange(T)[None] < lengths[:, None]
    np.testing.assert_array_equal(_toy(xs, lengths=lengths)[1], np.cumsum(xs * right[..., None], axis=1))
    pre = np.arange(T)[None] >= T - lengths[:, None]
    np.testing.assert_array_equal(_toy(xs, lengths=lengths, padding="pre")[1],
                                  np.cumsum(xs * pre[..., None], axis=1))


@pytest.mark.parametrize("padding", ["right", "pre"])
@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_padding_does_not_change_final_state(cell, reset_after, padding, rng):
    p = random_params(cell, 4, F, H, reset_after=reset_after)
    kw = step_kwargs(cell, reset_after)
    lengths = np.array([T, 4])
    xs = 10 * rng.standard_normal((B, T, F)).astype(np.float32)  # large garbage in the padding
    final, _ = rnn.unroll(cell, p, xs, lengths=lengths, padding=padding, **kw)
    mask = (np.arange(T)[None] < lengths[:, None]) if padding == "right" else \
        (np.arange(T)[None] >= T - lengths[:, None])
    final_m, _ = rnn.unroll(cell, p, xs, mask=mask, **kw)
    for i, n in enumerate(lengths):
        real = xs[i:i + 1, :n] if padding == "right" else xs[i:i + 1, T - n:]
        h_ref, _, _ = ref.run(cell, p, real, reset_after)
        np.testing.assert_allclose(_h(final)[i], h_ref[0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(_h(final_m)[i], h_ref[0], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_gradients_match_finite_differences(cell, reset_after):
    # float64 so that central differences are meaningful at check_grads' default tolerances
    with jax.enable_x64(True):
        p = {k: v.astype(np.float64) for k, v in random_params(cell, 5, 3, 2, reset_after=reset_after).items()}
        xs = np.random.default_rng(5).standard_normal((2, 3, 3))
        f = jax.jit(lambda p, xs: rnn.unroll(cell, p, xs, **step_kwargs(cell, reset_after))[1].sum())
        check_grads(f, (p, xs), order=1, modes=["rev"])


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_remat_keeps_values_and_gradients(cell, reset_after, rng):
    # dropout and a mask on, so every branch of the scan step runs under jax.checkpoint
    p = random_params(cell, 7, F, H, reset_after=reset_after)
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    kw = dict(step_kwargs(cell, reset_after), lengths=np.array([T, 4]), dropout=0.2,
              recurrent_dropout=0.3, train=True, key=jax.random.key(1))

    def loss(p, remat):
        return jnp.sum(rnn.unroll(cell, p, xs, policy=backend.scan_policy(remat=remat), **kw)[1] ** 2)

    ys = {r: rnn.unroll(cell, p, xs, policy=backend.scan_policy(remat=r), **kw)[1] for r in (False, True)}
    np.testing.assert_array_equal(ys[True], ys[False])  # remat changes only the backward pass
    g_off, g_on = (jax.jit(jax.grad(loss), static_argnums=1)(p, r) for r in (False, True))
    for k in g_off:
        np.testing.assert_allclose(g_on[k], g_off[k], rtol=1e-5, atol=1e-6, err_msg=k)


def test_dropout_masks_values_rate_and_keys():
    m_in, m_rec = rnn.dropout_masks(jax.random.key(1), 4000, 50, 60, 0.3, 0.5)
    assert m_in.shape == (4000, 50) and m_rec.shape == (4000, 60)
    assert set(np.unique(m_in)) <= {0.0, np.float32(1 / 0.7)} and set(np.unique(m_rec)) <= {0.0, 2.0}
    assert abs((m_in == 0).mean() - 0.3) < 0.01 and abs((m_rec == 0).mean() - 0.5) < 0.01  # 3 sigma ~ 0.003
    other, _ = rnn.dropout_masks(jax.random.key(2), 4000, 50, 60, 0.3, 0.5)
    assert (other != m_in).any()
    assert rnn.dropout_masks(jax.random.key(1), 2, 3, 4, 0.0, 0.0) == (None, None)


def test_dropout_masks_rows_are_slices_of_the_whole_batch():
    full = rnn.dropout_masks(jax.random.key(3), 12, 5, 6, 0.4, 0.5)
    slice_of = jax.jit(lambda start: rnn.dropout_masks(jax.random.key(3), 4, 5, 6, 0.4, 0.5, rows=(start, 12)))
    for start in (0, 4, 8):  # traced start, as data parallelism passes it
        got = slice_of(start)
        for g, f in zip(got, full):
            assert g.shape[0] == 4
            np.testing.assert_array_equal(g, f[start:start + 4])


def test_dropout_masks_are_per_sequence_and_constant_over_time():
    b, key = 16, jax.random.key(7)
    xs = np.ones((b, T, 3), np.float32)
    # input dropout only: h_t = sum_{s<=t} x_s * m = (t + 1) * m
    _, ys = _toy(xs, dropout=0.5, key=key, train=True)
    m_in, _ = rnn.dropout_masks(key, b, 3, 3, 0.5, 0.0)
    np.testing.assert_allclose(ys, (np.arange(1, T + 1)[None, :, None] * np.asarray(m_in)[:, None]), rtol=1e-6)
    assert len({tuple(row) for row in np.asarray(m_in)}) > 1  # differs across sequences
    # recurrent dropout only: h_t = x_t + m * h_{t-1}
    _, ys = _toy(xs, recurrent_dropout=0.5, key=key, train=True)
    _, m_rec = rnn.dropout_masks(key, b, 3, 3, 0.0, 0.5)
    h, expect = np.zeros((b, 3)), []
    for _ in range(T):
        h = 1.0 + np.asarray(m_rec) * h
        expect.append(h)
    np.testing.assert_allclose(ys, np.stack(expect, 1), rtol=1e-6)
    # another key gives other masks; train=False switches dropout off
    assert not np.allclose(_toy(xs, dropout=0.5, key=jax.random.key(8), train=True)[1], ys)
    np.testing.assert_array_equal(_toy(xs, dropout=0.5, recurrent_dropout=0.5, key=key)[1], _toy(xs)[1])


def test_lstm_recurrent_dropout_leaves_c_alone(rng):
    p = random_params("lstm", 6, F, H)
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    key = jax.random.key(3)
    _, ys = rnn.unroll("lstm", p, xs, recurrent_dropout=0.4, key=key, train=True)
    _, m = rnn.dropout_masks(key, B, F, H, 0.0, 0.4)
    h, c, expect = np.zeros((B, H)), np.zeros((B, H)), []
    for t in range(T):
        h, c = ref.lstm_step(p, h * np.asarray(m), c, xs[:, t])  # mask on h @ w_h only
        expect.append(h)
    np.testing.assert_allclose(ys, np.stack(expect, 1), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell,reset_after", CELLS, ids=CELL_IDS)
def test_bidirectional_is_forward_plus_realigned_backward(cell, reset_after, rng):
    p = {"forward": random_params(cell, 8, F, H, reset_after=reset_after), "backward": random_params(cell, 9, F, H, reset_after=reset_after)}
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    kw = step_kwargs(cell, reset_after)
    _, fw = rnn.unroll(cell, p["forward"], xs, **kw)
    _, bw = rnn.unroll(cell, p["backward"], xs, go_backwards=True, **kw)  # Keras's backward layer
    _, ys = rnn.bidirectional(cell, p, xs, return_sequences=True, **kw)
    np.testing.assert_allclose(ys, np.concatenate([fw, np.flip(bw, 1)], -1), rtol=1e-5, atol=1e-6)
    (_, bw_final), last = rnn.bidirectional(cell, p, xs, **kw)
    np.testing.assert_allclose(last, np.concatenate([fw[:, -1], bw[:, -1]], -1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_h(bw_final), bw[:, -1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode,merge", [("sum", np.add), ("ave", lambda a, b: (a + b) / 2), ("mul", np.multiply)])
def test_bidirectional_merge_modes(mode, merge, rng):
    p = {"forward": random_params("gru", 8, F, H), "backward": random_params("gru", 9, F, H)}
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    _, both = rnn.bidirectional("gru", p, xs, merge_mode="concat")
    _, ys = rnn.bidirectional("gru", p, xs, merge_mode=mode)
    np.testing.assert_allclose(ys, merge(both[:, :H], both[:, H:]), rtol=1e-6)


def test_stack_composes_layers(key, rng):
    layers = (LayerConfig(cell="gru", units=4, reset_after=True),
              LayerConfig(cell="lstm", units=H, activation="relu", bidirectional=True))
    params = rnn.init_stack(key, layers, F)
    assert jax.tree.map(jnp.shape, params[1]["backward"]) == {"w_x": (4, 4 * H), "w_h": (H, 4 * H), "b": (4 * H,)}
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    _, mid = rnn.unroll("gru", params[0], xs, reset_after=True)
    _, top = rnn.bidirectional("lstm", params[1], mid, activation="relu", return_sequences=True)
    out = rnn.stack(layers, params, xs, return_sequences=True)
    np.testing.assert_allclose(out, top, rtol=1e-6, atol=1e-6)
    last = rnn.stack(layers, params, xs, policy=backend.scan_policy(hoist_input=True))
    assert last.shape == (B, 2 * H)
    np.testing.assert_allclose(last, np.concatenate([top[:, -1, :H], top[:, 0, H:]], -1), rtol=1e-5, atol=1e-6)


_P = {"w_x": np.zeros((F, 3 * H), np.float32), "w_h": np.zeros((H, 3 * H), np.float32),
      "b_x": np.zeros(3 * H, np.float32)}  # the reset-before GRU (unroll's default): one bias
_XS = np.zeros((B, T, F), np.float32)


@pytest.mark.parametrize("args,kwargs,match", [
    (("gru", _P, np.zeros((B, F))), {}, r"xs must be \[B, T, F\] \(rank 3\), got shape \(2, 3\)"),
    (("gru", _P, np.zeros((B, T, 4))), {}, r"xs has 4 features but params\['w_x'\] expects 3 \(shape \(3, 15\)\)"),
    (("gru", {**_P, "w_h": np.zeros((3 * H, H))}, _XS), {}, r"params\['w_h'\] has shape \(15, 5\)"),
    (("gru", {**_P, "b_h": np.zeros(H)}, _XS), {"reset_after": True},
     r"params\['b_h'\] has shape \(5,\), expected \(15,\)"),
    (("lstm", _P, _XS), {}, r"missing \['b'\]; unexpected \['b_x'\]"),
    (("lstm", {"w_x": _P["w_x"], "w_h": _P["w_h"], "b": _P["b_x"]}, _XS), {}, r"must be \[F, 4\*H\]"),
    (("cnn", _P, _XS), {}, "unknown cell 'cnn'"),
    (("gru", _P, _XS), {"dropout": 1.0}, r"dropout must be in \[0, 1\), got 1.0"),
    (("gru", _P, _XS), {"recurrent_dropout": -0.1}, r"recurrent_dropout must be in \[0, 1\)"),
    (("gru", _P, _XS), {"dropout": 0.2, "train": True}, "needs a PRNG key"),
    (("gru", _P, _XS), {"lengths": np.array([1, 2, 3])}, r"lengths must have shape \(B,\) = \(2,\), got \(3,\)"),
    (("gru", _P, _XS), {"mask": np.ones((B, T + 1), bool)}, r"mask must have shape \(B, T\) = \(2, 7\), got \(2, 8\)"),
    (("gru", _P, _XS), {"padding": "post"}, "padding must be 'right' or 'pre'"),
    (("gru", _P, _XS), {"activation": "gelu"}, "unknown activation 'gelu'"),
    (("gru", _P, _XS), {"state": np.zeros((B, H + 1))}, r"state must have shape \(B, H\) = \(2, 5\), got \(2, 6\)"),
    (("gru", _P, _XS), {"state": LSTMState(np.zeros((B, H)), np.zeros((B, H)))}, r"state for 'gru' must be an array"),
    (("lstm", {"w_x": np.zeros((F, 4 * H)), "w_h": np.zeros((H, 4 * H)), "b": np.zeros(4 * H)}, _XS),
     {"state": np.zeros((B, H))}, r"state for 'lstm' must be an LSTMState\(h, c\), got ndarray"),
    (("gru", _P, _XS), {"reverse": True, "go_backwards": True}, "ambiguous"),
], ids=lambda v: None)
def test_unroll_errors(args, kwargs, match):
    with pytest.raises(ValueError, match=match):
        rnn.unroll(*args, **kwargs)


def test_bidirectional_and_stack_errors():
    p = {"forward": _P, "backward": _P}
    with pytest.raises(ValueError, match="merge_mode must be one of"):
        rnn.bidirectional("gru", p, _XS, merge_mode="max")
    with pytest.raises(ValueError, match="keys 'forward' and 'backward'"):
        rnn.bidirectional("gru", _P, _XS)
    with pytest.raises(ValueError, match="1 layers but 2 param dicts"):
        rnn.stack((LayerConfig(),), [_P, _P], _XS)
