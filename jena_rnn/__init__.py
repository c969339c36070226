"""jena_rnn: pure-function JAX recurrent networks for multivariate time series (the Jena climate study).

Re-exports only. The package is four wings and a front door (README "Layout"): ``nn`` (the textbook:
cells, unroll, models, interop), ``data`` (readers, the synthetic default, splits, windows, IMDB text),
``runtime`` (state, the epoch loop, checkpoints, reports, devices), the tasks ``forecast``, ``imdb`` and
``sweep``, and ``cli``. The flat module names of earlier versions (``jena_rnn.cells``, ``jena_rnn.train``,
...) stay importable as ``from jena_rnn import cells`` through ``MOVED``.
"""
import importlib

from jena_rnn.config import (Config, DataConfig, LayerConfig, ModelConfig, OptimConfig, TrainConfig,
                             lecture_config)
from jena_rnn.data import Dataset, load_csv, load_dataset, load_jena, synthetic_jena, windows
from jena_rnn.forecast.train import evaluate_split, fit, mae
from jena_rnn.nn.cells import (LSTMState, gru_step, init_gru, init_lstm, init_simple_rnn, lstm_step,
                               simple_rnn_step, zero_state)
from jena_rnn.nn.models import apply_model, init_model
from jena_rnn.nn.rnn import bidirectional, init_stack, stack, unroll
from jena_rnn.runtime.state import TrainState

# old flat module name -> its home in the house (README "Layout" lists them)
MOVED = {"cells": "jena_rnn.nn.cells", "rnn": "jena_rnn.nn.rnn", "interop": "jena_rnn.nn.interop",
         "models": "jena_rnn.nn.models", "jena_csv": "jena_rnn.data.files", "archive": "jena_rnn.data.archive",
         "synthetic": "jena_rnn.data.synthetic", "text": "jena_rnn.data.text", "safe_npz": "jena_rnn.data.safe_npz",
         "checkpoint": "jena_rnn.runtime.checkpoint", "loop": "jena_rnn.runtime.loop",
         "report": "jena_rnn.runtime.report", "distributed": "jena_rnn.runtime.distributed",
         "train": "jena_rnn.forecast.train", "runs": "jena_rnn.forecast.runs",
         "reproduce": "jena_rnn.forecast.reproduce", "sweep_grid": "jena_rnn.sweep.grid",
         "sweep_board": "jena_rnn.sweep.board"}


def __getattr__(name: str):
    """``from jena_rnn import cells`` (and every other old flat name): the module at its new home."""
    if name in MOVED:
        return importlib.import_module(MOVED[name])
    raise AttributeError(f"module 'jena_rnn' has no attribute {name!r}")


__all__ = [
    "LSTMState", "gru_step", "init_gru", "init_lstm", "init_simple_rnn", "lstm_step", "simple_rnn_step",
    "zero_state", "Config", "DataConfig", "LayerConfig", "ModelConfig", "OptimConfig", "TrainConfig",
    "lecture_config", "Dataset", "load_csv", "load_dataset", "load_jena", "synthetic_jena", "windows",
    "apply_model", "init_model", "bidirectional", "init_stack", "stack", "unroll", "TrainState",
    "evaluate_split", "fit", "mae",
]
__version__ = "0.1.0"
