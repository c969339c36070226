"""Every per-backend choice, as a named, documented policy entry (the one home of "on XLA:CPU, X is faster").

``name()`` is the project's only call of ``jax.default_backend()``. The core functions take a small
frozen policy value instead of growing keyword arguments: ``rnn.unroll(..., policy=)`` a ``ScanPolicy``
(None = ``for_backend(name())``), the sweep a ``SweepPolicy`` (``sweep_policy()``). Each entry says
which measurement chose it; the figures are in benchmarks/RESULTS.md, under the heading quoted.
Backends other than XLA:CPU get ``ACCELERATOR`` / ``SWEEP_ACCELERATOR``: the textbook forms, chosen by
expectation, not measured (no accelerator was lent to the sessions that measured).

This module sits beside ``config`` at the top of the package and imports nothing of ``jena_rnn``, so
every wing (``nn`` included) may use it (tests/test_layout.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import jax


def name() -> str:
    """Return the default JAX backend's platform name: "cpu", "gpu", "tpu", ..."""
    return jax.default_backend()


@dataclass(frozen=True, kw_only=True)
class ScanPolicy:
    """How ``rnn.unroll`` compiles its scan; none of these changes the values computed.

    Attributes:
      hoist_input: compute ``xs @ w_x + b`` for all steps before the scan (pre-split per gate into
        [T, B, H] arrays, the cuDNN design) instead of inside the scan step.
      remat: wrap the scan step in ``jax.checkpoint``: the backward pass recomputes each step's gates
        from its carry instead of storing them (same values; gradients equal to float rounding).
      gru_mask_barrier: a GRU without recurrent dropout multiplies ``h`` by a mask of ones hidden
        behind ``lax.optimization_barrier`` (``h * 1 == h`` exactly), which changes how XLA fuses
        the backward pass.
      unroll: steps per scan iteration, forwarded to ``lax.scan``.
      cudnn_lstm: run an LSTM through cuDNN (``nn.cudnn``, ``jax.experimental.rnn``) whenever
        ``cudnn.allowed`` says the layer can (tanh, no recurrent dropout, float32, right padding).
    """

    hoist_input: bool
    remat: bool
    gru_mask_barrier: bool
    unroll: int = 1
    cudnn_lstm: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.unroll, int) or self.unroll < 1:
            raise ValueError(f"ScanPolicy.unroll must be an int >= 1, got {self.unroll!r}")

    def replace(self, **overrides) -> "ScanPolicy":
        """Return a copy with the given fields replaced; a value of None keeps the field (a config's "auto")."""
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})


# XLA:CPU, every entry measured on the 2-core CPU of benchmarks/RESULTS.md:
CPU = ScanPolicy(
    # in-loop projection: RESULTS.md "Training step (first session)", bullet "Hoisted vs in-loop input
    # projection" (benchmarks/bench_cells.py), rerun in benchmarks/LATEST.md
    hoist_input=False,
    # RESULTS.md "Training step (first session)", bullet "Remat" (benchmarks/bench_train.py)
    remat=True,
    # RESULTS.md "Every core, windows by phase, the GRU mask (second session)", item 3 "An opaque mask
    # of ones for the GRU" (no effect on the LSTM, hence GRU-only)
    gru_mask_barrier=True,
    unroll=1)
# Everything else: the textbook forms. Hoisting is the cuDNN design; remat is expected to cost there
# (the step is launch-bound, remat adds kernels, and the residuals it saves are small); the mask trick
# is an XLA:CPU fusion effect.
ACCELERATOR = ScanPolicy(hoist_input=True, remat=False, gru_mask_barrier=False, unroll=1)
# CUDA: the same, and the LSTM through cuDNN's kernel (one launch for all steps instead of a scan's per-step
# launches). Chosen by expectation (the issue 17 card), not measured yet: benchmarks/accelerator.py
# measures it (docs/accelerators.md). jax.experimental.rnn.lstm lowers on CUDA (and ROCm, whose MIOpen
# gate order differs: not turned on there); TPUs have no such kernel.
CUDA = dataclasses.replace(ACCELERATOR, cudnn_lstm=True)


def platform() -> str:
    """Return ``name()`` with "gpu" resolved to the GPU's platform ("cuda", "rocm") where JAX knows it."""
    here = name()
    if here != "gpu":
        return here
    for candidate in ("cuda", "rocm"):
        try:
            jax.devices(candidate)
            return candidate
        except RuntimeError:
            pass
    return here


def for_backend(backend: str) -> ScanPolicy:
    """Return the ``ScanPolicy`` for ``backend`` (a ``platform()``): ``CPU`` for "cpu", ``CUDA`` for "cuda",
    else ``ACCELERATOR`` (also for a bare "gpu")."""
    return CPU if backend == "cpu" else CUDA if backend == "cuda" else ACCELERATOR


def scan_policy(*, hoist_input: bool | None = None, remat: bool | None = None, cudnn_lstm: bool | None = None,
                backend: str | None = None) -> ScanPolicy:
    """Return ``for_backend(backend or platform())`` with the non-None overrides (``ModelConfig``'s fields)."""
    return for_backend(platform() if backend is None else backend).replace(
        hoist_input=hoist_input, remat=remat, cudnn_lstm=cudnn_lstm)


# XLA:CPU multiplies the MLP's [T*F, units] hidden kernel faster when it is held transposed: a training
# epoch carries it as ``w_t`` through its scan and stores the plain ``[in, out]`` form (forecast.train).
# RESULTS.md "The MLP's kernel back in [in, out]" (benchmarks/bench_mlp.py, "w stored, w_t in the scan").
CARRY_TRANSPOSED_MLP_KERNEL = {"cpu": True}


def carry_transposed_mlp_kernel(backend: str | None = None) -> bool:
    """Whether a training epoch carries the MLP's hidden kernel transposed on ``backend`` (None = ``name()``)."""
    return CARRY_TRANSPOSED_MLP_KERNEL.get(name() if backend is None else backend, False)


@dataclass(frozen=True, kw_only=True)
class SweepPolicy:
    """How the sweep compiles its vmapped members; none of these changes the values computed.

    Attributes:
      traced_zero_rates: pass recurrent members their dropout rates as an array even when every rate
        is 0, so each member multiplies by its own drawn mask of ones (``bernoulli(1.0)``, exact).
      member_chunk: vmap this many members at a time inside one ``lax.map`` (``chunk="auto"`` on one
        device per member group); None = one vmap over all members.
    """

    traced_zero_rates: bool
    member_chunk: int | None


SWEEP_CPU = SweepPolicy(
    # RESULTS.md "Every core, windows by phase, the GRU mask (second session)", item 3, its sweep part
    traced_zero_rates=True,
    # RESULTS.md "Sweeps (first session)" (two members at a time inside one lax.map) and "Other levers
    # tried for the recurrent step" (chunk=1 slower)
    member_chunk=2)
SWEEP_ACCELERATOR = SweepPolicy(traced_zero_rates=False, member_chunk=None)  # not measured: one wide vmap


def sweep_policy() -> SweepPolicy:
    """Return ``sweep_for_backend(name())``."""
    return sweep_for_backend(name())


def sweep_for_backend(backend: str) -> SweepPolicy:
    """Return the ``SweepPolicy`` for ``backend`` (a ``name()``): ``SWEEP_CPU`` for "cpu", else the other."""
    return SWEEP_CPU if backend == "cpu" else SWEEP_ACCELERATOR
