"""jena_rnn: pure-function JAX recurrent networks for multivariate time series (the Jena climate study)."""
from jena_rnn.config import Config, DataConfig, LayerConfig, ModelConfig, OptimConfig, TrainConfig

__all__ = ["Config", "DataConfig", "LayerConfig", "ModelConfig", "OptimConfig", "TrainConfig"]
__version__ = "0.1.0"
