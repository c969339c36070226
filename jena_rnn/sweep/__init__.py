"""Hyperparameter sweeps: many models in one vmapped program.

``program`` (the vmapped epoch, ``fit_group``), ``search`` (``run``, ``run_search``: the run tree),
``grid`` (members: grid, random search, groups) and ``board`` (leaderboard, plots, member export). The
public names of ``program``, ``search`` and ``grid`` are re-exported here (``jena_rnn.sweep.run`` etc.).
"""
from jena_rnn.sweep.grid import AXES, expand, group_label, group_members, static_key
from jena_rnn.sweep.program import (SweepState, fit_group, init_states, make_sweep_epoch, make_sweep_evaluate,
                                    member_rates)
from jena_rnn.sweep.search import run, run_search

__all__ = ["AXES", "expand", "group_label", "group_members", "static_key", "SweepState", "fit_group", "init_states",
           "make_sweep_epoch", "make_sweep_evaluate", "member_rates", "run", "run_search"]
