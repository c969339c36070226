"""Does the lecture's GRU train through the Flax face (nnx Module, nnx.Optimizer, model.eval())?

Command:  python experiments/flax_gru.py
Runtime:  about a minute on a 2-core CPU (the lecture's windows, 2 short epochs of 50 steps).
Expected: the training MAE falls epoch over epoch. The numbers are this script's own, not ``fit``'s: the
          model draws its initial weights from ``nnx.Rngs(seed)`` and validates on 20 of the lecture's
          validation batches. That an nnx loop from the same initial parameters on the same batches follows
          ``fit``'s jitted epoch step for step is what tests/test_flax_layers.py checks.
Settings: the lecture's GRU(32) (lookback 1440, step 6, delay 144, batch 128, RMSprop 1e-3, MAE) on the
          synthetic default; only epochs and steps per epoch are cut (``main``'s arguments; an example, so
          it reads no flags: edit the call at the bottom, or import it and call ``main``).
"""
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


def main(epochs: int = 2, steps: int = 50, val_batches: int = 20, data_config=None) -> list[dict]:
    """Train ``epochs`` x ``steps`` and print one JSON row per epoch; return the rows.

    ``data_config``: a ``DataConfig`` (default: the lecture's, on the synthetic default).
    """
    for name, value in (("epochs", epochs), ("steps", steps), ("val_batches", val_batches)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"flax_gru.main: {name} must be a positive integer, got {value!r}")
    d = CONFIG.data if data_config is None else data_config
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
                                         delay=d.delay, steps=val_batches)
    key, scale = jax.random.PRNGKey(CONFIG.train.seed), data.target_scale(ds)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        for _ in range(steps):
            key, k_rows, k_drop = jax.random.split(key, 3)
            rows = data.sample_train_rows(k_rows, d.batch_size, *ds.train, lookback=d.lookback, delay=d.delay,
                                          strict=d.strict_targets)
            losses.append(float(train_step(model, optimizer, rows, k_drop)))
        model.eval()
        err = np.concatenate([np.asarray(abs_errors(model, r))[v] for r, v in zip(val_rows, val_valid)])
        row = {"epoch": epoch, "train_mae": float(np.mean(losses)), "val_mae": float(err.mean()),
               "val_mae_degC": float(err.mean()) * scale}
        print(json.dumps(row))
        history.append(row)
    return history


if __name__ == "__main__":
    main()
