"""Time one training step of the Flax face against the pure functions under it and Flax's own recurrent layer.

    python benchmarks/bench_flax.py [--cells gru,lstm] [--reps 5] [--steps 20]
    (both cells at the defaults: about 2 minutes on an idle 2-core CPU)

Does `jena_rnn.flax` keep the library's speed? Columns, measured interleaved (A B C, A B C, ...) and
reported as medians of ``--reps`` repeats, in ms per training step (forward + backward + RMSprop, MAE) of
the lecture's one-layer model (GRU(32) or LSTM(32) -> Dense(1)) on one pre-gathered batch [128, 240, 14],
one device:
- pure: ``bench_train.ours_fixed``: ``models.apply_model`` over ``rnn.unroll`` on plain dicts, optax
  RMSprop, ``--steps`` steps in one jitted ``lax.scan``.
- nnx face: ``jena_rnn.flax.Forecaster`` (the same ``rnn.unroll``) with ``nnx.Optimizer`` over the same
  optax RMSprop, one ``nnx.jit`` call per step (the way an nnx user writes a training loop).
- nnx face, scanned: the same model split into graph and state (``nnx.split``), ``--steps`` steps in one
  jitted ``lax.scan`` over the state (what the pure column does), so the difference to the column above is
  nnx's per-call overhead, and to the pure column the face's own.
- Flax nnx.RNN: Flax's own ``nnx.RNN(nnx.GRUCell | nnx.OptimizedLSTMCell)`` -> ``nnx.Linear``, the same
  ``nnx.Optimizer`` loop as the nnx face column.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import jax
import jax.numpy as jnp
import optax
from flax import nnx

sys.path.insert(0, os.path.dirname(__file__))
from bench_train import B, F, T, _ms, interleave, ours_fixed, scan_runner  # noqa: E402  (the shared timing pieces)

from jena_rnn import flax as jflax  # noqa: E402
from jena_rnn.config import lecture_config  # noqa: E402
from jena_rnn.forecast.reproduce import machine  # noqa: E402
from jena_rnn.runtime.state import make_optimizer  # noqa: E402

UNITS = 32
COLUMNS = ("pure", "nnx face", "nnx face, scanned", "Flax nnx.RNN")


def _nnx_loop(model: nnx.Module, steps: int, xs, y, optim):
    """One ``nnx.jit`` call per step, ``nnx.Optimizer`` (an nnx user's loop)."""
    optimizer = nnx.Optimizer(model, optim, wrt=nnx.Param)

    @nnx.jit
    def step(model, optimizer):
        loss, grads = nnx.value_and_grad(lambda m: jnp.mean(jnp.abs(m(xs) - y)))(model)
        optimizer.update(model, grads)
        return loss

    def run():
        for _ in range(steps):
            loss = step(model, optimizer)
        loss.block_until_ready()
    return run


def _nnx_scanned(model: nnx.Module, steps: int, xs, y, optim):
    """The model's state through ``--steps`` optax steps in one jitted scan (no per-step nnx call)."""
    graph, params, rest = nnx.split(model, nnx.Param, ...)  # rest: the (unused, rate 0) dropout stream
    state = (params, optim.init(params))

    def loss_fn(p):
        return jnp.mean(jnp.abs(nnx.merge(graph, p, rest)(xs) - y))

    def step(s):
        p, o = s
        loss, g = jax.value_and_grad(loss_fn)(p)
        u, o = optim.update(g, o, p)
        return (optax.apply_updates(p, u), o), loss
    return scan_runner(step, state, steps)


class _FlaxOwn(nnx.Module):
    """Flax's own layer: nnx.RNN(GRUCell | OptimizedLSTMCell) -> Linear(1), last step."""

    def __init__(self, cell: str, rngs: nnx.Rngs):
        make = nnx.GRUCell if cell == "gru" else nnx.OptimizedLSTMCell
        self.rnn = nnx.RNN(make(F, UNITS, rngs=rngs))
        self.head = nnx.Linear(UNITS, 1, rngs=rngs)

    def __call__(self, xs):
        return self.head(self.rnn(xs)[:, -1])[:, 0]


def runners(cell: str, steps: int, xs, y) -> dict:
    name = "gru" if cell == "gru" else "lstm"
    optim = make_optimizer(lecture_config(name).optim)
    face = lambda: jflax.Forecaster(F, UNITS, cell=cell, rngs=nnx.Rngs(0))  # noqa: E731
    return {"pure": ours_fixed(name, steps, xs, y),
            "nnx face": _nnx_loop(face(), steps, xs, y, optim),
            "nnx face, scanned": _nnx_scanned(face(), steps, xs, y, optim),
            "Flax nnx.RNN": _nnx_loop(_FlaxOwn(cell, nnx.Rngs(0)), steps, xs, y, optim)}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", default="gru,lstm")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    xs = jax.random.normal(jax.random.PRNGKey(0), (B, T, F))
    y = jax.random.normal(jax.random.PRNGKey(1), (B,))
    print(f"# bench_flax: {machine()}; B={B}, T={T}, F={F}, {UNITS} units, one device, "
          f"{args.reps} reps x {args.steps} steps, interleaved; ms per training step (median [min-max])")
    print("| cell | " + " | ".join(COLUMNS) + " | nnx face / pure | Flax nnx.RNN / nnx face |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for cell in args.cells.split(","):
        times = interleave(runners(cell, args.steps, xs, y), args.reps, args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        cols = [f"{_ms(med[k])} [{_ms(min(times[k]))}-{_ms(max(times[k]))}]" for k in COLUMNS]
        print(f"| {cell}({UNITS}) | " + " | ".join(cols)
              + f" | {med['nnx face'] / med['pure']:.2f}x | {med['Flax nnx.RNN'] / med['nnx face']:.2f}x |",
              flush=True)


if __name__ == "__main__":
    main()
