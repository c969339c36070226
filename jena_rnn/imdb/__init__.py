"""The lecture's IMDB sentiment classifier (Embedding -> LSTM(32) -> Dense(1)) on the shared runtime.

Everything lives in ``classifier``; its public names are re-exported here (``jena_rnn.imdb.fit`` etc.).
"""
from jena_rnn.imdb.classifier import (HISTORY_FIELDS, MAX_EMBEDDING_ENTRIES, MAX_PADDED_TOKENS, IMDBConfig,
                                      accuracy, apply_classifier, bce_with_logits, config_dict, data_fingerprint,
                                      fit, init_classifier, init_state, make_evaluate, make_train_epoch, prepare,
                                      run, write_history)

__all__ = ["HISTORY_FIELDS", "MAX_EMBEDDING_ENTRIES", "MAX_PADDED_TOKENS", "IMDBConfig", "accuracy",
           "apply_classifier", "bce_with_logits", "config_dict", "data_fingerprint", "fit", "init_classifier",
           "init_state", "make_evaluate", "make_train_epoch", "prepare", "run", "write_history"]
