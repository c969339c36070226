"""Shared fixtures. Matmuls run at full float32 precision so tolerances mean what they say."""
import os

import jax
import numpy as np
import pytest

# In-process CLI calls would otherwise split the CPU into one device per core (distributed.use_cpu_cores)
# when they happen to start JAX; tests that need several devices set them in a subprocess.
os.environ.setdefault("JENA_RNN_CPU_DEVICES", "1")

jax.config.update("jax_default_matmul_precision", "highest")

# Distinct small sizes so that a transposed weight fails loudly.
B, T, F, H = 2, 7, 3, 5
CELLS = [("simple_rnn", None), ("lstm", None), ("gru", True), ("gru", False)]
CELL_IDS = ["simple", "lstm", "gru-after", "gru-before"]


@pytest.fixture
def key():
    return jax.random.key(0)


@pytest.fixture
def dims():
    return {"B": B, "T": T, "F": F, "H": H}


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def random_params(cell, seed, in_features, units, scale=0.5, reset_after=False):
    """Params of ``cell`` with every leaf (biases included) drawn N(0, scale²), float32.

    ``reset_after``: the GRU's form (``b_h`` only when True); ``None`` (a non-GRU cell's) means False.
    """
    from jena_rnn.nn.cells import init_cell

    params = init_cell(cell, jax.random.key(seed), in_features, units, reset_after=bool(reset_after))
    r = np.random.default_rng(seed)
    return {k: (scale * r.standard_normal(v.shape)).astype(np.float32) for k, v in params.items()}


def step_kwargs(cell, reset_after):
    return {} if reset_after is None else {"reset_after": reset_after}
