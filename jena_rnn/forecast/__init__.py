"""The Jena task: the jitted training epoch and ``fit`` (``train``), run directories (``runs``: train,
evaluate, baseline, predict) and every lecture experiment (``reproduce``)."""
