"""nn/cudnn.py: cuDNN's packed LSTM layout, lstm_ref against our unroll, allowed(), and unroll's dispatch.

The real kernel (jax.experimental.rnn.lstm) needs a GPU; on the CPU the tests check the layout through
jax.experimental.rnn's own reference (lstm_ref) and replace the kernel by an lstm_ref-backed stand-in.
"""
import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import B, F, H, T, random_params
from jax.experimental import rnn as jrnn

from jena_rnn import backend
from jena_rnn.nn import cudnn, rnn
from jena_rnn.nn.cells import LSTMState

LENGTHS = np.array([T, 4], np.int32)  # one full row, one right-padded row (B = 2)
SCAN = backend.ScanPolicy(hoist_input=False, remat=False, gru_mask_barrier=False)
FORCED = dataclasses.replace(SCAN, cudnn_lstm=True)


@pytest.fixture
def inputs(rng):
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    state = LSTMState(*(0.5 * rng.standard_normal((2, B, H))).astype(np.float32))
    return random_params("lstm", 3, F, H), xs, state


def test_pack_unpack_round_trip_is_exact_and_has_cudnns_size():
    p = random_params("lstm", 1, F, H)
    w = cudnn.pack_lstm(p)
    assert w.shape == (jrnn.get_num_params_in_lstm(F, H, 1, False),)
    back = cudnn.unpack_lstm(w, F, H)
    assert set(back) == set(p)
    for k in p:
        np.testing.assert_array_equal(back[k], p[k])
    # the layout itself: W_ih = w_x.T first, then W_hh = w_h.T, then b_ih = b, then b_hh = 0
    w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(w, F, H, 1, False)
    np.testing.assert_array_equal(w_ih[0], p["w_x"].T)
    np.testing.assert_array_equal(w_hh[0], p["w_h"].T)
    np.testing.assert_array_equal(b_ih[0], p["b"])
    np.testing.assert_array_equal(b_hh[0], np.zeros(4 * H))
    bi = {"forward": p, "backward": random_params("lstm", 2, F, H)}
    wb = cudnn.pack_lstm(bi)
    assert wb.shape == (jrnn.get_num_params_in_lstm(F, H, 1, True),)
    back = cudnn.unpack_lstm(wb, F, H, bidirectional=True)
    for d in bi:
        for k in p:
            np.testing.assert_array_equal(back[d][k], bi[d][k])
    with pytest.raises(ValueError, match=r"unpack_lstm: weights must have shape \(\d+,\) for F=3, H=5"):
        cudnn.unpack_lstm(w[:-1], F, H)


def test_unpack_sums_the_two_cudnn_biases():
    w = jrnn.init_lstm_weight(jax.random.key(0), F, H, 1, False)
    _, _, b_ih, b_hh = jrnn.unpack_lstm_weights(w, F, H, 1, False)
    np.testing.assert_array_equal(cudnn.unpack_lstm(w, F, H)["b"], b_ih[0] + b_hh[0])


def _ref(params, xs, state, lengths):
    """jax.experimental.rnn.lstm_ref on our params, packed and unpacked through cuDNN's layout."""
    w = cudnn.pack_lstm(params)
    w_ih, w_hh, b_ih, b_hh = jrnn.unpack_lstm_weights(w, F, H, 1, False)
    return jrnn.lstm_ref(xs, state.h[None], state.c[None], w_ih, w_hh, b_ih, b_hh, jnp.asarray(lengths), F, H, 1,
                         0.0, False)


@pytest.mark.parametrize("lengths", [np.full(B, T, np.int32), LENGTHS], ids=["full", "right-padded"])
def test_lstm_ref_on_the_packed_weights_equals_our_unroll_values_and_gradients(inputs, lengths):
    params, xs, state = inputs
    y, h_n, c_n = _ref(params, xs, state, lengths)
    final, ys = rnn.unroll("lstm", params, xs, state=state, lengths=lengths, policy=SCAN)
    np.testing.assert_allclose(final.h, h_n[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(final.c, c_n[0], rtol=1e-5, atol=1e-5)
    valid = np.arange(T)[None, :, None] < lengths[:, None, None]
    np.testing.assert_allclose(np.where(valid, ys, 0.0), y, rtol=1e-5, atol=1e-5)  # cuDNN's 0 at padded steps

    def loss_ours(p):
        f, ys = rnn.unroll("lstm", p, xs, state=state, lengths=lengths, policy=SCAN)
        return jnp.sum(jnp.where(valid, ys, 0.0) ** 2) + jnp.sum(f.h * f.c)

    def loss_ref(p):
        y, h_n, c_n = _ref(p, xs, state, lengths)
        return jnp.sum(y ** 2) + jnp.sum(h_n[0] * c_n[0])

    g_ours, g_ref = jax.grad(loss_ours)(params), jax.grad(loss_ref)(params)
    for k in params:
        np.testing.assert_allclose(g_ours[k], g_ref[k], rtol=1e-5, atol=1e-5, err_msg=k)


def test_allowed_refuses_what_cudnn_cannot_run_and_says_why(inputs):
    params, xs, _ = inputs
    assert cudnn.allowed("lstm", xs, params) == (True, "")
    assert cudnn.allowed("lstm", xs, params, lengths=LENGTHS) == (True, "")
    refusals = {"recurrent dropout 0.2": dict(recurrent_dropout=0.2),
                "a traced rate counts": dict(recurrent_dropout=jnp.float32(0.0)),
                "activation 'relu'": dict(activation="relu"),
                "padding 'pre'": dict(lengths=LENGTHS, padding="pre"),
                "a mask": dict(mask=np.ones((B, T), bool)),
                "reverse/go_backwards with lengths": dict(lengths=LENGTHS, reverse=True)}
    for reason, kwargs in refusals.items():
        ok, why = cudnn.allowed("lstm", xs, params, **kwargs)
        assert not ok and reason in why, (kwargs, why)
    ok, why = cudnn.allowed("gru", xs, random_params("gru", 1, F, H))
    assert not ok and "cell 'gru'" in why
    ok, why = cudnn.allowed("lstm", xs.astype(np.float64), params)
    assert not ok and "float32 only" in why


def _stand_in(calls):
    """A kernel with jax.experimental.rnn.lstm's signature backed by lstm_ref, counting its calls; like the
    real primitive, it cannot be batched (pure_callback without a vmap_method raises under vmap)."""
    @partial(jax.custom_vjp, nondiff_argnums=(5, 6, 7, 8, 9))  # static arguments as the real one's (nondiff_argnums 5-9)
    def kernel(x, h0, c0, w, seq, in_f, units, layers, dropout, bidir):
        calls.append(x.shape)
        out = cudnn._reference(x, h0, c0, w, seq, in_features=in_f, units=units)
        return jax.pure_callback(lambda *a: tuple(np.asarray(v) for v in a),
                                 tuple(jax.ShapeDtypeStruct(o.shape, o.dtype) for o in out), *out)

    def fwd(x, h0, c0, w, seq, *static):
        return kernel(x, h0, c0, w, seq, *static), (x, h0, c0, w, seq)

    def bwd(in_f, units, layers, dropout, bidir, res, g):
        x, h0, c0, w, seq = res
        _, pull = jax.vjp(lambda *a: cudnn._reference(*a, seq, in_features=in_f, units=units), x, h0, c0, w)
        return (*pull(g), None)

    kernel.defvjp(fwd, bwd)
    return kernel


@pytest.mark.parametrize("kwargs", [dict(lengths=LENGTHS), dict(lengths=np.array([0, 9], np.int32)),
                                    dict(reverse=True), dict(go_backwards=True, return_sequences=False)],
                         ids=["lengths", "length-0-and-over-T", "reverse", "go-backwards"])
def test_unroll_dispatches_to_cudnn_when_the_policy_says_so_and_returns_the_scans_values(inputs, monkeypatch,
                                                                                      kwargs):
    params, xs, state = inputs
    calls = []
    monkeypatch.setattr(jrnn, "lstm", _stand_in(calls))
    f_scan, ys_scan = rnn.unroll("lstm", params, xs, state=state, policy=SCAN, **kwargs)
    assert calls == []
    f_cudnn, ys_cudnn = rnn.unroll("lstm", params, xs, state=state, policy=FORCED, **kwargs)
    assert calls == [(B, T, F)]
    for got, want in ((f_cudnn.h, f_scan.h), (f_cudnn.c, f_scan.c), (ys_cudnn, ys_scan)):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

    def loss(p, policy):
        f, ys = rnn.unroll("lstm", p, xs, state=state, policy=policy, **kwargs)
        return jnp.sum(ys ** 2) + jnp.sum(f.c)

    g_scan, g_cudnn = jax.grad(loss)(params, SCAN), jax.grad(loss)(params, FORCED)
    for k in params:
        np.testing.assert_allclose(g_cudnn[k], g_scan[k], rtol=1e-5, atol=1e-5, err_msg=k)
    # a refused layer (here: recurrent dropout while training) runs the scan even with the policy on
    calls.clear()
    rnn.unroll("lstm", params, xs, policy=FORCED, train=True, recurrent_dropout=0.3, key=jax.random.key(1))
    assert calls == []


def test_under_vmap_the_cudnn_path_runs_the_scan_with_the_same_values_and_gradients(inputs, monkeypatch):
    params, xs, state = inputs
    kernel = _stand_in([])
    monkeypatch.setattr(jrnn, "lstm", kernel)
    with pytest.raises(NotImplementedError):  # the stand-in, like cuDNN's primitive, has no batching rule
        jax.vmap(lambda x: kernel(x, state.h[None], state.c[None], cudnn.pack_lstm(params),
                                  jnp.full(B, T, jnp.int32), F, H, 1, 0.0, False))(jnp.stack([xs, xs]))
    members = jax.tree.map(lambda a: jnp.stack([a, 0.5 * a]), params)  # two sweep members

    def loss(p, policy):
        f, ys = rnn.unroll("lstm", p, xs, state=state, lengths=LENGTHS, policy=policy)
        return jnp.sum(ys ** 2) + jnp.sum(f.c)

    for fn in (jax.vmap(loss, in_axes=(0, None)), jax.vmap(jax.grad(loss), in_axes=(0, None))):
        want, got = fn(members, SCAN), jax.jit(fn, static_argnums=1)(members, FORCED)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5), got, want)


def test_the_policy_turns_cudnn_on_for_cuda_only():
    assert backend.for_backend("cuda").cudnn_lstm
    assert not any(backend.for_backend(b).cudnn_lstm for b in ("cpu", "gpu", "rocm", "tpu"))
    assert backend.scan_policy(cudnn_lstm=True, backend="cpu") == dataclasses.replace(backend.CPU, cudnn_lstm=True)
    assert not backend.scan_policy().cudnn_lstm or backend.platform() == "cuda"


@pytest.mark.skipif(jax.default_backend() != "gpu", reason="the real cuDNN kernel needs a GPU; this is not one")
def test_the_real_cudnn_kernel_matches_our_scan_on_a_gpu(inputs):
    params, xs, state = inputs
    with jax.default_matmul_precision("highest"):
        for kwargs in (dict(), dict(lengths=LENGTHS)):
            f_scan, ys_scan = rnn.unroll("lstm", params, xs, state=state, policy=SCAN, **kwargs)
            f_gpu, ys_gpu = rnn.unroll("lstm", params, xs, state=state, policy=FORCED, **kwargs)
            for got, want in ((f_gpu.h, f_scan.h), (f_gpu.c, f_scan.c), (ys_gpu, ys_scan)):
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
            g = [jax.grad(lambda p, pol: jnp.sum(rnn.unroll("lstm", p, xs, policy=pol, **kwargs)[1] ** 2))(params, pol)
                 for pol in (SCAN, FORCED)]
            for k in params:
                np.testing.assert_allclose(g[1][k], g[0][k], rtol=1e-4, atol=1e-5, err_msg=k)
