"""The textbook: what a reader checks against the lecture in one sitting.

``cells`` (SimpleRNN, LSTM, GRU in both forms: init and step), ``rnn`` (``unroll`` as one ``lax.scan``,
variational dropout, ``stack``, ``bidirectional``), ``models`` (dense heads, the lecture's naive, MLP and
recurrent models, parameter counts) and ``interop`` (PyTorch and Keras weight layouts). Pure functions
over plain-dict parameters; this wing imports only ``jena_rnn.config``, JAX and numpy.
"""
