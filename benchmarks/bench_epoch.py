"""Time whole epochs of the lecture's experiments: jena_rnn against the lecture's own stack (Keras + its generator).

    python benchmarks/bench_epoch.py [--models gru] [--reps 3]   (GRU: about 3 minutes on 2 cores)

An epoch is what the lecture's ``model.fit(train_gen, steps_per_epoch=500, epochs=..., validation_data=val_gen,
validation_steps=val_steps)`` does once: 500 training steps of batch 128 and one validation pass.
- jena_rnn: ``train.make_train_epoch`` (500 steps in one jitted scan, each drawing its batch on the device)
  then ``train.make_evaluate`` over every validation window (98,559 windows, 770 batches), data-parallel
  over the CPU devices that ``distributed.use_cpu_cores`` makes: what ``jena-rnn train`` runs per epoch,
  without its checkpoint (tens of milliseconds).
- Keras 3 on TensorFlow, fed by the lecture's Python generator (``tests/lecture_generator.py``,
  rewritten from the slides), ``validation_steps`` = 769 as the lecture computes it; the model is
  ``bench_train.keras_model`` (the lecture's exact model). Skipped with a note if Keras is not installed.
One warm-up epoch each (compilation), then ``--reps`` epochs interleaved (A B A B ...); medians in seconds.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

from jena_rnn import data
from jena_rnn.runtime import distributed
from jena_rnn.forecast import train
from jena_rnn.config import lecture_config
from jena_rnn.forecast.reproduce import machine

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))


def ours(name: str, ds, mesh, config=None):
    """Return ``run()``: one epoch of lecture model ``name`` (or of ``config``), then the validation pass."""
    config = config or lecture_config(name)
    state = distributed.place(train.init_state(config, jax.random.PRNGKey(0), ds.series.shape[1]), mesh,
                              stacked=False)
    series = data.Phased(data.by_phase(distributed.place(ds.series, mesh, stacked=False), config.data.step))
    epoch = train.make_train_epoch(config, ds.train, ds.target_col, mesh=mesh)
    evaluate = train.make_evaluate(config, ds.target_col, mesh=mesh)
    rows, valid = train.split_rows(config, ds.val)

    def run():
        nonlocal state
        state, m = epoch(state, series)
        total, count = evaluate(state.params, series, rows, valid)
        return float(np.mean(m["loss"])), float(total) / int(count)
    return run


def keras_epoch(name: str, ds):
    from bench_train import keras_model
    from lecture_generator import generator

    config = lecture_config(name)
    d = config.data
    net, series = keras_model(config.model), np.asarray(ds.series)
    (lo, hi), (vlo, vhi) = ds.train, ds.val
    kw = dict(lookback=d.lookback, delay=d.delay, step=d.step, batch_size=d.batch_size)
    train_gen = generator(series, min_index=lo, max_index=hi, shuffle=True, rng=np.random.RandomState(0), **kw)
    val_gen = generator(series, min_index=vlo, max_index=vhi, **kw)
    if d.reverse:  # the lecture's reversed-order experiment flips each window in its generator
        train_gen, val_gen = ((x[:, ::-1], y) for x, y in train_gen), ((x[:, ::-1], y) for x, y in val_gen)
    val_steps = (vhi - vlo - d.lookback) // d.batch_size  # the lecture's formula: 769

    def run(steps=config.train.steps_per_epoch, validation_steps=val_steps):
        h = net.fit(train_gen, steps_per_epoch=steps, epochs=1, validation_data=val_gen,
                    validation_steps=validation_steps, verbose=0).history
        return h["loss"][-1], h["val_loss"][-1]
    return run


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="gru", help="comma-separated lecture models (default gru)")
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    distributed.use_cpu_cores()
    ds = data.load_dataset(lecture_config("gru").data)
    mesh = distributed.auto_mesh(128)
    try:
        import keras
        peer = f"keras {keras.__version__} ({keras.backend.backend()})"
    except ImportError as e:
        peer = None
        print(f"keras: skipped ({e})", file=sys.stderr)
    print(f"# {machine()}; {distributed.axis_size(mesh, 'data')} CPU device(s) for jena_rnn; python "
          f"{platform.python_version()}; {peer or 'keras not installed'}; seconds per epoch (500 steps of 128 + "
          f"validation), warm-up 1, median of {args.reps}")
    print("| model | jena_rnn | Keras + the lecture's generator | Keras / jena_rnn |")
    print("|---|---|---|---|")
    for name in args.models.split(","):
        mlp = lecture_config(name).model.kind == "mlp"  # the MLP trains on one device (RESULTS.md)
        runners = {"jena_rnn": ours(name, ds, None if mlp else mesh)}
        if peer:
            runners["keras"] = keras_epoch(name, ds)
        for run in runners.values():
            run()  # warm up: compile
        times = {k: [] for k in runners}
        for _ in range(args.reps):
            for k, run in runners.items():
                t0 = time.perf_counter()
                run()
                times[k].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        ratio = f"{med['keras'] / med['jena_rnn']:.2f}x" if "keras" in med else "–"
        print(f"| {name} | {med['jena_rnn']:.1f} | " + (f"{med['keras']:.1f}" if "keras" in med else "–")
              + f" | {ratio} |", flush=True)


if __name__ == "__main__":
    main()
