"""Parsed flags become configs: a lecture preset (``config.lecture_config``) plus the flags that were given.

A flag left out (None) keeps the preset's value, so every default stays in the config dataclasses.
Bad combinations raise ``ValueError`` naming the flag; the values themselves are checked by
``cli.values`` and the dataclasses' ``__post_init__``.
"""
from __future__ import annotations

import dataclasses
import json

from jena_rnn.cli import values as v
from jena_rnn.config import Config, DataConfig, fits, lecture_config
from jena_rnn.forecast import reproduce
from jena_rnn.imdb import IMDBConfig


def _given(**fields) -> dict:
    """The fields whose flag was given (not None)."""
    return {k: x for k, x in fields.items() if x is not None}


def data_config(args, base: DataConfig) -> DataConfig:
    """Apply the data flags of ``args`` to ``base``."""
    changes = _given(path=args.data, lookback=args.lookback, step=args.step, delay=args.delay,
                     batch_size=args.batch_size, target=args.target, time_format=args.time_format,
                     eval_mode=args.eval_mode, strict_targets=args.strict_targets,
                     sentinel_policy=args.sentinel_policy, other_sentinel_policy=args.sentinel_elsewhere,
                     outlier_policy=args.outliers, allow_overlap=args.allow_overlap,
                     synthetic_rows=args.synthetic_rows)
    if args.columns is not None:
        changes["columns"] = v.columns(args.columns)
    if args.splits is not None:
        changes.update(args.splits)
    if args.time_column is not None:  # 'none' means None, which _given would drop
        changes["time_column"] = None if args.time_column.lower() == "none" else args.time_column
    if args.synthetic:
        changes["path"] = None
    if changes.get("path", base.path) is None:  # the synthetic default has no text dates to parse
        given = [flag for flag, x in (("--time-format", args.time_format), ("--time-column", args.time_column))
                 if x is not None]
        if given:
            raise ValueError(f"{', '.join(given)}: only for a --data file (the synthetic default has no text "
                             "dates to parse); pass --data FILE or drop the flag")
    return dataclasses.replace(base, **changes)


def train_config(args) -> Config:
    """Build the training ``Config`` from the ``train`` flags (the lecture's preset, then overrides)."""
    cfg = lecture_config(args.model)
    layers = list(cfg.model.layers)
    per_layer = {"units": (args.units, int), "dropout": (args.dropout, v.rate),
                 "recurrent_dropout": (args.recurrent_dropout, v.rate), "activation": (args.activation, str)}
    for name, (text, cast) in per_layer.items():
        if text is None:
            continue
        flag = "--" + name.replace("_", "-")
        values = v.list_of(text, cast, flag)
        if len(values) not in (1, len(layers)):
            raise ValueError(f"{flag}: give 1 or {len(layers)} values, got {len(values)}")
        values = values * len(layers) if len(values) == 1 else values
        layers = [dataclasses.replace(layer, **{name: x}) for layer, x in zip(layers, values)]
    if args.reset_after:
        layers = [dataclasses.replace(layer, reset_after=True) for layer in layers]
    if args.bidirectional:
        layers = [dataclasses.replace(layer, bidirectional=True) for layer in layers]
    model = dataclasses.replace(cfg.model, layers=tuple(layers), **_given(mlp_units=args.mlp_units))
    if args.hoist_input is not None:
        model = dataclasses.replace(model, hoist_input=args.hoist_input == "on")
    data = data_config(args, cfg.data)
    if args.reverse:
        data = dataclasses.replace(data, reverse=True)
    optim = dataclasses.replace(cfg.optim, **_given(name=args.optimizer, learning_rate=args.lr, decay=args.rho,
                                                    eps=args.eps))
    train = dataclasses.replace(cfg.train, **_given(epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                                                    seed=args.seed, patience=args.patience))
    return apply_sets(Config(data=data, model=model, optim=optim, train=train), args.set or [])


SET_SECTIONS = tuple(f.name for f in dataclasses.fields(Config))  # what --set SECTION.FIELD may name


def apply_sets(cfg: Config, sets: list[str]) -> Config:
    """Apply ``--set section.field=value`` overrides, type-checked against the current value."""
    for item in sets:
        key, sep, text = item.partition("=")
        section, dot, name = key.partition(".")
        if not sep or not dot:
            raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE, e.g. --set train.patience=3")
        if section not in SET_SECTIONS:
            raise ValueError(f"--set {item!r}: unknown section {section!r}; the sections are "
                             f"{', '.join(SET_SECTIONS)}")
        sub = getattr(cfg, section)
        fields = [f.name for f in dataclasses.fields(sub)]
        if name not in fields:
            raise ValueError(f"--set {item!r}: {section} has no field {name!r}; its fields are {', '.join(fields)}")
        if key == "model.layers":
            raise ValueError("--set model.layers: use --units, --dropout, --recurrent-dropout, --activation, "
                             "--reset-after and --bidirectional, or build a ModelConfig in Python")
        current = getattr(sub, name)
        try:
            value = json.loads(text) if not isinstance(current, str) else text
        except json.JSONDecodeError:
            value = text
        annotation = next(f.type for f in dataclasses.fields(sub) if f.name == name)
        if not fits(value, str(annotation)):  # the same check config.json gets (config.config_from_saved)
            raise ValueError(f"--set {item!r}: {key} must be {annotation}, got {value!r}")
        if isinstance(value, list):
            value = tuple(value)
        try:
            cfg = dataclasses.replace(cfg, **{section: dataclasses.replace(sub, **{name: value})})
        except (TypeError, AttributeError) as e:  # e.g. a string where a number was expected
            raise ValueError(f"--set {item!r}: {e}") from None
    return cfg


def sweep_base(args, data: DataConfig) -> Config:
    """The sweep's base ``Config``: the lecture preset ``--model`` on ``data``, with the training flags."""
    base = lecture_config(args.model)
    return dataclasses.replace(base, data=dataclasses.replace(data, reverse=base.data.reverse),
                               train=dataclasses.replace(base.train, **_given(
                                   epochs=args.epochs, steps_per_epoch=args.steps_per_epoch,
                                   patience=args.patience)))


def sweep_axes(args) -> dict:
    """The swept axes given on the command line: name -> list (grid) or (lo, hi) range."""
    return {a: v.parse_axis(getattr(args, a), a) for a in v.SWEEP_AXES if getattr(args, a, None) is not None}


def imdb_config(args) -> IMDBConfig:
    """Build the ``IMDBConfig`` of ``jena-rnn imdb`` (argparse's defaults are ``IMDBConfig()``'s)."""
    base = IMDBConfig()
    layer = dataclasses.replace(base.layers[0], cell=args.cell, units=args.units, bidirectional=args.bidirectional,
                                recurrent_dropout=args.recurrent_dropout)
    return dataclasses.replace(base, data=args.data, max_features=args.max_features, maxlen=args.maxlen,
                               epochs=args.epochs, batch_size=args.batch_size, layers=(layer,), seed=args.seed)


def experiment_config(args, config: Config) -> Config:
    """Apply an ``experiments/<name>.py`` script's ``--data`` and ``--quick`` to its ``CONFIG``."""
    if args.data:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, path=args.data))
    return reproduce.quick_config(config) if args.quick else config
