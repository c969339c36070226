"""backend.py: the per-backend policies, and that rnn.unroll compiles what its policy says (never other values)."""
import dataclasses

import jax
import numpy as np
import pytest
from conftest import B, F, H, T, random_params

from jena_rnn import backend
from jena_rnn.backend import ScanPolicy
from jena_rnn.nn import rnn


def test_cpu_entries_are_the_measured_choices_and_others_the_textbook_forms():
    # the decisions documented in backend.py (pointers to benchmarks/RESULTS.md there)
    assert backend.for_backend("cpu") == ScanPolicy(hoist_input=False, remat=True, gru_mask_barrier=True, unroll=1)
    for other in ("gpu", "tpu", "cuda"):
        # CUDA adds cuDNN's LSTM (tests/test_cudnn.py); the scan's choices are the same
        cudnn = other == "cuda"
        assert backend.for_backend(other) == ScanPolicy(hoist_input=True, remat=False, gru_mask_barrier=False,
                                                        cudnn_lstm=cudnn)
        assert backend.sweep_for_backend(other) == backend.SweepPolicy(traced_zero_rates=False, member_chunk=None)
    assert backend.sweep_for_backend("cpu") == backend.SweepPolicy(traced_zero_rates=True, member_chunk=2)
    assert backend.name() == jax.default_backend()
    assert backend.sweep_policy() == backend.sweep_for_backend(backend.name())


def test_scan_policy_overrides_only_what_is_given():
    assert backend.scan_policy(backend="cpu") == backend.CPU
    assert backend.scan_policy(remat=False, backend="cpu") == dataclasses.replace(backend.CPU, remat=False)
    assert backend.scan_policy(hoist_input=False, backend="gpu") == dataclasses.replace(backend.ACCELERATOR,
                                                                                       hoist_input=False)
    assert backend.scan_policy() == backend.for_backend(backend.platform())  # ModelConfig's None = per backend
    assert backend.CPU.replace(unroll=4, remat=None).unroll == 4 and backend.CPU.replace(remat=None).remat
    with pytest.raises(ValueError, match=r"ScanPolicy.unroll must be an int >= 1, got 0"):
        ScanPolicy(hoist_input=False, remat=False, gru_mask_barrier=False, unroll=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        backend.CPU.remat = False


# each switch both on and off (few, since each compiles); lax.scan's unroll=2 does not divide T=7
POLICIES = [ScanPolicy(hoist_input=h, remat=r, gru_mask_barrier=g, unroll=u)
            for h, r, g, u in [(False, False, False, 1), (True, False, True, 2), (False, True, False, 1),
                               (True, True, True, 2)]]


@pytest.mark.parametrize("cell,reset_after", [("gru", False), ("lstm", None)], ids=["gru-before", "lstm"])
def test_unroll_compiles_what_its_policy_says_and_every_policy_gives_the_same_values(cell, reset_after, rng):
    p = random_params(cell, 11, F, H, reset_after=reset_after)
    xs = rng.standard_normal((B, T, F)).astype(np.float32)

    def loss(p, policy):
        ys = rnn.unroll(cell, p, xs, policy=policy)[1]
        return (ys ** 2).sum(), ys

    grad_fn = jax.jit(jax.grad(loss, has_aux=True), static_argnums=1)
    grad0, ys0 = grad_fn(p, POLICIES[0])
    for policy in POLICIES:
        text = str(jax.make_jaxpr(grad_fn, static_argnums=1)(p, policy))
        assert ("optimization_barrier" in text) == (policy.gru_mask_barrier and cell == "gru"), policy
        assert ("checkpoint" in text or "remat" in text) == policy.remat, policy
        grad, ys = grad_fn(p, policy)
        np.testing.assert_allclose(ys, ys0, rtol=1e-6, atol=1e-6, err_msg=str(policy))
        for k in grad0:
            np.testing.assert_allclose(grad[k], grad0[k], rtol=1e-5, atol=1e-5, err_msg=f"{policy} {k}")
    # policy=None is this backend's entry: the same program as passing it
    here = backend.for_backend(backend.platform())
    assert str(jax.make_jaxpr(grad_fn, static_argnums=1)(p, None)) == str(jax.make_jaxpr(grad_fn, static_argnums=1)(p, here))


def test_hoisted_projection_runs_before_the_scan(rng):
    p = random_params("gru", 12, F, H)
    xs = rng.standard_normal((B, T, F)).astype(np.float32)
    for hoist in (False, True):
        policy = ScanPolicy(hoist_input=hoist, remat=False, gru_mask_barrier=False)
        jaxpr = jax.make_jaxpr(lambda xs: rnn.unroll("gru", p, xs, policy=policy))(xs).jaxpr
        outer = [e.primitive.name for e in jaxpr.eqns]
        assert ("dot_general" in outer[:outer.index("scan")]) == hoist
