"""Time one training step (forward + backward + RMSprop) of every lecture model at its shapes, side by side.

    python benchmarks/bench_train.py [--models gru,lstm] [--reps 5] [--steps 20]
    (all six models at the defaults: about 7 minutes on an idle 2-core CPU)

Columns, measured interleaved (A B C D E, A B C D E, ...) and reported as medians of ``--reps`` repeats,
in ms per training step; batch 128, 240 steps, 14 features:
- jena_rnn remat off / on: ``train.make_train_epoch`` (the training path itself) with
  ``ModelConfig.remat`` False / True: ``--steps`` steps in one jitted scan, each drawing its batch from
  the device-resident series [420551, 14] by one gather.
- jena_rnn fixed batch: the same step pieces (model, MAE, RMSprop) on one pre-gathered batch, also in
  one scan, with ``remat=None`` (the backend's default); its difference to the column with the same
  remat setting is the cost of sampling windows inside the step.
- jena_rnn data-parallel xN: the remat-default path split over the N CPU devices that
  ``distributed.use_cpu_cores`` makes (one per core; ``train.make_train_step(mesh=)``), which is what
  ``jena-rnn train`` runs by default. The other jena_rnn columns use one device (one core's worth of
  XLA's per-op work), as do the Flax peer and PyTorch on ``--torch-threads`` 1.
- Flax ``nn.RNN`` with ``GRUCell``/``OptimizedLSTMCell`` (+ Dense), optax RMSprop, one jitted call per step.
- PyTorch ``nn.GRU``/``nn.LSTM``/``nn.Linear``, ``torch.optim.RMSprop``, eager, one call per step, on
  ``--torch-threads`` threads (default 1: with 2 threads on a 2-core machine that other jobs share,
  PyTorch's OpenMP threads wait on each other and a GRU step took 2-12 s instead of ~55 ms).
- Keras 3 on TensorFlow (``pip install '.[keras]'``), ``train_on_batch`` once per step, on TensorFlow's
  default thread pools (every core). It is the only peer that runs the lecture's exact models.
Flax and PyTorch have no recurrent dropout (Flax has none, PyTorch only drops between layers), so for the
dropout models they apply input dropout only, and PyTorch's GRU has no relu activation: those rows are
marked ``~`` (those two peers do less work than the lecture's model). Peers that are not installed are skipped with
a note. ``compile`` is the seconds to lower and compile our epoch (remat off / on).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jena_rnn import backend, data
from jena_rnn.runtime import distributed
from jena_rnn.nn import models
from jena_rnn.forecast import train
from jena_rnn.config import Config, DataConfig, ModelConfig, TrainConfig, lecture_config
from jena_rnn.forecast.reproduce import machine

B, T, F = 128, 240, 14
PEERS = ("flax nn.RNN", "pytorch", "keras")
MODELS = ("gru", "lstm", "gru_dropout", "stacked_gru", "bidirectional_gru", "mlp")


def _config(name: str, steps: int, remat: bool | None, hoist: bool | None = None) -> Config:
    base = lecture_config(name)
    return dataclasses.replace(base, model=dataclasses.replace(base.model, remat=remat, hoist_input=hoist),
                               train=TrainConfig(steps_per_epoch=steps))


def ours(name: str, steps: int, ds, remat: bool | None, mesh=None, *, adapt=None, hoist: bool | None = None):
    """Return (run, compile seconds) for the training path with ``remat``, data-parallel over ``mesh``.

    ``adapt``: ``(config, state) -> state`` applied to the initial state (e.g. another parameter layout).
    ``hoist``: ``ModelConfig.hoist_input`` (None = the backend's choice).
    """
    config = _config(name, steps, remat, hoist)
    state = train.init_state(config, jax.random.PRNGKey(0), F)
    state = adapt(config, state) if adapt is not None else state
    state, series = distributed.place((state, ds.series), mesh, stacked=False)
    series = data.Phased(data.by_phase(series, config.data.step))  # as fit: rearranged once per run
    t0 = time.perf_counter()
    epoch = jax.jit(train.make_train_epoch(config, ds.train, ds.target_col, jit=False, mesh=mesh)).lower(
        state, series).compile()
    compile_s = time.perf_counter() - t0

    def run():
        nonlocal state
        state, m = epoch(state, series)
        m["loss"].block_until_ready()
    return run, compile_s


def ours_fixed(name: str, steps: int, xs, y):
    config = _config(name, steps, None)
    opt = train.make_optimizer(config.optim)
    state = train.init_state(config, jax.random.PRNGKey(0), F)

    def loss_fn(params, key):
        return train.mae(models.apply_model(config.model, params, xs, key=key, train=True), y)

    def step(s):
        key, k_drop = jax.random.split(s.key)
        loss, g = jax.value_and_grad(loss_fn)(s.params, k_drop)
        u, o = opt.update(g, s.opt_state, s.params)
        return s._replace(params=optax.apply_updates(s.params, u), opt_state=o, key=key), loss
    return scan_runner(step, state, steps)


def scan_runner(step, state, steps: int):
    """A ``run()`` that advances ``state`` by ``steps`` calls of ``step`` (``state -> (state, loss)``) in one
    jitted ``lax.scan`` and waits for it (the timed unit of the fixed-batch columns, here and in bench_flax)."""
    epoch = jax.jit(lambda s: jax.lax.scan(lambda c, _: step(c), s, None, length=steps))

    def run():
        nonlocal state
        state, loss = epoch(state)
        loss.block_until_ready()
    return run


def flax_peer(model: ModelConfig, steps: int, xs, y):
    import flax.linen as nn

    def cell(layer):
        if layer.cell == "gru":
            return nn.GRUCell(features=layer.units, activation_fn=_act(layer.activation))
        return nn.OptimizedLSTMCell(features=layer.units)

    class Model(nn.Module):
        @nn.compact
        def __call__(self, x):
            if model.kind == "mlp":
                return nn.Dense(1)(nn.relu(nn.Dense(model.mlp_units)(x.reshape(x.shape[0], -1))))[:, 0]
            for layer in model.layers:
                x = nn.Dropout(layer.dropout, deterministic=False)(x) if layer.dropout else x
                fw = nn.RNN(cell(layer))(x)
                if layer.bidirectional:
                    bw = nn.RNN(cell(layer), reverse=True, keep_order=True)(x)
                    x, last = jnp.concatenate([fw, bw], -1), jnp.concatenate([fw[:, -1], bw[:, 0]], -1)
                else:
                    x, last = fw, fw[:, -1]
            return nn.Dense(1)(last)[:, 0]

    net, opt = Model(), optax.rmsprop(1e-3, decay=0.9, eps=1e-7)
    params = net.init({"params": jax.random.PRNGKey(0), "dropout": jax.random.PRNGKey(1)}, xs)
    opt_state, key = opt.init(params), jax.random.PRNGKey(2)

    @jax.jit
    def step(params, opt_state, key):
        key, k = jax.random.split(key)
        loss, g = jax.value_and_grad(
            lambda p: jnp.mean(jnp.abs(net.apply(p, xs, rngs={"dropout": k}) - y)))(params)
        u, opt_state = opt.update(g, opt_state, params)
        return optax.apply_updates(params, u), opt_state, key, loss

    def run():
        nonlocal params, opt_state, key
        for _ in range(steps):
            params, opt_state, key, loss = step(params, opt_state, key)
        loss.block_until_ready()
    return run


def _act(name: str):
    return jax.nn.relu if name == "relu" else jnp.tanh


def torch_peer(model: ModelConfig, steps: int, xs, y, threads: int = 1, device: str = "cpu"):
    """PyTorch on ``device`` ("cuda": cuDNN's GRU/LSTM; each timed call ends with a synchronize)."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    nn = torch.nn
    if model.kind == "mlp":
        net = nn.Sequential(nn.Flatten(), nn.Linear(T * F, model.mlp_units), nn.ReLU(), nn.Linear(model.mlp_units, 1))
        forward = net
    else:
        layers, drops, in_f = nn.ModuleList(), [], F
        for layer in model.layers:
            cls = nn.GRU if layer.cell == "gru" else nn.LSTM
            layers.append(cls(in_f, layer.units, batch_first=True, bidirectional=layer.bidirectional))
            drops.append(nn.Dropout(layer.dropout))
            in_f = layer.units * (2 if layer.bidirectional else 1)
        head, top = nn.Linear(in_f, 1), model.layers[-1]
        net = nn.ModuleList([layers, head])

        def forward(x):
            for rnn_, drop in zip(layers, drops):
                x, _ = rnn_(drop(x))
            last = torch.cat([x[:, -1, :top.units], x[:, 0, top.units:]], -1) if top.bidirectional else x[:, -1]
            return head(last)
    net.to(device)
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    tx, ty = torch.from_numpy(np.array(xs)).to(device), torch.from_numpy(np.array(y)).to(device)

    def run():
        for _ in range(steps):
            opt.zero_grad()
            loss = (forward(tx)[:, 0] - ty).abs().mean()
            loss.backward()
            opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
    return run


def keras_peer(model: ModelConfig, steps: int, xs, y):
    """Keras 3 on the TensorFlow backend: the lecture's exact model (Keras has recurrent dropout, relu GRUs
    and both GRU forms), ``model.train_on_batch`` once per step, as the lecture's ``fit`` runs it."""
    net = keras_model(model)
    kx, ky = np.array(xs), np.array(y)

    def run():
        for _ in range(steps):
            net.train_on_batch(kx, ky)
    return run


def keras_model(model: ModelConfig):
    """The lecture's ``model`` as a compiled Keras 3 model (RMSprop 1e-3, MAE loss), seed 0."""
    import keras

    keras.utils.set_random_seed(0)
    inp = keras.Input((T, F))
    if model.kind == "mlp":
        h = keras.layers.Dense(model.mlp_units, activation="relu")(keras.layers.Flatten()(inp))
    else:
        h = inp
        for i, layer in enumerate(model.layers):
            kw = dict(activation=layer.activation, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout,
                      return_sequences=i < len(model.layers) - 1)
            rec = (keras.layers.GRU(layer.units, reset_after=layer.reset_after, **kw) if layer.cell == "gru"
                   else keras.layers.LSTM(layer.units, **kw))
            h = (keras.layers.Bidirectional(rec) if layer.bidirectional else rec)(h)
    net = keras.Model(inp, keras.layers.Dense(1)(h))
    net.compile(optimizer=keras.optimizers.RMSprop(1e-3, rho=0.9, epsilon=1e-7), loss="mae")
    return net


def _keras_version() -> str:
    try:
        import keras
        return f"keras {keras.__version__} ({keras.backend.backend()})"
    except ImportError:
        return "keras not installed"


def _torch_version() -> str:
    try:
        import torch
        return torch.__version__
    except ImportError:
        return "not installed"


def interleave(runners: dict, reps: int, steps: int) -> dict[str, list[float]]:
    """Warm every runner up (compiling it), then time them A B C, A B C, ...: ms per step, ``reps`` each."""
    for run in runners.values():
        run()
    times = {k: [] for k in runners}
    for _ in range(reps):
        for k, run in runners.items():
            t0 = time.perf_counter()
            run()
            times[k].append(1e3 * (time.perf_counter() - t0) / steps)
    return times


def _ms(v: float) -> str:
    """Milliseconds to one decimal, or two below 10 ms (the MLP's ~0.5 ms needs them)."""
    return f"{v:.2f}" if v < 10 else f"{v:.1f}"


def approximate(model: ModelConfig) -> bool:
    """Whether the peers run a simplified model (no recurrent dropout, no relu GRU in PyTorch)."""
    return any(layer.recurrent_dropout or layer.activation != "tanh" for layer in model.layers)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {','.join(MODELS)}")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--torch-threads", type=int, default=1)
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # the Keras peer; before keras is imported
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    distributed.use_cpu_cores()  # one JAX device per core, as `jena-rnn train` does (before JAX starts)
    mesh = distributed.auto_mesh(B)
    n_dev = distributed.axis_size(mesh, "data")
    ds = data.load_dataset(DataConfig())
    xs, y = data.windows(ds.series, jnp.arange(10_000, 10_000 + B), lookback=1440, step=6, delay=144, target_col=1)
    default = "on" if backend.scan_policy().remat else "off"
    print(f"# {machine()}; {n_dev} CPU device(s) for the data-parallel column; "
          f"python {platform.python_version()}; B={B} T={T} F={F}; "
          f"{args.steps} steps per timed call, median of {args.reps}; default remat here: {default}; "
          f"torch {_torch_version()} on {args.torch_threads} thread(s); {_keras_version()}")
    cols = ["remat off", "remat on", "fixed batch", f"data-parallel x{n_dev}", "flax nn.RNN", "pytorch", "keras"]
    print("| model | " + " | ".join(cols) + " | compile off / on (s) | best peer / our best | keras / our best | sampling |")
    print("|---" * (len(cols) + 5) + "|")
    for name in args.models.split(","):
        model = lecture_config(name).model
        (off, c_off), (on, c_on) = ours(name, args.steps, ds, False), ours(name, args.steps, ds, True)
        runners = {"remat off": off, "remat on": on, "fixed batch": ours_fixed(name, args.steps, xs, y)}
        if mesh is not None:
            runners[f"data-parallel x{n_dev}"] = ours(name, args.steps, ds, None, mesh)[0]
        torch_run = lambda *a: torch_peer(*a, threads=args.torch_threads)  # noqa: E731
        for col, make in (("flax nn.RNN", flax_peer), ("pytorch", torch_run), ("keras", keras_peer)):
            try:
                runners[col] = make(model, args.steps, xs, y)
            except ImportError as e:
                print(f"  {col}: skipped ({e})", file=sys.stderr)
        times = interleave(runners, args.reps, args.steps)
        med = {k: statistics.median(v) for k, v in times.items()}
        best_ours = min(v for k, v in med.items() if k.startswith(("remat", "data-parallel")))
        peers = [v for k, v in med.items() if k in PEERS]
        ratio = f"{min(peers) / best_ours:.2f}x" if peers else "–"
        exact = f"{med['keras'] / best_ours:.2f}x" if "keras" in med else "–"
        sampling = f"{100 * (med[f'remat {default}'] / med['fixed batch'] - 1):+.1f}%"
        label = name + (" ~" if approximate(model) else "")
        print(f"| {label} | " + " | ".join(_ms(med[c]) if c in med else "–" for c in cols)
              + f" | {c_off:.1f} / {c_on:.1f} | {ratio} | {exact} | {sampling} |", flush=True)


if __name__ == "__main__":
    main()
