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

import jax.numpy as jnp

from bench_train import B, _config, flax_peer, interleave, ours
from jena_rnn import data
from jena_rnn.runtime import distributed
from jena_rnn.forecast import train
from jena_rnn.config import DataConfig
from jena_rnn.forecast.reproduce import machine


def old_layout(config, state):
    """The same values with the hidden kernel as ``w [3360, 32]``; ``models.dense`` takes either layout."""
    hidden = state.params["hidden"]
    params = {**state.params, "hidden": {"w": hidden["w_t"].T.copy(), "b": hidden["b"]}}
    return state._replace(params=params, opt_state=train.make_optimizer(config.optim).init(params))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=15)
    p.add_argument("--steps", type=int, default=50)
    args = p.parse_args(argv)
    distributed.use_cpu_cores()  # as bench_train, so the single-device figures are comparable
    ds = data.load_dataset(DataConfig())
    xs, y = data.windows(ds.series, jnp.arange(10_000, 10_000 + B), lookback=1440, step=6, delay=144,
                         target_col=1)
    runners = {"jena_rnn, w_t [32, 3360] (default)": ours("mlp", args.steps, ds, None)[0],
               "jena_rnn, w [3360, 32]": ours("mlp", args.steps, ds, None, adapt=old_layout)[0],
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
