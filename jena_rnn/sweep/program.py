"""Train many models in one compiled program: ``jax.vmap`` over a leading sweep axis ``[S, ...]``.

Per member ``k`` the vmapped arrays are its whole ``TrainState`` (params and PRNG key from its seed,
exactly as ``train.init_state``; learning rate and RMSprop rho in ``opt_state.hyperparams`` of
``optax.inject_hyperparams``) and its dropout rates ``rates[k] [L, 2]`` (dropout, recurrent dropout per
layer, passed to the model as arrays). The compiled program is ``jit(vmap(train_epoch, in_axes=(0, None,
0)))`` with the very ``train_epoch`` that ``train.fit`` uses; the series is shared, each member draws
its own batches and dropout masks from its own key, so member ``k`` follows the same trajectory as
``fit`` on its configuration alone (tests/test_sweep.py). On a CPU the members are by default vmapped
two at a time inside one ``lax.map`` (``chunk``; measured faster there than one vmap over all, same
numbers: benchmarks/RESULTS.md "Sweeps").

Which members: ``jena_rnn.sweep.grid`` (grid and random search); outputs: ``jena_rnn.sweep.board``.
Static structure (cells, units, layers, GRU form, window, batch, steps per epoch) cannot be vmapped:
members that differ in it are split into groups automatically, one compiled program each
(``group_members``; the grouping is logged and listed in ``sweep.json``). Early stopping masks: after
each epoch a stopped member's state is put back with ``jnp.where(active, new, old)``; nothing is
recompiled, and the stopped member still costs compute until its group ends.

Layout of ``out``::

    sweep.json, stats.json       (``search.run``) members (name, group, config) and the training-split statistics
    groups/gN/                   one stacked checkpoint per epoch (``checkpoint.save`` of a SweepState:
                                 the live states, each member's best state, best MAE, patience counter,
                                 active mask), a history row per epoch holding its members' rows;
                                 ``--resume`` continues from it
    members/<name>/              each member's best state as an ordinary run directory (config.json,
                                 history, loss.png, checkpoints/ with BEST): ``jena-rnn evaluate`` works
    results.md, results.csv      the leaderboard, sorted by best validation MAE in the target's units
    val_curves.png               validation MAE per epoch of every member
"""
from __future__ import annotations

import functools
import time
from pathlib import Path
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jax.sharding import PartitionSpec as P

from jena_rnn.runtime import distributed, loop
from jena_rnn import backend, data
from jena_rnn.forecast import train
from jena_rnn.config import Config, to_dict
from jena_rnn.sweep.board import group_rows, member_results
from jena_rnn.sweep.grid import static_key


class SweepState(NamedTuple):
    """A group's stacked training state, checkpointed whole (every leaf has a leading ``[S]`` axis)."""

    train: train.TrainState  # the live states
    best: train.TrainState  # each member's state at its best validation MAE so far
    best_val: jax.Array  # float32 [S] best validation MAE (normalised; inf before the first epoch)
    stale: jax.Array  # int32 [S] epochs since the last improvement
    active: jax.Array  # bool [S] still training (False: early-stopped, finished or diverged)


# ------------------------------------------------------------------------------------- programs
def init_states(configs: list[Config], in_features: int) -> train.TrainState:
    """Stack ``train.init_state`` of each member (same seeds, hence same params as ``fit``)."""
    states = []
    for cfg in configs:
        st = train.init_state(cfg, jax.random.PRNGKey(cfg.train.seed), in_features)
        states.append(st._replace(opt_state=_set_hypers(st.opt_state, cfg)))
    return jax.tree.map(lambda *xs: jnp.stack(xs), *states)


def _set_hypers(opt_state, cfg: Config):
    """Write lr and rho into the ``inject_hyperparams`` state (also inside a clipping chain)."""
    if isinstance(opt_state, tuple) and not hasattr(opt_state, "hyperparams"):
        return type(opt_state)(_set_hypers(s, cfg) for s in opt_state)
    if hasattr(opt_state, "hyperparams"):
        hp = dict(opt_state.hyperparams)
        for name, value in (("learning_rate", cfg.optim.learning_rate), ("decay", cfg.optim.decay)):
            if name in hp:
                hp[name] = jnp.asarray(value, jnp.asarray(hp[name]).dtype)
        return opt_state._replace(hyperparams=hp)
    return opt_state


def member_rates(configs: list[Config]) -> np.ndarray | None:
    """Return ``rates [S, L, 2]`` (dropout, recurrent dropout per layer), or None if all are 0.

    Where ``backend.sweep_policy().traced_zero_rates`` (XLA:CPU), recurrent members get the array even
    when every rate is 0: each member then multiplies by its own drawn masks of ones (``bernoulli(1.0)``;
    ``x * 1 == x``, so the values are unchanged), which XLA:CPU compiles into a faster vmapped GRU step
    than the mask-free program (the measurement: ``backend.SWEEP_CPU``).
    """
    rates = np.asarray([[(l.dropout, l.recurrent_dropout) for l in c.model.layers] for c in configs],
                       np.float32)
    traced_zeros = backend.sweep_policy().traced_zero_rates and all(c.model.kind == "rnn" for c in configs)
    return rates if rates.any() or traced_zeros else None


@functools.lru_cache(maxsize=16)
def make_sweep_epoch(config: Config, bounds: tuple[int, int], target_col: int, *, mesh=None,
                     chunk: int | None = None) -> Callable:
    """Return jitted ``sweep_epoch(states [S], series, rates [S, L, 2] | None, active [S])``.

    It runs ``vmap(train_epoch, in_axes=(0, None, 0))`` and keeps a member's old state where
    ``active`` is False. Cached on its (hashable) arguments, so a resumed or repeated group in the
    same process reuses the compiled program.
    ``chunk``: vmap ``chunk`` members at a time inside a ``lax.map`` over the chunks (smaller live
    buffers; see benchmarks/RESULTS.md "Sweeps"); None = vmap all members at once.
    With a mesh (``jena_rnn.runtime.distributed``):
    - only a ``"sweep"`` axis of n devices: ``shard_map`` gives each device its ``S / n`` members,
      which it trains on its own (no communication; ``chunk`` applies per device);
    - a ``"data"`` axis: each batch is split over it (``train.make_train_step(batch_sharding=)``)
      and the vmap is told that the member axis lives on ``"sweep"``; ``chunk`` must be None.
    Returns ``(states, {"loss": [S, steps_per_epoch]})``.
    """
    n_sweep, n_data = distributed.axis_size(mesh, "sweep"), distributed.axis_size(mesh, "data")
    epoch = train.make_train_epoch(config, bounds, target_col, jit=False,
                                   batch_sharding=distributed.batch_sharding(mesh))
    spmd = "sweep" if n_sweep > 1 and n_data > 1 else None
    vmapped = jax.vmap(epoch, in_axes=(0, None, 0), spmd_axis_name=spmd)
    if chunk is not None and n_data > 1:
        raise ValueError("chunk: member chunks cannot be combined with a 'data' mesh axis")

    def sweep_epoch(states, series, rates, active):
        series = data.Phased(data.phases_of(series, config.data.step))  # once, not once per chunk
        if chunk is None:
            new, metrics = vmapped(states, series, rates)
        else:
            new, metrics = jax.lax.map(lambda a: epoch(a[0], series, a[1]), (states, rates), batch_size=chunk)
        keep = lambda a, b: jnp.where(active.reshape(active.shape + (1,) * (a.ndim - 1)), a, b)
        return jax.tree.map(keep, new, states), metrics

    if n_sweep > 1 and n_data == 1:
        member = P("sweep")
        sweep_epoch = jax.shard_map(sweep_epoch, mesh=mesh, in_specs=(member, P(), member, member),
                                    out_specs=(member, member), check_vma=False)
    return jax.jit(sweep_epoch)


@functools.lru_cache(maxsize=16)
def make_sweep_evaluate(config: Config, target_col: int, mesh=None) -> Callable:
    """Return jitted ``evaluate(params [S], series, rows, valid) -> (sum |err| [S], count [S])``.

    With a mesh that has only a ``"sweep"`` axis, each device scores its own members (``shard_map``).
    """
    fn = jax.vmap(train.make_evaluate(config, target_col), in_axes=(0, None, None, None))
    if distributed.axis_size(mesh, "sweep") > 1 and distributed.axis_size(mesh, "data") == 1:
        fn = jax.shard_map(fn, mesh=mesh, in_specs=(P("sweep"), P(), P(), P()), out_specs=P("sweep"),
                           check_vma=False)
    return jax.jit(fn)


# ---------------------------------------------------------------------------------------- the loop
def fit_group(configs: list[Config], names: list[str], ds: data.Dataset, group_dir: Path | None = None, *,
              resume: bool = False, mesh=None, chunk: int | str | None = "auto",
              log: Callable[[str], None] | None = print) -> tuple[SweepState, list[dict]]:
    """Train one group of structurally equal members together; return the state and per-member results.

    Each result: ``{"name", "history" (rows as train.fit's), "best_epoch", "best_val_mae",
    "status" ("finished" | "early-stopped" | "diverged")}``. A diverged member (non-finite loss) is
    stopped and reported, the others go on. ``chunk``: members vmapped at a time
    (``make_sweep_epoch``); "auto" = 2 on a CPU without a "data" axis (measured fastest there), else all.
    ``mesh``: a ``jena_rnn.runtime.distributed`` mesh, None (one device) or "auto" (``distributed.auto_mesh``:
    the members split over every local device whose count divides S).

    The epochs are ``loop.run_epochs``'s, on the stacked state; the group's history has one row per epoch
    holding its members' rows (``members``: name -> row, the active ones), which members improved
    (``best``) and which stopped, and how (``stopped``); ``member_results`` reads the results from it.
    """
    base = static_key(configs[0])  # the programs read only static fields: hashable, so cached
    S, scale = len(configs), data.target_scale(ds)
    if mesh == "auto":
        mesh = distributed.auto_mesh(members=S)
        if log is not None and mesh is not None:
            log(f"devices: {S} members split over {distributed.axis_size(mesh, 'sweep')} "
                f"{backend.name()} devices ({S // distributed.axis_size(mesh, 'sweep')} each)")
    distributed.check_divisible(mesh, batch_size=base.data.batch_size, members=S)
    epochs = np.asarray([c.train.epochs for c in configs])
    patience = np.asarray([c.train.patience or 10**9 for c in configs])
    st = init_states(configs, ds.series.shape[1])
    sw = SweepState(st, st, np.full(S, np.inf, np.float32), np.zeros(S, np.int32), np.ones(S, bool))
    sw, history = loop.open_run(group_dir, distributed.to_host(sw), resume=resume, check_config=None)
    history = group_rows(history)
    results = member_results(names, history)
    if [r["name"] for r in results] != names:
        raise ValueError(f"cannot resume {group_dir}: its members {[r['name'] for r in results]} differ from {names}")
    for r, e in zip(results, epochs):  # finished members go on when epochs grew
        if r["status"] == "finished" and len(r["history"]) < e:
            r["status"] = "running"
    sw = sw._replace(active=np.asarray([r["status"] == "running" for r in results]))
    series = distributed.place(ds.series, mesh, stacked=False)
    rates = member_rates(configs)
    rates = None if rates is None else distributed.place(rates, mesh, stacked=True)
    if chunk == "auto":  # members per device
        local = S // distributed.axis_size(mesh, "sweep")
        chunk = backend.sweep_policy().member_chunk if distributed.axis_size(mesh, "data") == 1 and local > 2 else None
    sweep_epoch = make_sweep_epoch(base, ds.train, ds.target_col, mesh=mesh, chunk=chunk)
    evaluate = make_sweep_evaluate(base, ds.target_col, mesh)
    rows, valid = train.split_rows(base, ds.val)
    steps = base.train.steps_per_epoch

    first = len(history) + 1  # the epoch this process runs first: it compiles

    def one_epoch(host: SweepState):  # host copies in and out: the states may span processes
        sw = distributed.place(host, mesh, stacked=True)
        epoch, t0 = len(history) + 1, time.perf_counter()
        live, metrics = sweep_epoch(sw.train, series, rates, sw.active)
        losses = distributed.to_host(metrics["loss"]).mean(axis=1)  # blocks until the epoch is done
        t_train = time.perf_counter() - t0
        total, count = distributed.to_host(evaluate(live.params, series, rows, valid))
        val = total / np.maximum(count, 1)
        active = np.asarray(host.active)
        improved = active & np.isfinite(val) & (val < host.best_val)
        stale = np.where(improved, 0, host.stale + active)
        still, members, stopped = active.copy(), {}, {}
        for k in np.flatnonzero(active):
            members[names[k]] = loop.history_row(epoch, train.mae_metrics(float(losses[k]), float(val[k]), scale),
                                                 train_seconds=t_train, steps=steps,
                                                 epoch_seconds=time.perf_counter() - t0,
                                                 first_in_process=epoch == first)
            if not (np.isfinite(losses[k]) and np.isfinite(val[k])):
                stopped[names[k]] = "diverged"
            elif stale[k] >= patience[k]:
                stopped[names[k]] = "early-stopped"
            elif epoch >= epochs[k]:
                stopped[names[k]] = "finished"
            still[k] = names[k] not in stopped
        live = distributed.to_host(live)  # a collective: every process calls it
        best = jax.tree.map(lambda a, b: np.where(improved.reshape(improved.shape + (1,) * (a.ndim - 1)), a, b),
                            live, host.best)
        host = SweepState(live, best, np.where(improved, val, host.best_val).astype(np.float32),
                          stale.astype(np.int32), still)
        return host, {"members": members, "best": [names[k] for k in np.flatnonzero(improved)],
                      "stopped": stopped}, t_train

    def line(row: dict, history: list[dict]) -> str:
        val = {n: r["val_mae_degC"] for n, r in row["members"].items() if np.isfinite(r["val_mae_degC"])}
        best = min(val, key=val.get, default=None)
        return (f"{group_dir.name if group_dir else 'group'} epoch {row['epoch']:3d}: {len(row['members'])}/{S} "
                f"active, {row['step_ms']:.1f} ms per vmapped step; best this epoch "
                + (f"{best} val MAE {val[best]:.3f} °C" if best else "none (not finite)"))

    sw, history = loop.run_epochs(sw, history, one_epoch, epochs=int(epochs.max()), steps=steps, run_dir=group_dir,
                                  config={"members": [to_dict(c) for c in configs]}, log=log, line=line,
                                  until=lambda host: not np.asarray(host.active).any())
    return distributed.place(sw, mesh, stacked=True), member_results(names, history)  # on the mesh, as before


