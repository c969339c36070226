"""Time per training step: one GRU(32), K vmapped members (``jena_rnn.sweep``), and K sequential runs.

Question: how much faster is training K models in one vmapped program than training them one after the
other, on the same machine with every core in use? Shapes are the lecture's (B=128, T=240, F=14,
GRU(32), RMSprop); each timed call is one jitted epoch of ``--steps`` steps. The CPU is split into one
JAX device per core first (``distributed.use_cpu_cores``, as the ``jena-rnn`` command does). All
programs are compiled first, then timed in interleaved rounds (a neighbour's load hits every variant
alike); medians are reported. Variants:

- ``single 1 dev``: ``train.make_train_epoch`` (what ``fit`` runs), one model on one device.
- ``single dp N``: the same, data-parallel over the N devices (``fit(mesh=auto_mesh(B))``, what
  ``jena-rnn train`` does by default).
- ``seq K``: K calls of the faster single variant on K different states, back to back (K=8 measured;
  for K=32 it is 32 x that single median).
- ``vmap K 1 dev``: ``sweep.make_sweep_epoch`` with K members, one vmap over all, one device.
- ``vmap K chunk 2 1 dev``: the same with ``chunk=2`` (a ``lax.map`` over pairs of vmapped members).
- ``sharded K chunk c``: the members split over the N devices (``shard_map`` on a ``"sweep"`` mesh
  axis, what ``jena-rnn sweep`` does by default), ``chunk=c`` members vmapped at a time per device.
- ``sharded K dropout``: the same with traced dropout/recurrent-dropout rates 0.2/0.2 (masks drawn).
The ratio column is (K x the fastest sequential time per model: either single median, or ``seq K``
/ K) / the variant's time per step.

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

from jena_rnn import backend, data, sweep
from jena_rnn.runtime import distributed
from jena_rnn.forecast import train
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


def vmapped(cfg: Config, k: int, ds: data.Dataset, chunk: int | None = None, mesh=None):
    cfgs = members(cfg, k)
    states = distributed.place(sweep.init_states(cfgs, ds.series.shape[1]), mesh, stacked=True)
    rates = sweep.member_rates(cfgs)
    rates = None if rates is None else distributed.place(rates, mesh, stacked=True)
    active = distributed.place(np.ones(k, bool), mesh, stacked=True)
    series = distributed.place(ds.series, mesh, stacked=False)
    fn = sweep.make_sweep_epoch(sweep.static_key(cfg), ds.train, ds.target_col, chunk=chunk, mesh=mesh)
    return lambda: fn(states, series, rates, active)[1]["loss"].block_until_ready()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--ks", default="8,32")
    args = parser.parse_args()
    distributed.use_cpu_cores()  # before anything starts JAX; no effect on accelerators
    n_dev = jax.local_device_count()
    ks = [int(k) for k in args.ks.split(",")]
    ds = data.load_dataset(DATA)
    cfg = config(args.steps)
    dp = distributed.auto_mesh(cfg.data.batch_size)
    singles = {"single 1 dev": None} | ({f"single dp {n_dev}": dp} if dp is not None else {})
    runs, seq_states = {}, {}
    for name, mesh in singles.items():
        epoch = train.make_train_epoch(cfg, ds.train, ds.target_col, mesh=mesh)
        states = [distributed.place(train.init_state(c, jax.random.PRNGKey(c.train.seed), ds.series.shape[1]),
                                    mesh, stacked=False) for c in members(cfg, ks[0])]
        series = distributed.place(ds.series, mesh, stacked=False)
        runs[name] = ((lambda e=epoch, st=states[0], se=series: e(st, se)[1]["loss"].block_until_ready()), 1)
        seq_states[name] = (epoch, states, series)
    for k in ks:
        sharded = distributed.auto_mesh(members=k)
        if k == ks[0]:
            runs[f"vmap {k} 1 dev"] = (vmapped(cfg, k, ds), k)
        runs[f"vmap {k} chunk 2 1 dev"] = (vmapped(cfg, k, ds, chunk=2), k)
        if sharded is not None:
            for c in (None, 2, 4):
                if c is None or c < k // n_dev:
                    runs[f"sharded {k} chunk {c or k // n_dev}"] = (vmapped(cfg, k, ds, chunk=c, mesh=sharded), k)
            if k == ks[0]:
                runs[f"sharded {k} dropout"] = (vmapped(config(args.steps, rate=0.2), k, ds, chunk=2, mesh=sharded), k)
    print(f"backend={backend.name()} devices={n_dev} x {jax.devices()[0].device_kind} "
          f"cpu={platform.processor()} jax={jax.__version__}; GRU(32) B=128 T=240 F=14; {args.steps} steps per call")
    t0 = time.perf_counter()
    for fn, _ in runs.values():
        fn()  # compile
    print(f"compiled {len(runs)} programs in {time.perf_counter() - t0:.0f} s")
    times: dict[str, list[float]] = {name: [] for name in runs}
    times[f"seq {ks[0]}"] = []
    for _ in range(args.rounds):
        for name, (fn, _) in runs.items():
            t = time.perf_counter()
            fn()
            times[name].append(1e3 * (time.perf_counter() - t) / args.steps)
        best_single = min(singles, key=lambda n: statistics.median(times[n]))
        epoch, states, series = seq_states[best_single]
        t = time.perf_counter()
        for st in states:
            epoch(st, series)[1]["loss"].block_until_ready()
        times[f"seq {ks[0]}"].append(1e3 * (time.perf_counter() - t) / args.steps)
    runs[f"seq {ks[0]}"] = (None, ks[0])
    # the sequential baseline: the fastest way measured to train one model after another, i.e. the faster
    # single median, or the measured back-to-back run of K singles per model if that was faster still
    per_model = {n: statistics.median(times[n]) for n in singles} | {f"seq {ks[0]}": statistics.median(
        times[f"seq {ks[0]}"]) / ks[0]}
    base = min(per_model, key=per_model.get)
    one = per_model[base]
    print(f"\n{'variant':<22} {'ms/step (all K)':>16} {'ms/model-step':>14} {'vs sequential':>14}  spread")
    for name, (_, k) in runs.items():
        med = statistics.median(times[name])
        print(f"{name:<22} {med:16.1f} {med / k:14.2f} {k * one / med:13.2f}x  "
              f"{min(times[name]):.0f}-{max(times[name]):.0f}")
    print(f"sequential = K x {one:.2f} ms ({base} per model, the fastest of {', '.join(per_model)})")
    print(f"load average at the end: {np.round(__import__('os').getloadavg(), 2).tolist()}")


if __name__ == "__main__":
    main()
