"""Time the lecture MLP's training step with its big kernel stored either way, beside Flax, in one run.

Question: how much does storing the 3360 -> 32 kernel transposed (``w_t [32, 3360]``, contraction axis
contiguous, PyTorch's ``nn.Linear`` layout; what ``models.init_model`` does) speed up the MLP's step
over the Keras/Flax layout ``w [3360, 32]``? Both run the same training path (``train.make_train_epoch``:
the batch drawn from the device-resident series by one gather, MAE, RMSprop), ``--steps`` steps per
jitted call, on one device, as bench_train's "remat" columns. Flax ``nn.Dense`` (kernel [in, out]) on
one fixed batch, one jitted call per step, is bench_train's peer. Interleaved rounds, medians.

    python benchmarks/bench_mlp.py [--reps 15] [--steps 50]     (about 1 minute)
"""
from __future__ import annotations

import argparse
import statistics

import jax
import jax.numpy as jnp

from bench_train import B, F, _config, flax_peer, interleave
from jena_rnn import data, distributed, train
from jena_rnn.config import DataConfig
from jena_rnn.reproduce import machine


def ours(steps: int, ds, *, kernel: str):
    """Return ``run()``: one jitted epoch of the MLP with the hidden kernel as ``w_t`` or ``w``."""
    config = _config("mlp", steps, None)
    state = train.init_state(config, jax.random.PRNGKey(0), F)
    if kernel == "w":  # the same values in the [in, out] layout; ``models.dense`` takes either
        hidden = state.params["hidden"]
        params = {**state.params, "hidden": {"w": hidden["w_t"].T.copy(), "b": hidden["b"]}}
        state = state._replace(params=params, opt_state=train.make_optimizer(config.optim).init(params))
    series = data.Phased(data.by_phase(ds.series, config.data.step))
    epoch = jax.jit(train.make_train_epoch(config, ds.train, ds.target_col, jit=False))

    def run():
        nonlocal state
        state, m = epoch(state, series)
        m["loss"].block_until_ready()
    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args(argv)
    distributed.use_cpu_cores()  # as bench_train, so the single-device figures are comparable
    ds = data.load_dataset(DataConfig())
    xs, y = data.windows(ds.series, jnp.arange(10_000, 10_000 + B), lookback=1440, step=6, delay=144,
                         target_col=1)
    runners = {"jena_rnn, w_t [32, 3360] (default)": ours(args.steps, ds, kernel="w_t"),
               "jena_rnn, w [3360, 32]": ours(args.steps, ds, kernel="w"),
               "flax nn.Dense, fixed batch": flax_peer(_config("mlp", args.steps, None).model, args.steps, xs, y)}
    times = interleave(runners, args.reps, args.steps)
    print(f"# {machine()}; MLP B={B}, 3360 -> 32 -> 1; {args.steps} steps per timed call, median of {args.reps}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:36s} {v:.3f} ms/step  (min {min(times[k]):.3f}, max {max(times[k]):.3f})")
    default = med["jena_rnn, w_t [32, 3360] (default)"]
    for k in list(med)[1:]:
        print(f"ratio {k} / default: {med[k] / default:.2f}x")


if __name__ == "__main__":
    main()
