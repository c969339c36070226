"""The lecture's IMDB sentiment classifier (Embedding -> LSTM(32) -> Dense(1)) on the shared runtime.

``model``: the configuration, parameters, loss and metrics; ``corpus``: the padded splits of a run;
``classifier``: the jitted epoch, evaluation, ``fit`` and ``run``. Their public names are re-exported here
(``jena_rnn.imdb.fit`` etc.).
"""
from jena_rnn.imdb.classifier import (HISTORY_FIELDS, data_fingerprint, fit, init_state, make_evaluate,
                                      make_train_epoch, run, write_history)
from jena_rnn.imdb.corpus import MAX_PADDED_TOKENS, prepare
from jena_rnn.imdb.model import (MAX_EMBEDDING_ENTRIES, IMDBConfig, accuracy, apply_classifier, bce_with_logits,
                                 config_dict, correct, init_classifier)

__all__ = ["HISTORY_FIELDS", "MAX_EMBEDDING_ENTRIES", "MAX_PADDED_TOKENS", "IMDBConfig", "accuracy",
           "apply_classifier", "bce_with_logits", "config_dict", "correct", "data_fingerprint", "fit",
           "init_classifier", "init_state", "make_evaluate", "make_train_epoch", "prepare", "run", "write_history"]
