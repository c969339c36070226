"""Does the lecture's GRU train through the Flax face (nnx Module, nnx.Optimizer, model.eval()) as through ``fit``?

Command:  python experiments/flax_gru.py [--epochs 2] [--steps 50] [--val-batches 20] [--data FILE]
Runtime:  about a minute on a 2-core CPU at the defaults (the lecture's windows, a few short epochs).
Expected: the training MAE falls epoch over epoch; the same batches through ``jena_rnn.fit`` give the same
          numbers (tests/test_flax_layers.py checks that step for step).
Settings: the lecture's GRU(32) (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE) on the
          synthetic default; only epochs and steps per epoch are cut.
"""
import argparse
import dataclasses
import json

import jax
import numpy as np
from flax import nnx

from jena_rnn import data
from jena_rnn import flax as jflax
from jena_rnn.config import lecture_config
from jena_rnn.forecast.train import mae
from jena_rnn.runtime.state import make_optimizer

CONFIG = lecture_config("gru")


def main(argv=None):
    p = argparse.ArgumentParser(prog="experiments/flax_gru.py", description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--steps", type=int, default=50, help="training steps per epoch")
    p.add_argument("--val-batches", type=int, default=20, help="validation batches (the lecture's order)")
    p.add_argument("--data", help="Jena-format CSV (default: the synthetic default)")
    args = p.parse_args(argv)
    d = dataclasses.replace(CONFIG.data, path=args.data) if args.data else CONFIG.data
    ds, layer = data.load_dataset(d), CONFIG.model.layers[0]
    model = jflax.Forecaster(ds.series.shape[1], layer.units, cell=layer.cell, reset_after=layer.reset_after,
                             rngs=nnx.Rngs(CONFIG.train.seed))
    optimizer = nnx.Optimizer(model, make_optimizer(CONFIG.optim), wrt=nnx.Param)
    phases, window = data.by_phase(ds.series, d.step), dict(lookback=d.lookback, step=d.step, delay=d.delay,
                                                            target_col=ds.target_col, reverse=d.reverse)

    @nnx.jit
    def train_step(model, optimizer, rows, key):
        xs, y = data.windows_by_phase(phases, rows, **window)
        loss, grads = nnx.value_and_grad(lambda m: mae(m(xs, rngs=key), y))(model)
        optimizer.update(model, grads)
        return loss

    @nnx.jit
    def abs_errors(model, rows):
        xs, y = data.windows_by_phase(phases, rows, **window)
        return abs(model(xs) - y)

    val_rows, val_valid = data.eval_rows(*ds.val, lookback=d.lookback, batch_size=d.batch_size, mode="lecture",
                                         delay=d.delay, steps=args.val_batches)
    key, scale = jax.random.PRNGKey(CONFIG.train.seed), data.target_scale(ds)
    for epoch in range(1, args.epochs + 1):
        model.train()
        losses = []
        for _ in range(args.steps):
            key, k_rows, k_drop = jax.random.split(key, 3)
            rows = data.sample_train_rows(k_rows, d.batch_size, *ds.train, lookback=d.lookback, delay=d.delay,
                                          strict=d.strict_targets)
            losses.append(float(train_step(model, optimizer, rows, k_drop)))
        model.eval()
        err = np.concatenate([np.asarray(abs_errors(model, r))[v] for r, v in zip(val_rows, val_valid)])
        row = {"epoch": epoch, "train_mae": float(np.mean(losses)), "val_mae": float(err.mean()),
               "val_mae_degC": float(err.mean()) * scale}
        print(json.dumps(row))
    return row


if __name__ == "__main__":
    main()
