"""Loss, optimiser, the jitted training epoch, evaluation and ``fit`` (its epoch loop: ``jena_rnn.runtime.loop``).

A training step draws its own batch from the device-resident normalised series:
``rows ~ U[lo + lookback, hi)`` (``data.sample_train_rows``), ``xs, y = data.windows_by_phase(phased, rows)``
(the one window formula, ``data.windows``, read from the series laid out by phase), then one RMSprop update on ``mae(apply_model(xs), y)``. ``steps_per_epoch`` such steps run inside one
jitted ``lax.scan`` (one host round trip per epoch), and validation over a whole split is one jitted
``lax.scan`` over precomputed batches of end rows.

RMSprop is ``optax.inject_hyperparams(optax.rmsprop)`` with Keras's defaults (lr 1e-3, rho 0.9,
epsilon 1e-7 inside the square root: ``w -= lr * g / sqrt(nu + eps)``, as Keras 3; PyTorch puts
epsilon outside, ``g / (sqrt(nu) + eps)``). The learning rate lives in ``opt_state`` so sweeps can vmap it.
"""
from __future__ import annotations

import dataclasses
import functools
import time
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, PartitionSpec as P

from jena_rnn.runtime import distributed, loop, report, rundir
from jena_rnn import backend, data
from jena_rnn.config import Config, ModelConfig, config_from_saved, to_dict
from jena_rnn.forecast.record import check_resume, stats_json
from jena_rnn.runtime.state import TrainState, make_optimizer  # noqa: F401 -- public as train.TrainState
from jena_rnn.nn.models import apply_model, init_model

Array = jax.Array
TrainingDiverged = loop.TrainingDiverged  # public as train.TrainingDiverged


def mae(y_hat: Array, y: Array) -> Array:
    """Mean absolute error ``mean(|y_hat - y|)``; raises unless ``y_hat.shape == y.shape``.

    The check stops ``[B, 1]`` against ``[B]`` from silently broadcasting to ``[B, B]``.
    """
    if y_hat.shape != y.shape:
        raise ValueError(f"mae: y_hat has shape {tuple(y_hat.shape)} but y has shape {tuple(y.shape)}")
    return jnp.mean(jnp.abs(y_hat - y))


def init_state(config: Config, key: Array, in_features: int) -> TrainState:
    """Initialise parameters and optimiser state; ``key`` seeds both the init and the data stream."""
    k_init, k_run = jax.random.split(key)
    params = init_model(k_init, config.model, in_features, config.data.timesteps)
    opt_state = make_optimizer(config.optim).init(params)
    return TrainState(params, opt_state, jnp.zeros((), jnp.int32), k_run)


def _is_mlp_kernel(path) -> bool:
    keys = [getattr(k, "key", None) for k in path[-2:]]
    return keys == ["hidden", "w"]


def swap_mlp_kernel(tree: Any) -> Any:
    """Swap the last two axes of the MLP's hidden kernel wherever ``tree`` holds it (its own inverse).

    Applies to params and to the optimiser's copies of them (RMSprop's ``nu`` mirrors the params), and to a
    sweep's stacked ``[S, ...]`` leaves; other leaves pass through. RMSprop is elementwise, so an update in
    the swapped form is the swapped update.
    """
    return jax.tree_util.tree_map_with_path(lambda p, x: jnp.swapaxes(x, -1, -2) if _is_mlp_kernel(p) else x,
                                            tree)


def carries_transposed_kernel(config: Config) -> bool:
    """Whether ``make_train_epoch`` carries this model's MLP kernel transposed (``backend``'s choice)."""
    return config.model.kind == "mlp" and backend.carry_transposed_mlp_kernel()


def make_train_step(config: Config, bounds: tuple[int, int], target_col: int, *,
                    batch_sharding: Any = None, mesh: Mesh | None = None, transposed_kernel: bool = False
                    ) -> Callable[..., tuple[TrainState, dict]]:
    """Return the pure step ``(state, series [N, F], rates=None) -> (state, {"loss": []})`` (not jitted).

    ``series`` may also be a ``data.Phased`` (the series rearranged once by ``data.by_phase``, as
    ``make_train_epoch`` and ``fit`` do): each window is then one contiguous slice.

    The batch is drawn from ``series`` with the key carried in ``state``; static structure comes
    from ``config`` and the training split ``bounds`` (end rows in ``[lo + lookback, hi)``).
    ``rates`` [L, 2] optionally overrides each layer's (dropout, recurrent_dropout) with arrays, so a
    sweep can vmap them; None uses the config's rates. ``batch_sharding`` (a ``jax.sharding.Sharding``
    of the batch axis, e.g. ``NamedSharding(mesh, P("data"))``) constrains the drawn end rows, so that
    XLA partitions the step over devices (sweeps use this, inside their vmap).

    ``mesh`` (a ``jax.sharding.Mesh`` with a ``"data"`` axis of n > 1 devices; single-model training)
    instead runs the window gather, forward and backward under ``shard_map``: device k takes end rows
    ``[k B/n, (k+1) B/n)`` of the same drawn batch, and the loss and gradients are averaged over the
    devices (``pmean``; the MAE of equal halves averages to the MAE of the batch). Each device draws the
    whole batch's dropout masks from the step's key and keeps its rows (``rnn.dropout_masks(rows=)``),
    so the step is the single-device step up to float rounding, with or without dropout, whatever the
    number of devices (a run may be resumed on another device count).
    Raises ``ValueError`` if ``batch_size`` is not divisible by n.

    ``transposed_kernel``: the state holds the MLP's hidden kernel swapped (``swap_mlp_kernel``), as
    ``make_train_epoch`` carries it on backends that multiply that form faster; the loss swaps it back,
    so the function computed is the same.
    """
    d, optimizer = config.data, make_optimizer(config.optim)
    lo, hi = bounds
    n_data = distributed.axis_size(mesh, "data")
    if n_data > 1:
        distributed.check_divisible(mesh, batch_size=d.batch_size, members=1)

    def loss_fn(params, xs, y, key, rates, dropout_rows=None):
        if rates is not None:
            rates = [(rates[n, 0], rates[n, 1]) for n in range(rates.shape[0])]
        if transposed_kernel:
            params = swap_mlp_kernel(params)
        y_hat = apply_model(config.model, params, xs, key=key, train=True, target_col=target_col,
                            rates=rates, dropout_rows=dropout_rows)
        return mae(y_hat, y)

    def grads_fn(params, phases, rows, key, rates, dropout_rows=None):
        xs, y = data.windows_by_phase(phases, rows, lookback=d.lookback, step=d.step, delay=d.delay,
                                      target_col=target_col, reverse=d.reverse)
        return jax.value_and_grad(loss_fn)(params, xs, y, key, rates, dropout_rows)

    def local_grads(params, phases, rows, key):
        # this device's rows of the batch, and the same rows of the whole batch's dropout masks
        return grads_fn(params, phases, rows, key, None, distributed.local_rows(d.batch_size, mesh))

    if n_data > 1:
        sharded_grads = distributed.data_parallel(local_grads, mesh, (P(), P(), P("data"), P()), jax.lax.pmean)

    def train_step(state: TrainState, series: Array, rates: Array | None = None) -> tuple[TrainState, dict]:
        phases = data.phases_of(series, d.step)
        key, k_rows, k_drop = jax.random.split(state.key, 3)
        rows = data.sample_train_rows(k_rows, d.batch_size, lo, hi, lookback=d.lookback,
                                      delay=d.delay, strict=d.strict_targets)
        if batch_sharding is not None:
            rows = jax.lax.with_sharding_constraint(rows, batch_sharding)
        if n_data > 1:
            if rates is not None:
                raise ValueError("make_train_step: per-call dropout rates (sweeps) are not supported with a "
                                 "'data' mesh; sweeps pass batch_sharding instead")
            loss, grads = sharded_grads(state.params, phases, rows, k_drop)
        else:
            loss, grads = grads_fn(state.params, phases, rows, k_drop, rates)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        return TrainState(params, opt_state, state.step + 1, key), {"loss": loss}

    return train_step


def make_train_epoch(config: Config, bounds: tuple[int, int], target_col: int, *,
                     progress: Callable[[int], None] | None = None, jit: bool = True,
                     batch_sharding: Any = None, mesh: Mesh | None = None):
    """Return ``train_epoch(state, series, rates=None) -> (state, {"loss": [steps_per_epoch]})``.

    One ``lax.scan`` of ``make_train_step`` steps (``rates``, ``batch_sharding``, ``mesh``: see there). Where
    ``carries_transposed_kernel(config)``, the MLP's kernel is swapped once before the scan and back after
    it: the state goes in and comes out in the stored ``[in, out]`` layout.

    Args:
      progress: optional host callback given the 1-based step within the epoch (a progress bar);
        called through ``jax.debug.callback``, so it costs one cheap host call per step.
      jit: wrap in ``jax.jit`` (sweeps pass False and jit their own vmapped version).
    """
    transposed = carries_transposed_kernel(config)
    step_fn = make_train_step(config, bounds, target_col, batch_sharding=batch_sharding, mesh=mesh,
                              transposed_kernel=transposed)
    steps = config.train.steps_per_epoch

    def train_epoch(state: TrainState, series: Array, rates: Array | None = None):
        phased = data.Phased(data.phases_of(series, config.data.step))  # once per call (fit: once per run)

        def body(state, i):
            state, metrics = step_fn(state, phased, rates)
            if progress is not None:  # a host call every `every` steps only
                every = max(1, steps // 50)
                jax.lax.cond((i + 1) % every == 0, lambda: jax.debug.callback(progress, i + 1), lambda: None)
            return state, metrics

        if not transposed:
            return jax.lax.scan(body, state, jnp.arange(steps))
        state, metrics = jax.lax.scan(body, swap_mlp_kernel(state), jnp.arange(steps))
        return swap_mlp_kernel(state), metrics

    return jax.jit(train_epoch) if jit else train_epoch


def make_evaluate(config: Config, target_col: int, *, model=None, mesh: Mesh | None = None):
    """Return jitted ``evaluate(params, series, rows [nb, B], valid [nb, B]) -> (sum |err|, count)``.

    One ``lax.scan`` over the batches of end rows from ``data.eval_rows``; padded rows (valid False)
    are ignored. MAE = sum / count, in normalised units. With a ``mesh`` whose ``"data"`` axis has
    n > 1 devices, each device scores columns ``[k B/n, (k+1) B/n)`` of every batch and the sums are
    added (``psum``); ``B`` must be divisible by n.
    """
    d, model = config.data, model or config.model

    def evaluate(params, series, rows, valid):
        phases = data.phases_of(series, d.step)

        def body(carry, batch):
            r, v = batch
            xs, y = data.windows_by_phase(phases, r, lookback=d.lookback, step=d.step, delay=d.delay,
                                          target_col=target_col, reverse=d.reverse and model.kind != "naive")
            err = jnp.abs(apply_model(model, params, xs, train=False, target_col=target_col) - y)
            return (carry[0] + jnp.sum(jnp.where(v, err, 0.0)), carry[1] + jnp.sum(v)), None

        (total, count), _ = jax.lax.scan(body, (jnp.zeros(()), jnp.zeros((), jnp.int32)), (rows, valid))
        return total, count

    if distributed.axis_size(mesh, "data") > 1:
        distributed.check_divisible(mesh, batch_size=d.batch_size, members=1)
        evaluate = distributed.data_parallel(evaluate, mesh, (P(), P(), P(None, "data"), P(None, "data")))
    return jax.jit(evaluate)


def split_rows(config: Config, bounds: tuple[int, int]) -> tuple[Array, Array]:
    """Return the device arrays ``(rows, valid)`` [nb, B] that cover the split ``bounds``."""
    d = config.data
    rows, valid = data.eval_rows(bounds[0], bounds[1], lookback=d.lookback, batch_size=d.batch_size,
                                 mode=d.eval_mode, delay=d.delay, strict=d.strict_targets)
    return jnp.asarray(rows), jnp.asarray(valid)


def evaluate_split(config: Config, params: dict, ds: data.Dataset, split: str = "val",
                   *, model=None, mesh: Mesh | None = None) -> float:
    """Return the normalised MAE of ``params`` over a whole split (``"train"``, ``"val"``, ``"test"``)."""
    rows, valid = split_rows(config, getattr(ds, split))
    series, params = distributed.place((ds.series, params), mesh, stacked=False)
    total, count = make_evaluate(config, ds.target_col, model=model, mesh=mesh)(params, series, rows, valid)
    return float(total) / max(int(count), 1)


def mae_metrics(train_mae: float, val_mae: float, scale: float) -> dict:
    """An epoch's metrics: the MAEs normalised and in the target's units (``scale``: its training std)."""
    return {"train_mae": train_mae, "val_mae": val_mae, "train_mae_degC": train_mae * scale,
            "val_mae_degC": val_mae * scale}


def fit(config: Config, ds: data.Dataset, run_dir: str | Path | None = None, *, resume: bool = False,
        log: Callable[[str], None] | None = print, progress: bool = False,
        mesh: Mesh | None = None) -> tuple[TrainState, list[dict]]:
    """Train ``config`` on ``ds``; checkpoint every epoch to ``run_dir`` (if given).

    Args:
      resume: continue from ``run_dir``'s latest checkpoint (same results as an uninterrupted run,
        because the PRNG key is part of the checkpointed state).
      log: receives one line per epoch (None = quiet).
      progress: draw a progress bar on stderr while an epoch runs.
      mesh: data-parallel training and validation over its ``"data"`` axis (``make_train_step``);
        e.g. ``distributed.auto_mesh(batch_size)``. None = one device. Under ``jax.distributed`` the
        mesh may span processes: every process runs ``fit`` alike, and process 0 writes the files.
    Returns:
      (final state, history): one dict per epoch with ``train_mae``, ``val_mae`` (normalised),
      the same in the target's units (``*_degC``), ``train_seconds``, ``step_ms`` and ``epoch_seconds``.
    Raises:
      TrainingDiverged: a NaN/inf training or validation loss (the epoch is named; the last good
        checkpoint stays the latest one).
    """
    if config.model.kind == "naive":
        raise ValueError("model 'naive' has nothing to train: use `jena-rnn baseline`")
    scale = data.target_scale(ds)
    run_dir = Path(run_dir) if run_dir is not None else None
    with rundir.lock(run_dir, "forecast"):  # one writer per run directory; released on return and on errors
        return _fit(config, ds, run_dir, resume=resume, log=log, progress=progress, mesh=mesh, scale=scale)


def _fit(config, ds, run_dir, *, resume, log, progress, mesh, scale):
    def check(saved: dict) -> None:
        config_saved = to_dict(config_from_saved(saved, run_dir / rundir.CONFIG))
        check_resume(run_dir, to_dict(config), config_saved, ds, ignore=("train.epochs",))

    state = init_state(config, jax.random.PRNGKey(config.train.seed), ds.series.shape[1])
    state, history = loop.open_run(run_dir, state, resume=resume, check_config=check)
    # under jax.distributed, process 0 writes every file; a resumed run keeps the stats.json it began with
    if run_dir is not None and distributed.is_main() and not history:
        rundir.write_stats(run_dir, stats_json(ds))
        # before the first checkpoint, so a crash inside it still leaves a resumable run
        rundir.write_config(run_dir, to_dict(config))
    # loss.png shows the naive forecast as its baseline and a °C axis (one cheap pass over the validation split)
    naive = dataclasses.replace(config, model=ModelConfig(kind="naive", layers=()))
    unit = data.unit_of(config.data.target)  # "°C" for the lecture's "T (degC)"
    plot = None if run_dir is None else functools.partial(report.write_history, scale=scale, scale_unit=unit,
                                                          baseline=evaluate_split(naive, {}, ds, "val"))
    bar = report.ProgressBar(config.train.steps_per_epoch, epochs=config.train.epochs, done=len(history)) \
        if progress else None
    train_epoch = make_train_epoch(config, ds.train, ds.target_col, progress=bar, mesh=mesh)
    evaluate = make_evaluate(config, ds.target_col, mesh=mesh)
    val_rows, val_valid = split_rows(config, ds.val)
    state, series = distributed.place((state, ds.series), mesh, stacked=False)
    series = data.Phased(jax.jit(data.by_phase, static_argnums=1)(series, config.data.step))  # once per run

    def one_epoch(state):
        t0 = time.perf_counter()
        state, metrics = train_epoch(state, series)
        losses = distributed.to_host(metrics["loss"])  # blocks until the epoch is done
        t_train = time.perf_counter() - t0
        total, count = distributed.to_host(evaluate(state.params, series, val_rows, val_valid))
        if bar is not None:
            bar.close()
        return state, mae_metrics(float(np.mean(losses)), float(total) / max(int(count), 1), scale), t_train

    return loop.run_epochs(state, history, one_epoch, epochs=config.train.epochs,
                           steps=config.train.steps_per_epoch, score="val_mae",
                           finite={"train_mae": "training MAE", "val_mae": "validation MAE"},
                           run_dir=run_dir, config=to_dict(config), write_history=plot, log=log,
                           line=lambda row, hist: report.epoch_line(row, config.train.epochs, hist, unit=unit),
                           patience=config.train.patience, hint="Try a lower --lr.")


