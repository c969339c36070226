"""What every task shares to run; nothing here knows Jena or IMDB.

``state`` (``TrainState``, optimisers), ``loop`` (the epoch loop, resume or refuse), ``rundir`` (the run
directory's single owner: layout, folder check and lock, its files, the resume check; ``lock``: the flock),
``checkpoint`` (crash-safe checkpoints, fallback to the newest readable one), ``report`` (the one atomic
writer, history tables, plots, progress) and ``distributed`` (CPU cores as devices, meshes, data
parallelism, several processes).
"""
