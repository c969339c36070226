"""Frozen configuration for data, model, optimiser and training.

Every default is the lecture's protocol (Deep Learning with Python, 1st ed., section 6.3) unless its
comment says otherwise. Configs are hashable, hold no arrays, validate themselves in
``__post_init__`` and are varied with ``dataclasses.replace``; ``dataclasses.asdict(config)`` is stored
with every run.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from typing import Any

CELLS = ("simple_rnn", "lstm", "gru")
ACTIVATIONS = ("tanh", "relu", "sigmoid", "linear")
MERGE_MODES = ("concat", "sum", "ave", "mul")
MODEL_KINDS = ("naive", "mlp", "rnn")
OPTIMIZERS = ("rmsprop", "adam", "sgd")
SENTINEL_POLICIES = ("zero", "interpolate", "keep", "error")  # -9999 in the wind columns; see data.load_csv
OTHER_SENTINEL_POLICIES = ("error", "interpolate", "keep")  # -9999 anywhere else (never zeroed)
SENTINEL_COLUMNS = ("wv (m/s)", "max. wv (m/s)")  # where the real Jena file has -9999 error values
OUTLIER_POLICIES = ("error", "keep")  # physically impossible or absurd values; see data.checks.check_values
EVAL_MODES = ("full", "lecture")  # see data.eval_rows
SEED_RANGE = (-(2 ** 31), 2 ** 32)  # [lo, hi) of the seeds jax.random.PRNGKey and numpy's generators take

# A split bound is a row index (int) or a fraction of the file's rows (float in [0, 1]); an upper bound
# of None means "as far as the file allows" (the lecture's max_index=None rule: len - delay - 1).
Bound = int | float | None


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


@dataclass(frozen=True, kw_only=True)
class DataConfig:
    """Where the series comes from, how it is split and how windows are cut from it."""

    path: str | None = None  # CSV/.zip/.gz file; None = the embedded synthetic Jena default
    time_column: str | None = "Date Time"  # name of the timestamp column; None = no time column
    time_format: str | None = "%d.%m.%Y %H:%M:%S"  # strptime format of that column; None = infer
    target: str = "T (degC)"  # column to forecast
    columns: tuple[str, ...] | None = None  # feature columns to use; None = every numeric column
    sentinel_policy: str = "zero"  # -9999 error values in the wind columns: zero | interpolate | keep | error
    other_sentinel_policy: str = "error"  # -9999 in any other column: error | interpolate | keep
    outlier_policy: str = "error"  # impossible or absurd values (e.g. 1e30): error | keep
    lookback: int = 1440  # rows of history per sample (10 days at 10 minutes)
    step: int = 6  # keep one row in `step` inside the window (hourly)
    delay: int = 144  # forecast horizon in rows past the window's end row (24 h)
    batch_size: int = 128  # samples per batch
    train: tuple[Bound, Bound] = (0, 200_000)  # [min_index, max_index) of training end rows' range
    val: tuple[Bound, Bound] = (200_001, 300_000)  # validation bounds, as the lecture's generator
    test: tuple[Bound, Bound] = (300_001, None)  # test bounds; None = len - delay - 1
    strict_targets: bool = False  # True: targets never reach past a split's max_index (lecture: they do)
    allow_overlap: bool = False  # accept splits that overlap or are out of order (train, val, test)
    eval_mode: str = "full"  # "full": every end row of a split once; "lecture": val_steps batches with wrap
    reverse: bool = False  # feed each window to the model in reversed time order
    synthetic_rows: int = 420_551  # rows of the synthetic default (same as the real file)
    synthetic_seed: int = 0  # seed of the synthetic default

    def __post_init__(self) -> None:
        for name in ("lookback", "step", "delay", "batch_size", "synthetic_rows"):
            _check(int(getattr(self, name)) > 0, f"DataConfig.{name} must be positive, got {getattr(self, name)!r}")
        _check(self.lookback % self.step == 0,
               f"DataConfig.lookback ({self.lookback}) must be a multiple of step ({self.step})")
        _check(self.sentinel_policy in SENTINEL_POLICIES,
               f"DataConfig.sentinel_policy must be zero|interpolate|keep|error, got {self.sentinel_policy!r}")
        _check(self.other_sentinel_policy in OTHER_SENTINEL_POLICIES,
               f"DataConfig.other_sentinel_policy must be error|interpolate|keep, got {self.other_sentinel_policy!r}")
        _check(self.outlier_policy in OUTLIER_POLICIES,
               f"DataConfig.outlier_policy must be error|keep, got {self.outlier_policy!r}")
        _check(self.eval_mode in EVAL_MODES,
               f"DataConfig.eval_mode must be 'full' or 'lecture', got {self.eval_mode!r}")
        for name in ("train", "val", "test"):
            bounds = getattr(self, name)
            _check(isinstance(bounds, tuple) and len(bounds) == 2,
                   f"DataConfig.{name} must be a (lo, hi) pair, got {bounds!r}")

    @property
    def timesteps(self) -> int:
        """Steps per window fed to the model, ``lookback // step`` (240 in the lecture)."""
        return self.lookback // self.step


@dataclass(frozen=True, kw_only=True)
class LayerConfig:
    """One recurrent layer (Keras-style arguments)."""

    cell: str = "gru"  # simple_rnn | lstm | gru
    units: int = 32  # hidden size H
    activation: str = "tanh"  # candidate/output activation (the lecture's stacked GRU uses relu on top)
    dropout: float = 0.0  # Gal & Ghahramani input dropout rate, one mask per sequence
    recurrent_dropout: float = 0.0  # dropout rate on h_{t-1}, one mask per sequence
    reset_after: bool = False  # GRU form: False = lecture/Cho et al.; True = Keras default / PyTorch
    bidirectional: bool = False  # run a second layer on the reversed sequence and merge
    merge_mode: str = "concat"  # concat | sum | ave | mul (Keras's Bidirectional)

    def __post_init__(self) -> None:
        _check(self.cell in CELLS, f"LayerConfig.cell must be one of {CELLS}, got {self.cell!r}")
        _check(int(self.units) > 0, f"LayerConfig.units must be positive, got {self.units!r}")
        _check(self.activation in ACTIVATIONS,
               f"LayerConfig.activation must be one of {ACTIVATIONS}, got {self.activation!r}")
        for name in ("dropout", "recurrent_dropout"):
            rate = getattr(self, name)
            _check(0.0 <= rate < 1.0, f"LayerConfig.{name} must be in [0, 1), got {rate!r}")
        _check(self.merge_mode in MERGE_MODES,
               f"LayerConfig.merge_mode must be one of {MERGE_MODES}, got {self.merge_mode!r}")


@dataclass(frozen=True, kw_only=True)
class ModelConfig:
    """A lecture model: the naive baseline, the MLP, or recurrent layers followed by Dense(1)."""

    kind: str = "rnn"  # naive | mlp | rnn
    layers: tuple[LayerConfig, ...] = (LayerConfig(),)  # stacked bottom to top (all but last return sequences)
    mlp_units: int = 32  # MLP hidden width (Flatten -> Dense(32, relu) -> Dense(1))
    hoist_input: bool | None = None  # input projection before the scan (True) or in it; None = per backend
    remat: bool | None = None  # wrap the scan step in jax.checkpoint; None = per backend

    def __post_init__(self) -> None:
        _check(self.kind in MODEL_KINDS, f"ModelConfig.kind must be one of {MODEL_KINDS}, got {self.kind!r}")
        _check(isinstance(self.layers, tuple), "ModelConfig.layers must be a tuple of LayerConfig")
        _check(self.kind != "rnn" or len(self.layers) > 0, "ModelConfig.layers is empty for kind='rnn'")
        _check(int(self.mlp_units) > 0, f"ModelConfig.mlp_units must be positive, got {self.mlp_units!r}")


@dataclass(frozen=True, kw_only=True)
class OptimConfig:
    """Optimiser. Defaults are Keras's RMSprop: lr 1e-3, rho 0.9, epsilon 1e-7 inside the square root.

    optax.rmsprop computes ``g / sqrt(nu + eps)`` when ``eps_in_sqrt=True`` (Keras 3 does the same);
    PyTorch's RMSprop puts epsilon outside, ``g / (sqrt(nu) + eps)``.
    """

    name: str = "rmsprop"  # rmsprop | adam | sgd
    learning_rate: float = 1e-3  # the lecture's RMSprop learning rate
    decay: float = 0.9  # RMSprop rho (Keras default)
    eps: float = 1e-7  # Keras's epsilon
    eps_in_sqrt: bool = True  # Keras places epsilon inside the square root
    initial_scale: float = 0.0  # initial value of the squared-gradient average (Keras: 0)
    momentum: float = 0.0  # RMSprop momentum (Keras default 0)
    clip_norm: float | None = None  # global gradient-norm clipping; None = off (Keras default)

    def __post_init__(self) -> None:
        _check(self.name in OPTIMIZERS, f"OptimConfig.name must be one of {OPTIMIZERS}, got {self.name!r}")
        _check(math.isfinite(self.learning_rate) and self.learning_rate > 0,
               f"OptimConfig.learning_rate must be positive and finite, got {self.learning_rate!r}")
        _check(math.isfinite(self.eps), f"OptimConfig.eps must be finite, got {self.eps!r}")
        _check(0.0 <= self.decay < 1.0, f"OptimConfig.decay must be in [0, 1), got {self.decay!r}")
        _check(self.eps >= 0, f"OptimConfig.eps must be >= 0, got {self.eps!r}")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """The training loop."""

    epochs: int = 20  # the lecture's epochs for most models (40 with dropout)
    steps_per_epoch: int = 500  # batches per epoch (the lecture's steps_per_epoch)
    seed: int = 0  # seeds initialisation, batch draws and dropout masks
    patience: int | None = None  # stop after this many epochs without a better validation MAE; None = off

    def __post_init__(self) -> None:
        _check(int(self.epochs) > 0, f"TrainConfig.epochs must be positive, got {self.epochs!r}")
        _check(int(self.steps_per_epoch) > 0,
               f"TrainConfig.steps_per_epoch must be positive, got {self.steps_per_epoch!r}")
        _check(isinstance(self.seed, numbers.Integral) and not isinstance(self.seed, bool)
               and SEED_RANGE[0] <= self.seed < SEED_RANGE[1],
               f"TrainConfig.seed must be an integer in [-2**31, 2**32), got {self.seed!r}")
        _check(self.patience is None or self.patience > 0,
               f"TrainConfig.patience must be positive or None, got {self.patience!r}")


@dataclass(frozen=True, kw_only=True)
class Config:
    """Everything a run needs; stored as ``config.json`` beside its checkpoints."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


def to_dict(config: Config) -> dict:
    """Return ``config`` as plain JSON-able data (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(d: dict) -> Config:
    """Rebuild a ``Config`` written by ``to_dict`` (lists become tuples again)."""

    def tup(v):
        return tuple(tup(x) for x in v) if isinstance(v, list) else v

    data = DataConfig(**{k: tup(v) for k, v in d.get("data", {}).items()})
    m = dict(d.get("model", {}))
    layers = tuple(LayerConfig(**layer) for layer in m.pop("layers", [{}]))
    model = ModelConfig(layers=layers, **m)
    return Config(data=data, model=model, optim=OptimConfig(**d.get("optim", {})),
                  train=TrainConfig(**d.get("train", {})))


# Fields added after config.json was first written: an older file may lack them (they take their defaults);
# every other field must be there. Add each new field here.
ADDED_SINCE = frozenset({"model.remat", "data.other_sentinel_policy", "data.outlier_policy", "data.allow_overlap"})
_SECTIONS = {"data": DataConfig, "model": ModelConfig, "optim": OptimConfig, "train": TrainConfig}
_SCALARS = {"int": (int,), "float": (int, float), "str": (str,), "bool": (bool,), "None": (type(None),),
            "Bound": (int, float, type(None))}


def fits(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a config field's annotation, e.g. ``int | None``, ``tuple[str, ...]``."""
    for part in (p.strip() for p in annotation.split("|")):
        if part.startswith("tuple[") and isinstance(value, list):
            inner = [t.strip() for t in part[len("tuple["):-1].split(",")]
            if inner[-1] == "...":
                if all(fits(v, inner[0]) for v in value):
                    return True
            elif len(value) == len(inner) and all(fits(v, t) for v, t in zip(value, inner)):
                return True
        elif part in _SCALARS:
            if isinstance(value, _SCALARS[part]) and not (isinstance(value, bool) and part != "bool"):
                return True
        elif not part.startswith("tuple["):
            return True  # a nested config (checked on its own)
    return False


def _check_section(d: Any, cls, prefix: str, where) -> None:
    if not isinstance(d, dict):
        raise ValueError(f"{where}: field {prefix!r} must be an object, got {d!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    for name in d:
        if name not in fields:
            raise ValueError(f"{where}: unknown field {prefix}.{name} (fields of {prefix}: {sorted(fields)})")
    for name, f in fields.items():
        if name not in d:
            if f"{prefix}.{name}" not in ADDED_SINCE:
                raise ValueError(f"{where}: field {prefix}.{name} is missing")
        elif not fits(d[name], str(f.type)):
            raise ValueError(f"{where}: field {prefix}.{name} must be {f.type}, got {d[name]!r}")


def config_from_saved(saved: Any, where) -> Config:
    """Check a parsed ``config.json`` field by field and rebuild its ``Config``.

    Raises:
      ValueError: an unknown or missing field, or a value of the wrong type (names ``where`` and the field).
    """
    if not isinstance(saved, dict):
        raise ValueError(f"{where}: expected a JSON object with data, model, optim, train; got {type(saved).__name__}")
    for name in saved:
        if name not in _SECTIONS:
            raise ValueError(f"{where}: unknown field {name!r} (expected {sorted(_SECTIONS)})")
    for name, cls in _SECTIONS.items():
        if name not in saved:
            raise ValueError(f"{where}: field {name!r} is missing")
        _check_section(saved[name], cls, name, where)
    layers = saved["model"].get("layers")
    if not isinstance(layers, list):
        raise ValueError(f"{where}: field model.layers must be a list, got {layers!r}")
    for i, layer in enumerate(layers):
        _check_section(layer, LayerConfig, f"model.layers[{i}]", where)
    try:
        return from_dict(saved)
    except (TypeError, ValueError) as e:  # a value __post_init__ refuses (its message names the field)
        raise ValueError(f"{where}: {e}") from None


def _gru(**kw) -> tuple[LayerConfig, ...]:
    return (LayerConfig(cell="gru", units=32, **kw),)


# The lecture's experiments (section 6.3; Keras 2.0.8, whose GRU is the reset-before form).
# name -> (model, epochs, reverse windows)
LECTURE_MODELS: dict[str, tuple[ModelConfig, int, bool]] = {
    "naive": (ModelConfig(kind="naive", layers=()), 1, False),
    "mlp": (ModelConfig(kind="mlp", layers=()), 20, False),
    "simple_rnn": (ModelConfig(layers=(LayerConfig(cell="simple_rnn", units=32),)), 20, False),
    "gru": (ModelConfig(layers=_gru()), 20, False),
    "lstm": (ModelConfig(layers=(LayerConfig(cell="lstm", units=32),)), 20, False),
    "gru_dropout": (ModelConfig(layers=_gru(dropout=0.2, recurrent_dropout=0.2)), 40, False),
    "stacked_gru": (ModelConfig(layers=(
        LayerConfig(cell="gru", units=32, dropout=0.1, recurrent_dropout=0.5),
        LayerConfig(cell="gru", units=64, activation="relu", dropout=0.1, recurrent_dropout=0.5))), 40, False),
    "reversed_gru": (ModelConfig(layers=_gru()), 20, True),
    "bidirectional_gru": (ModelConfig(layers=_gru(bidirectional=True)), 40, False),
}


def lecture_config(name: str, base: Config | None = None) -> Config:
    """Return ``base`` (default ``Config()``) set up as the lecture's experiment ``name``.

    Names: the keys of ``LECTURE_MODELS``. Epochs and reversed windows follow the lecture.
    """
    if name not in LECTURE_MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of {sorted(LECTURE_MODELS)}")
    base = base or Config()
    model, epochs, reverse = LECTURE_MODELS[name]
    return dataclasses.replace(
        base, model=model,
        data=dataclasses.replace(base.data, reverse=reverse),
        train=dataclasses.replace(base.train, epochs=epochs))
