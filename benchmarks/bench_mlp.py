"""Time the lecture MLP's training step with its big kernel in either layout, beside Flax, in one run.

Question: what does the canonical layout ``w [3360, 32]`` (what ``models.init_model`` stores, Keras's and
Flax's ``[in, out]``) cost the MLP's step on this backend against the transposed ``w_t [32, 3360]``
(PyTorch's ``nn.Linear`` layout: the 3360-long contraction axis contiguous), and does transposing only
inside the jitted computation get that speed back? Columns, ms per step, interleaved rounds, medians:

- jena_rnn (default): the training path itself (``train.make_train_epoch``: the batch drawn from the
  device-resident series by one gather, MAE, RMSprop), ``--steps`` steps per jitted call, one device,
  as bench_train's "remat" columns.
- fixed batch, w / w_t: gradient + RMSprop on one pre-gathered batch, ``--steps`` steps in one jitted
  scan, the kernel stored and carried as ``w`` (``x @ w``) or as ``w_t`` (``x @ w_t.T``).
- fixed batch, w stored, w_t carried: ``w`` outside, transposed (params and RMSprop state) once when
  the jitted scan starts and back when it ends, ``x @ w_t.T`` in the steps.
- Flax ``nn.Dense`` (kernel [in, out]) on the fixed batch, one jitted call per step (bench_train's peer).

    python benchmarks/bench_mlp.py [--reps 15] [--steps 50]     (about 1 minute)
"""
from __future__ import annotations

import argparse
import statistics

import jax
import jax.numpy as jnp
import optax

from bench_train import B, _config, flax_peer, interleave, ours
from jena_rnn import data
from jena_rnn.config import DataConfig
from jena_rnn.forecast import train
from jena_rnn.forecast.reproduce import machine
from jena_rnn.nn import models
from jena_rnn.runtime import distributed


def _swap_hidden(tree):
    """Transpose every ``['hidden']['w']`` leaf (the params and the optimiser's moments of it)."""
    return jax.tree_util.tree_map_with_path(
        lambda path, a: a.T if jax.tree_util.keystr(path).endswith("['hidden']['w']") else a, tree)


def fixed(config, steps: int, xs, y, *, stored: str, carried: str):
    """Return a runner of ``steps`` fixed-batch steps in one jitted scan, kernel ``stored`` / ``carried``."""
    opt = train.make_optimizer(config.optim)
    params = models.init_model(jax.random.PRNGKey(0), config.model, xs.shape[2], xs.shape[1])
    params = _swap_hidden(params) if stored == "w_t" else params
    state = (params, opt.init(params))
    flat = xs.reshape(xs.shape[0], -1)

    def loss_fn(p):
        w = p["hidden"]["w"].T if carried == "w_t" else p["hidden"]["w"]  # x @ w_t.T: w_t's rows contract
        h = jax.nn.relu(flat @ w + p["hidden"]["b"])
        return train.mae(models.dense(p["head"], h)[:, 0], y)

    def body(s, _):
        loss, g = jax.value_and_grad(loss_fn)(s[0])
        u, o = opt.update(g, s[1], s[0])
        return (optax.apply_updates(s[0], u), o), loss

    @jax.jit
    def epoch(state):
        swap = stored != carried
        state = _swap_hidden(state) if swap else state
        state, loss = jax.lax.scan(body, state, None, length=steps)
        return (_swap_hidden(state) if swap else state), loss

    def run():
        nonlocal state
        state, loss = epoch(state)
        loss.block_until_ready()
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
    config = _config("mlp", args.steps, None)
    runners = {"jena_rnn, w [3360, 32] (default)": ours("mlp", args.steps, ds, None)[0],
               "fixed batch, w [3360, 32]": fixed(config, args.steps, xs, y, stored="w", carried="w"),
               "fixed batch, w_t [32, 3360]": fixed(config, args.steps, xs, y, stored="w_t", carried="w_t"),
               "fixed batch, w stored, w_t in the scan": fixed(config, args.steps, xs, y, stored="w", carried="w_t"),
               "flax nn.Dense, fixed batch": flax_peer(config.model, args.steps, xs, y)}
    times = interleave(runners, args.reps, args.steps)
    print(f"# {machine()}; MLP B={B}, 3360 -> 32 -> 1; {args.steps} steps per timed call, median of {args.reps}")
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print(f"{k:40s} {v:.3f} ms/step  (min {min(times[k]):.3f}, max {max(times[k]):.3f})")
    w_t = med["fixed batch, w_t [32, 3360]"]
    for k in ("fixed batch, w [3360, 32]", "fixed batch, w stored, w_t in the scan", "flax nn.Dense, fixed batch"):
        print(f"ratio {k} / fixed batch w_t: {med[k] / w_t:.2f}x")
    print(f"ratio flax / jena_rnn default: {med['flax nn.Dense, fixed batch'] / med['jena_rnn, w [3360, 32] (default)']:.2f}x")


if __name__ == "__main__":
    main()
