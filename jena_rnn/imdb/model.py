"""The lecture's IMDB model (Deep Learning with Python, section 6.2): its configuration, parameters, loss, metrics.

Model: Embedding(max_features, E) -> recurrent layers (``rnn.stack``, the forecaster's cells) ->
Dense(1), a logit ``z`` per review; ``p = σ(z)`` is Keras's Dense(1, sigmoid). Reviews are padded at
the front (``text.pad_sequences``) and their true lengths are passed to ``rnn.stack`` with
``padding="pre"``, so padded steps never change the state (Keras's lecture model, without
``mask_zero``, does run its LSTM over the padding).

Loss, from logits for stability: ``bce(z, y) = mean(max(z, 0) - z*y + log(1 + exp(-|z|)))``, which
equals ``-[y log σ(z) + (1-y) log(1-σ(z))]``. Accuracy counts ``(z > 0) == y`` (``correct``, the one rule).
"""
from __future__ import annotations

import dataclasses
import json
import numbers
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp

from jena_rnn.config import LayerConfig, OptimConfig
from jena_rnn.data import text
from jena_rnn.nn import rnn
from jena_rnn.nn.models import dense, init_dense

Array = jax.Array
# A [max_features, E] float32 embedding of 2**30 entries is 4 GiB, three times that with its gradient
# and RMSprop state; Keras's whole IMDB vocabulary is 88,588 indices. Beyond it a run cannot fit memory.
MAX_EMBEDDING_ENTRIES = 1 << 30


@dataclass(frozen=True, kw_only=True)
class IMDBConfig:
    """One IMDB run. Defaults are the lecture's (section 6.2)."""

    data: str | None = None  # imdb.npz, aclImdb folder, or a folder holding one; None = synthetic corpus
    max_features: int = 10_000  # vocabulary size including 0 pad, 1 start, 2 OOV (Keras num_words)
    maxlen: int = 500  # tokens kept per review (the last ones; Keras pad_sequences 'pre')
    embed_dim: int = 32  # Embedding output width E
    layers: tuple[LayerConfig, ...] = (LayerConfig(cell="lstm", units=32),)  # recurrent layers
    optim: OptimConfig = field(default_factory=OptimConfig)  # RMSprop, Keras defaults
    epochs: int = 10  # the lecture's
    batch_size: int = 128  # the lecture's
    validation_split: float = 0.2  # last fraction of the training reviews held out (Keras's)
    seed: int = 0  # init, epoch shuffles, dropout masks
    synthetic_reviews: int = 25_000  # reviews per split of the synthetic corpus (IMDB: 25,000)
    synthetic_seed: int = 0  # seed of the synthetic corpus

    def __post_init__(self) -> None:
        for name in ("max_features", "maxlen", "embed_dim", "epochs", "batch_size", "synthetic_reviews"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"IMDBConfig.{name} must be a positive integer, got {value!r}")
        if self.max_features <= text.INDEX_FROM + 1:  # 0 pad, 1 start, 2 OOV; rank 1 is index 4
            raise ValueError(f"IMDBConfig.max_features (--max-features) must be at least {text.INDEX_FROM + 2} "
                             f"to keep any word, got {self.max_features}")
        if self.max_features * self.embed_dim > MAX_EMBEDDING_ENTRIES:
            raise ValueError(f"IMDBConfig.max_features (--max-features) {self.max_features} x embed_dim "
                             f"{self.embed_dim} exceeds {MAX_EMBEDDING_ENTRIES} embedding entries")
        if not isinstance(self.validation_split, numbers.Real) or not 0.0 < self.validation_split < 1.0:
            raise ValueError(f"IMDBConfig.validation_split must be in (0, 1), got {self.validation_split!r}")
        if not self.layers:
            raise ValueError("IMDBConfig.layers is empty")


def config_dict(cfg: IMDBConfig) -> dict:
    """Return ``cfg`` as JSON-able data (stored with every checkpoint)."""
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def init_classifier(key: Array, cfg: IMDBConfig) -> dict:
    """Return ``{"embedding": [V, E] U(-0.05, 0.05) (Keras), "layers": [...], "head": {"w": [H, 1], "b": [1]}}``."""
    k_emb, k_rnn, k_head = jax.random.split(key, 3)
    last = cfg.layers[-1]
    out = rnn.output_width(last)
    return {"embedding": jax.random.uniform(k_emb, (cfg.max_features, cfg.embed_dim), jnp.float32, -0.05, 0.05),
            "layers": rnn.init_stack(k_rnn, cfg.layers, cfg.embed_dim),
            "head": init_dense(k_head, out, 1)}


def apply_classifier(cfg: IMDBConfig, params: dict, tokens: Array, lengths: Array, *,
                     key: Array | None = None, train: bool = False, dropout_rows: tuple | None = None) -> Array:
    """Return the logits [B] of reviews ``tokens`` [B, T] (front-padded) with true ``lengths`` [B].

    ``dropout_rows``: ``(start, total)`` when the reviews are a slice of a larger batch (``rnn.stack``).
    """
    xs = params["embedding"][tokens]  # [B, T, E]
    h = rnn.stack(cfg.layers, params["layers"], xs, key=key, train=train, lengths=lengths, padding="pre",
                  dropout_rows=dropout_rows)
    return dense(params["head"], h)[:, 0]


def bce_with_logits(logits: Array, y: Array, weights: Array | None = None) -> Array:
    """Binary cross-entropy of labels ``y`` [B] in {0, 1} given logits [B]; optional weights [B].

    ``max(z, 0) - z*y + log1p(exp(-|z|))`` never exponentiates a large positive number.
    """
    if logits.shape != y.shape:
        raise ValueError(f"bce_with_logits: logits have shape {tuple(logits.shape)} but y {tuple(y.shape)}")
    per = jnp.maximum(logits, 0.0) - logits * y + jnp.log1p(jnp.exp(-jnp.abs(logits)))
    if weights is None:
        return jnp.mean(per)
    return jnp.sum(per * weights) / jnp.maximum(jnp.sum(weights), 1.0)


def correct(logits: Array, y: Array, weights: Array | None = None) -> Array:
    """The (weighted) count of right answers ``sum(w * [(logits > 0) == (y > 0.5)])``; logits, y, weights [B]."""
    hits = ((logits > 0) == (y > 0.5)).astype(jnp.float32)
    return jnp.sum(hits if weights is None else hits * weights)


def accuracy(logits: Array, y: Array) -> Array:
    """Fraction of ``(logits > 0) == (y > 0.5)``, logits and y [B] (``correct`` / B)."""
    return correct(logits, y) / y.shape[0]
