"""Time per training step: one GRU(32), K vmapped members (``jena_rnn.sweep``), and K sequential runs.

Question: how much faster is training K models in one vmapped program than training them one after the
other? Shapes are the lecture's (B=128, T=240, F=14, GRU(32), RMSprop); each timed call is one jitted
epoch of ``--steps`` steps. All programs are compiled first, then timed in interleaved rounds (so a
neighbour's load hits every variant alike); medians are reported. Variants:

- ``single``: ``train.make_train_epoch`` (what ``fit`` runs), one model.
- ``seq K``: K calls of ``single`` on K different states, back to back (measured for K=8; for K=32
  it is 32 x the single median).
- ``vmap K``: ``sweep.make_sweep_epoch`` with K members (in-loop input projection, the CPU default).
- ``vmap K hoisted``: the same with ``hoist_input=True``: the input projection of all steps and
  members becomes one batched matmul before the scan, leaving only ``h @ w_h`` in the loop.
- ``vmap K dropout``: K members with traced dropout/recurrent-dropout rates 0.2/0.2 (masks drawn).
- ``vmap K chunk c``: ``make_sweep_epoch(chunk=c)``: a ``lax.map`` over chunks of c vmapped members
  (smaller live buffers per chunk than one vmap over all K).

    python benchmarks/bench_sweep.py [--rounds 5] [--steps 4] [--ks 8,32]   (5-10 minutes on 2 cores)
"""
from __future__ import annotations

import argparse
import dataclasses
import platform
import statistics
import time

import jax
import numpy as np

from jena_rnn import data, sweep, train
from jena_rnn.config import Config, DataConfig, LayerConfig, ModelConfig, TrainConfig

# a shorter synthetic series than the real file: the step time does not depend on the series length
DATA = DataConfig(synthetic_rows=60_000, train=(0, 40_000), val=(40_001, 50_000), test=(50_001, None))


def config(steps: int, hoist: bool | None = None, rate: float = 0.0) -> Config:
    layer = LayerConfig(cell="gru", units=32, dropout=rate, recurrent_dropout=rate)
    return Config(data=DATA, model=ModelConfig(layers=(layer,), hoist_input=hoist),
                  train=TrainConfig(steps_per_epoch=steps))


def members(cfg: Config, k: int) -> list[Config]:
    return [dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=s),
                                optim=dataclasses.replace(cfg.optim, learning_rate=1e-3 * (1 + s % 4)))
            for s in range(k)]


def vmapped(cfg: Config, k: int, ds: data.Dataset, chunk: int | None = None):
    cfgs = members(cfg, k)
    states = sweep.init_states(cfgs, ds.series.shape[1])
    rates = sweep.member_rates(cfgs)
    rates = None if rates is None else jax.numpy.asarray(rates)
    active = jax.numpy.ones(k, bool)
    fn = sweep.make_sweep_epoch(sweep.static_key(cfg), ds.train, ds.target_col, chunk=chunk)
    return lambda: fn(states, ds.series, rates, active)[1]["loss"].block_until_ready()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--ks", default="8,32")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    ds = data.load_dataset(DATA)
    cfg = config(args.steps)
    single_epoch = train.make_train_epoch(cfg, ds.train, ds.target_col)
    seq_states = [train.init_state(c, jax.random.PRNGKey(c.train.seed), ds.series.shape[1])
                  for c in members(cfg, ks[0])]
    single = lambda: single_epoch(seq_states[0], ds.series)[1]["loss"].block_until_ready()

    def sequential():
        for st in seq_states:
            single_epoch(st, ds.series)[1]["loss"].block_until_ready()

    runs = {"single": (single, 1), f"seq {ks[0]}": (sequential, ks[0])}
    for k in ks:
        runs[f"vmap {k}"] = (vmapped(cfg, k, ds), k)
        for c in (2, 8):
            if c < k:
                runs[f"vmap {k} chunk {c}"] = (vmapped(cfg, k, ds, chunk=c), k)
    runs[f"vmap {ks[0]} hoisted"] = (vmapped(config(args.steps, hoist=True), ks[0], ds), ks[0])
    runs[f"vmap {ks[0]} dropout"] = (vmapped(config(args.steps, rate=0.2), ks[0], ds), ks[0])
    print(f"backend={jax.default_backend()} device={jax.devices()[0].device_kind} cpu={platform.processor()} "
          f"jax={jax.__version__}; GRU(32) B=128 T=240 F=14; {args.steps} steps per call")
    t0 = time.perf_counter()
    for fn, _ in runs.values():
        fn()  # compile
    print(f"compiled {len(runs)} programs in {time.perf_counter() - t0:.0f} s")
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, (fn, _) in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - t) / args.steps)
    one = statistics.median(times["single"])
    print(f"\n{'variant':<18} {'ms/step (all K)':>16} {'ms/model-step':>14} {'vs sequential':>14}  spread")
    for name, (_, k) in runs.items():
        med = statistics.median(times[name])
        print(f"{name:<19} {med:16.1f} {med / k:14.2f} {k * one / med:13.2f}x  "
              f"{min(times[name]):.0f}-{max(times[name]):.0f}")
    for k in ks[1:]:
        print(f"seq {k} (= {k} x single median) {k * one:.0f} ms/step")
    print(f"load average at the end: {np.round(__import__('os').getloadavg(), 2).tolist()}")


if __name__ == "__main__":
    main()
