"""jena_rnn: pure-function JAX recurrent networks for multivariate time series (the Jena climate study).

Re-exports only; every name lives in exactly one module:
cells (SimpleRNN/LSTM/GRU steps), rnn (scan-unrolled layers), models, data, train, checkpoint, sweep.
"""
from jena_rnn.cells import (LSTMState, gru_step, init_gru, init_lstm, init_simple_rnn, lstm_step,
                            simple_rnn_step, zero_state)
from jena_rnn.config import (Config, DataConfig, LayerConfig, ModelConfig, OptimConfig, TrainConfig,
                             lecture_config)
from jena_rnn.data import Dataset, load_csv, load_dataset, load_jena, synthetic_jena, windows
from jena_rnn.models import apply_model, init_model
from jena_rnn.rnn import bidirectional, init_stack, stack, unroll
from jena_rnn.train import TrainState, evaluate_split, fit, mae

__all__ = [
    "LSTMState", "gru_step", "init_gru", "init_lstm", "init_simple_rnn", "lstm_step", "simple_rnn_step",
    "zero_state", "Config", "DataConfig", "LayerConfig", "ModelConfig", "OptimConfig", "TrainConfig",
    "lecture_config", "Dataset", "load_csv", "load_dataset", "load_jena", "synthetic_jena", "windows",
    "apply_model", "init_model", "bidirectional", "init_stack", "stack", "unroll", "TrainState",
    "evaluate_split", "fit", "mae",
]
__version__ = "0.1.0"
