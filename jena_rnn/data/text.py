"""IMDB-style text data: the two public formats, a tokeniser, Keras's padding, a synthetic corpus.

The one import for the IMDB task (``from jena_rnn.data import text``), re-exporting ``tokens`` (Keras's
index convention, the tokeniser, vocabulary and padding), ``imdb_files`` (the ``imdb.npz`` and
``aclImdb`` readers) and ``imdb_synthetic`` (the synthetic review corpus).
"""
from jena_rnn.data.imdb_files import (KERAS_SEED, MAX_REVIEW_BYTES, MAX_WORD_INDEX_BYTES, load_acl_imdb,
                                      load_corpus, load_keras_npz, load_word_index, read_acl_split, read_review)
from jena_rnn.data.imdb_synthetic import NEGATIVE, NEGATORS, POSITIVE, synthetic_review, write_synthetic_imdb
from jena_rnn.data.tokens import INDEX_FROM, OOV, PAD, START, build_vocab, decode, encode, pad_sequences, tokenize

__all__ = ["PAD", "START", "OOV", "INDEX_FROM", "tokenize", "build_vocab", "encode", "decode", "pad_sequences",
           "KERAS_SEED", "MAX_REVIEW_BYTES", "MAX_WORD_INDEX_BYTES", "read_review", "read_acl_split",
           "load_acl_imdb", "load_keras_npz", "load_word_index", "load_corpus", "POSITIVE", "NEGATIVE",
           "NEGATORS", "synthetic_review", "write_synthetic_imdb"]
