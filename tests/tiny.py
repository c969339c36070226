"""A tiny configuration of the Jena task for fast training tests (shared by test modules)."""
import dataclasses

from jena_rnn.config import Config, DataConfig, LayerConfig, ModelConfig, TrainConfig

# 4,000 synthetic rows, windows of 20 hourly-ish steps, a 24-row horizon: compiles and trains in seconds.
TINY_DATA = DataConfig(synthetic_rows=4000, lookback=120, step=6, delay=24, batch_size=16,
                       train=(0, 2000), val=(2001, 3000), test=(3001, None))


def tiny_config(cell="gru", units=8, epochs=2, steps=5, seed=0, **layer_kw) -> Config:
    """Return a Config with one small recurrent layer on TINY_DATA."""
    model = ModelConfig(layers=(LayerConfig(cell=cell, units=units, **layer_kw),))
    return Config(data=TINY_DATA, model=model,
                  train=TrainConfig(epochs=epochs, steps_per_epoch=steps, seed=seed))


def with_model(config: Config, model: ModelConfig) -> Config:
    return dataclasses.replace(config, model=model)
