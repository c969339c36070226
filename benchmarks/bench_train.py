"""Time one training step (forward + backward + RMSprop) at the lecture's shapes, side by side.

    python benchmarks/bench_train.py [--models gru,lstm] [--reps 5] [--steps 20]

Columns, measured interleaved (A B C D, A B C D, ...) and reported as medians of ``--reps`` repeats:
- jena_rnn: ``train.make_train_epoch`` (the training path itself): ``--steps`` steps in one jitted scan,
  each drawing its batch from the device-resident series [420551, 14] by one gather.
- jena_rnn, fixed batch: the same step pieces (model, MAE, RMSprop) on one pre-gathered batch, also in one
  scan; the difference to the first column is the cost of sampling windows inside the step.
- Flax ``nn.RNN`` with its ``GRUCell``/``LSTMCell`` + Dense(1), optax RMSprop, one jitted call per step.
- PyTorch ``nn.GRU``/``nn.LSTM`` + Linear, ``torch.optim.RMSprop``, eager, one call per step.
Peers that are not installed are skipped with a note. Batch 128, 240 steps, 14 features, 32 units.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jena_rnn import data, models, train
from jena_rnn.config import Config, DataConfig, LayerConfig, ModelConfig, TrainConfig
from jena_rnn.reproduce import machine

B, T, F, H = 128, 240, 14, 32


def ours(cell: str, steps: int, ds):
    config = Config(data=DataConfig(), model=ModelConfig(layers=(LayerConfig(cell=cell, units=H),)),
                    train=TrainConfig(steps_per_epoch=steps))
    epoch = train.make_train_epoch(config, ds.train, ds.target_col)
    state = train.init_state(config, jax.random.PRNGKey(0), F)

    def run():
        nonlocal state
        state, m = epoch(state, ds.series)
        m["loss"].block_until_ready()
    return run


def ours_fixed(cell: str, steps: int, ds):
    config = Config(model=ModelConfig(layers=(LayerConfig(cell=cell, units=H),)))
    opt = train.make_optimizer(config.optim)
    rows = jnp.arange(10_000, 10_000 + B)
    xs, y = data.windows(ds.series, rows, lookback=1440, step=6, delay=144, target_col=1)
    state = train.init_state(config, jax.random.PRNGKey(0), F)

    @jax.jit
    def epoch(state, xs, y):
        def body(s, _):
            loss, g = jax.value_and_grad(lambda p: train.mae(models.apply_model(config.model, p, xs), y))(s.params)
            u, o = opt.update(g, s.opt_state, s.params)
            return s._replace(params=optax.apply_updates(s.params, u), opt_state=o), loss
        return jax.lax.scan(body, state, None, length=steps)

    def run():
        nonlocal state
        state, loss = epoch(state, xs, y)
        loss.block_until_ready()
    return run


def flax_peer(cell: str, steps: int, xs, y):
    import flax.linen as nn

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            c = nn.GRUCell(features=H) if cell == "gru" else nn.OptimizedLSTMCell(features=H)
            h = nn.RNN(c)(x)[:, -1]
            return nn.Dense(1)(h)[:, 0]

    model, opt = Model(), optax.rmsprop(1e-3, decay=0.9, eps=1e-7)
    params = model.init(jax.random.PRNGKey(0), xs)
    opt_state = opt.init(params)

    @jax.jit
    def step(params, opt_state):
        loss, g = jax.value_and_grad(lambda p: jnp.mean(jnp.abs(model.apply(p, xs) - y)))(params)
        u, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, u), opt_state, loss

    def run():
        nonlocal params, opt_state
        for _ in range(steps):
            params, opt_state, loss = step(params, opt_state)
        loss.block_until_ready()
    return run


def torch_peer(cell: str, steps: int, xs, y):
    import torch

    torch.manual_seed(0)
    rnn = (torch.nn.GRU if cell == "gru" else torch.nn.LSTM)(F, H, batch_first=True)
    head = torch.nn.Linear(H, 1)
    params = list(rnn.parameters()) + list(head.parameters())
    opt = torch.optim.RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7)
    tx, ty = torch.from_numpy(np.array(xs)), torch.from_numpy(np.array(y))

    def run():
        for _ in range(steps):
            opt.zero_grad()
            out, _ = rnn(tx)
            loss = (head(out[:, -1])[:, 0] - ty).abs().mean()
            loss.backward()
            opt.step()
    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="gru,lstm")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    args = p.parse_args(argv)
    ds = data.load_dataset(DataConfig())
    xs, y = data.windows(ds.series, jnp.arange(10_000, 10_000 + B), lookback=1440, step=6, delay=144, target_col=1)
    print(f"# {machine()}; python {platform.python_version()}; B={B} T={T} F={F} H={H}; "
          f"{args.steps} steps per timed call, median of {args.reps}")
    for cell in args.models.split(","):
        runners = {"jena_rnn": ours(cell, args.steps, ds), "jena_rnn fixed batch": ours_fixed(cell, args.steps, ds)}
        for name, make in (("flax nn.RNN", flax_peer), ("pytorch", torch_peer)):
            try:
                runners[name] = make(cell, args.steps, xs, y)
            except ImportError as e:
                print(f"  {name}: skipped ({e})")
        for run in runners.values():  # compile / warm up
            run()
        times = {k: [] for k in runners}
        for _ in range(args.reps):
            for k, run in runners.items():
                t0 = time.perf_counter()
                run()
                times[k].append(1e3 * (time.perf_counter() - t0) / args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        peers = [v for k, v in med.items() if not k.startswith("jena_rnn")]
        print(f"{cell.upper()}({H}) ms/step: " + "  ".join(f"{k} {v:.1f}" for k, v in med.items()))
        print(f"  sampling overhead {100 * (med['jena_rnn'] / med['jena_rnn fixed batch'] - 1):+.1f}%"
              + (f"; best peer / jena_rnn = {min(peers) / med['jena_rnn']:.2f}x" if peers else ""))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
