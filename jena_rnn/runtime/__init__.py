"""What every task shares to run; nothing here knows Jena or IMDB.

``state`` (``TrainState``, optimisers), ``loop`` (the epoch loop, resume or refuse, the run-directory lock),
``checkpoint`` (crash-safe checkpoints, fallback to the newest readable one), ``report`` (the one atomic
writer, history tables, plots, progress) and ``distributed`` (CPU cores as devices, meshes, data
parallelism, several processes).
"""
