"""Time a jitted training-style forward + backward of GRU(32) / LSTM(32), input projection hoisted or not.

Question: is ``unroll(..., policy=ScanPolicy(hoist_input=True, ...))`` (``xs @ w_x + b`` once, pre-split per
gate, before the scan) faster than the in-loop projection on this backend? The answer sets the
``hoist_input`` entry of this backend's policy (``jena_rnn.backend``); ``remat`` is timed both ways too.
Shapes are the lecture's: B=128, T=240, F=14. Runs are interleaved; medians are reported.

    python benchmarks/bench_cells.py [--reps 20]     (about 1 minute on a 2-core CPU)
"""
from __future__ import annotations

import argparse
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from jena_rnn import backend
from jena_rnn.nn import cells, rnn

B, T, F, H = 128, 240, 14, 32


def make_grad_fn(cell: str, hoist: bool | None, remat: bool | None, cudnn_lstm: bool | None = None):
    """Return a jitted ``(params, xs, y) -> grads`` of an MAE loss on the last h's mean (None = the backend's)."""
    policy = backend.scan_policy(hoist_input=hoist, remat=remat, cudnn_lstm=cudnn_lstm)  # the rest: the backend's

    def loss(params, xs, y):
        _, h = rnn.unroll(cell, params, xs, return_sequences=False, policy=policy)
        return jnp.mean(jnp.abs(h.mean(axis=-1) - y))

    return jax.jit(jax.grad(loss))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    k_p, k_x, k_y = jax.random.split(jax.random.key(0), 3)
    xs, y = jax.random.normal(k_x, (B, T, F)), jax.random.normal(k_y, (B,))
    print(f"backend={backend.name()} device={jax.devices()[0].device_kind} cpu={platform.processor()}")
    print(f"B={B} T={T} F={F} H={H}; ms per forward+backward, median of {args.reps} interleaved runs")
    for cell in ("gru", "lstm"):
        params = cells.init_cell(cell, k_p, F, H)
        variants = [(hoist, remat) for remat in (False, True) for hoist in (False, True)]
        fns = {v: make_grad_fn(cell, *v) for v in variants}
        for fn in fns.values():
            jax.block_until_ready(fn(params, xs, y))  # compile + warm up
        times = {v: [] for v in fns}
        for _ in range(args.reps):
            for v, fn in fns.items():
                t0 = time.perf_counter()
                jax.block_until_ready(fn(params, xs, y))
                times[v].append(1e3 * (time.perf_counter() - t0))
        med = {v: statistics.median(t) for v, t in times.items()}
        for remat in (False, True):
            in_loop, hoisted = med[(False, remat)], med[(True, remat)]
            print(f"{cell:5s} remat {'on ' if remat else 'off'}  in-loop {in_loop:7.2f} ms   hoisted {hoisted:7.2f} ms"
                  f"   hoisted/in-loop {hoisted / in_loop:.2f}x")


if __name__ == "__main__":
    main()
