"""Which members a sweep trains: grid and random search over config axes, and their grouping.

``AXES`` names what a sweep may vary. The learning rate, RMSprop rho, dropout rates and seeds are vmapped
inside one program; the other axes change the program's static structure, so ``group_members`` splits
members that differ in them into separate groups (one compiled program each).
"""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np

from jena_rnn.config import Config

# axis name -> (where it lives, field, type); lr/rho/rates/seed are vmapped, the rest make groups
AXES = {"lr": ("optim", "learning_rate", float), "rho": ("optim", "decay", float),
        "dropout": ("layer", "dropout", float), "recurrent_dropout": ("layer", "recurrent_dropout", float),
        "units": ("layer", "units", int), "reset_after": ("layer", "reset_after", bool),
        "cell": ("layer", "cell", str)}
LOG_UNIFORM = {"lr"}  # random search draws these log-uniformly from a LO:HI range


def set_axis(config: Config, axis: str, value) -> Config:
    """Return ``config`` with one sweep axis set (layer axes apply to every layer)."""
    where, name, cast = AXES[axis]
    value = cast(value)
    if where == "optim":
        return dataclasses.replace(config, optim=dataclasses.replace(config.optim, **{name: value}))
    layers = tuple(dataclasses.replace(layer, **{name: value}) for layer in config.model.layers)
    return dataclasses.replace(config, model=dataclasses.replace(config.model, layers=layers))


def expand(base: Config, axes: dict[str, list | tuple], *, seeds: int = 1, samples: int | None = None,
           sample_seed: int = 0) -> list[Config]:
    """Expand a grid (every combination of the ``axes`` lists) or a random search into member configs.

    Args:
      axes: name (a key of ``AXES``) -> list of values, or a ``(lo, hi)`` tuple: a range for random
        search (log-uniform for ``LOG_UNIFORM`` axes, else uniform).
      seeds: members per point, with ``train.seed`` = 0 .. seeds-1 (initialisation and data order).
      samples: None = grid; N = N random points (lists are sampled uniformly, ranges continuously).
    """
    unknown = set(axes) - set(AXES)
    if unknown:
        raise ValueError(f"unknown sweep axes {sorted(unknown)}; choose from {sorted(AXES)}")
    points: list[dict] = []
    if samples is None:
        ranges = [a for a, v in axes.items() if isinstance(v, tuple)]
        if ranges:
            raise ValueError(f"ranges LO:HI for {ranges} need random search (--samples N)")
        points = [dict(zip(axes, vals)) for vals in itertools.product(*axes.values())]
    else:
        rng = np.random.default_rng(sample_seed)
        for _ in range(samples):
            point = {}
            for a, v in axes.items():
                if not isinstance(v, tuple):
                    point[a] = v[rng.integers(len(v))]
                elif a in LOG_UNIFORM:
                    point[a] = float(np.exp(rng.uniform(np.log(v[0]), np.log(v[1]))))
                else:
                    point[a] = float(rng.uniform(v[0], v[1]))
            points.append(point)
    configs = []
    for point in points:
        cfg = base
        for a, v in point.items():
            cfg = set_axis(cfg, a, v)
        for s in range(seeds):
            configs.append(dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=s)))
    return configs


def static_key(config: Config) -> Config:
    """``config`` with every vmappable field neutralised: members with equal keys share one program."""
    cfg = config
    for axis, value in (("lr", 1e-3), ("rho", 0.9), ("dropout", 0.0), ("recurrent_dropout", 0.0)):
        cfg = set_axis(cfg, axis, value)
    return dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, seed=0, epochs=1, patience=None))


def group_members(configs: list[Config]) -> list[list[int]]:
    """Split member indices into groups of equal static structure (first-seen order)."""
    groups: dict[Config, list[int]] = {}
    for k, cfg in enumerate(configs):
        groups.setdefault(static_key(cfg), []).append(k)
    return list(groups.values())


def group_label(config: Config) -> str:
    """A short name for a group's structure, e.g. ``gru32-reset_before``."""
    parts = [f"{l.cell}{l.units}" + ("-bi" if l.bidirectional else "")
             + (f"-reset_{'after' if l.reset_after else 'before'}" if l.cell == "gru" else "")
             for l in config.model.layers]
    return "+".join(parts) or config.model.kind
