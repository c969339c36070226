"""Batches per second: the lecture's Python generator (numpy) vs jena_rnn's jitted sampler + `windows`.

Both cut training batches (B=128, lookback 1440, step 6, delay 144, rows drawn in [1440, 200000)) from the
full-size synthetic series [420551, 14]. Repeats are interleaved so drift hits both alike; medians are
printed, with the ratio (target >= 10x). Run: `.venv/bin/python benchmarks/bench_data.py` (~1 minute).
"""
import argparse
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the lecture's generator lives there
from lecture_generator import generator  # noqa: E402

from jena_rnn import backend, data  # noqa: E402

LOOKBACK, STEP, DELAY, BATCH, LO, HI = 1440, 6, 144, 128, 0, 200_000


def make_jax_batches(series):
    @jax.jit
    def next_batch(key):
        key, k_rows = jax.random.split(key)
        rows = data.sample_train_rows(k_rows, BATCH, LO, HI, lookback=LOOKBACK, delay=DELAY)
        xs, y = data.windows(series, rows, lookback=LOOKBACK, step=STEP, delay=DELAY)
        return key, xs, y

    def run(n, key):
        for _ in range(n):
            key, xs, y = next_batch(key)
        jax.block_until_ready((xs, y))
        return key

    return run


def make_jax_scan(series, n, phased: bool = False):
    """`n` batches per jitted call inside lax.scan, as train_epoch draws them (no per-batch dispatch).

    Each batch is consumed by adding it to the carry, the way a train step consumes it; stacking all `n`
    batches as the scan's output instead measured ~1 ms per batch here, the cost of writing 86 MB.
    ``phased``: cut the windows from ``data.by_phase(series)`` (computed once, outside the timed call,
    as ``train.fit`` does) with ``data.windows_by_phase``: one contiguous block per window.
    """
    if phased:
        phases = jax.jit(data.by_phase, static_argnums=1)(series, STEP)
        cut = lambda rows: data.windows_by_phase(phases, rows, lookback=LOOKBACK, step=STEP, delay=DELAY)  # noqa: E731
    else:
        cut = lambda rows: data.windows(series, rows, lookback=LOOKBACK, step=STEP, delay=DELAY)  # noqa: E731

    @jax.jit
    def many(key):
        def body(carry, _):
            key, acc = carry
            key, k_rows = jax.random.split(key)
            rows = data.sample_train_rows(k_rows, BATCH, LO, HI, lookback=LOOKBACK, delay=DELAY)
            xs, y = cut(rows)
            return (key, acc + xs + y[:, None, None]), None
        zeros = jax.numpy.zeros((BATCH, LOOKBACK // STEP, series.shape[1]), series.dtype)
        return jax.lax.scan(body, (key, zeros), None, length=n)[0]

    def run(n_batches, key):
        key, acc = many(key)
        jax.block_until_ready(acc)
        return key

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--batches", type=int, default=50, help="batches per timed repeat")
    args = parser.parse_args()

    normed, _ = data.normalize(data.synthetic_jena().values, LO, HI)
    series = jax.device_put(normed)
    gen = generator(normed, LOOKBACK, DELAY, LO, HI, shuffle=True, batch_size=BATCH, step=STEP,
                    rng=np.random.RandomState(0))
    runs = {"jitted sampler + windows": make_jax_batches(series),
            f"same, {args.batches} per call in lax.scan": make_jax_scan(series, args.batches),
            "same, by phase (train's path)": make_jax_scan(series, args.batches, phased=True)}
    key = jax.random.key(0)
    for run in runs.values():
        key = run(3, key)  # compile and warm up
    next(gen)
    times = {"lecture generator (numpy)": [], **{name: [] for name in runs}}
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for _ in range(args.batches):
            next(gen)
        times["lecture generator (numpy)"].append(args.batches / (time.perf_counter() - t0))
        for name, run in runs.items():
            t0 = time.perf_counter()
            key = run(args.batches, key)
            times[name].append(args.batches / (time.perf_counter() - t0))
    print(f"{platform.processor() or platform.machine()}, jax {jax.__version__} on {backend.name()}, "
          f"B={BATCH}, window [{LOOKBACK // STEP}, 14], {args.repeats} interleaved repeats x {args.batches} batches")
    med = {name: float(np.median(v)) for name, v in times.items()}
    for name, v in med.items():
        print(f"  {name:32s} {v:9.1f} batches/s (median; min {min(times[name]):.1f}, max {max(times[name]):.1f})")
    base, *others = med.items()
    for name, v in others:
        print(f"  ratio {name} / lecture generator: {v / base[1]:.1f}x")


if __name__ == "__main__":
    main()
