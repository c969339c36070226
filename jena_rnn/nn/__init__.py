"""The textbook: what a reader checks against the lecture in one sitting.

``cells`` (SimpleRNN, LSTM, GRU in both forms: init and step), ``spec`` (each cell's param keys and carry,
and the one home of their checks), ``rnn`` (``unroll`` as one ``lax.scan``, variational dropout,
``stack``, ``bidirectional``, ``output_width``), ``models`` (dense heads, the lecture's naive, MLP and
recurrent models, parameter counts), ``interop`` (PyTorch and Keras weight layouts) and ``cudnn``
(cuDNN's LSTM layout and kernel, which ``unroll`` runs when its policy and ``cudnn.allowed`` say so). Pure functions
over plain-dict parameters; this wing imports only ``jena_rnn.config``, ``jena_rnn.backend`` (how a scan
compiles on this backend: ``rnn.unroll``'s ``policy``), JAX and numpy.
"""
