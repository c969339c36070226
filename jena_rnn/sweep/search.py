"""A sweep's run tree: every group trained (``program.fit_group``), members exported, the leaderboard.

``run`` trains members already built (``grid.expand``) on a loaded ``Dataset``; ``run_search`` loads
their data once first. The layout of ``out`` is documented in ``jena_rnn.sweep.program``.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Callable

import jax
import numpy as np

from jena_rnn import data
from jena_rnn.config import Config, config_from_saved, from_dict, to_dict
from jena_rnn.forecast import record
from jena_rnn.runtime import distributed, report, rundir
from jena_rnn.sweep.board import LEADERBOARD, export_member, member_values, write_leaderboard
from jena_rnn.sweep.grid import group_label, group_members
from jena_rnn.sweep.program import fit_group


def run(configs: list[Config], ds: data.Dataset, out: str | Path | None = None, *, names: list[str] | None = None,
        resume: bool = False, mesh=None, chunk: int | str | None = "auto",
        log: Callable[[str], None] | None = print) -> list[dict]:
    """Train every member (grouped automatically); write the run tree and leaderboard into ``out``.

    Returns:
      The leaderboard: one dict per member, sorted by best validation MAE (°C for the Jena target),
      with its group, varied values, best epoch, epochs run and status.
    """
    names = names or [f"m{k:03d}" for k in range(len(configs))]
    groups = group_members(configs)
    out = None if out is None else Path(out)
    plan = [{"group": f"g{g}", "structure": group_label(configs[idx[0]]), "members": [names[k] for k in idx]}
            for g, idx in enumerate(groups)]
    if log is not None:
        log(f"sweep: {len(configs)} members in {len(groups)} group(s): "
            + "; ".join(f"{p['group']} {p['structure']} x{len(p['members'])}" for p in plan))
    with rundir.lock(out, "sweep"):  # one writer per sweep directory; released on return and on errors
        return _run(configs, ds, out, names=names, groups=groups, plan=plan, resume=resume, mesh=mesh,
                    chunk=chunk, log=log)


def _run(configs, ds, out, *, names, groups, plan, resume, mesh, chunk, log) -> list[dict]:
    resumed = False
    if out is not None:  # every process checks (so all stop alike); process 0 writes
        manifest = {"groups": plan, "members": [{"name": n, "config": to_dict(c)} for n, c in zip(names, configs)]}
        if (out / "sweep.json").is_file():
            saved = report.read_json(out / "sweep.json", what="sweep manifest")
            if not resume:
                raise FileExistsError(f"{out} already holds a sweep: pass resume=True (--resume) or another --out")
            if not (isinstance(saved, dict) and isinstance(saved.get("members"), list)
                    and all(isinstance(m, dict) and isinstance(m.get("config"), dict) for m in saved["members"])):
                raise ValueError(f"{out / 'sweep.json'}: expected a sweep manifest (groups, members with configs)")
            for m in saved["members"]:
                config_from_saved(m["config"], f"{out / 'sweep.json'} (member {m.get('name')})")
            saved = _without_epochs(saved["members"], manifest["members"])
            record.check_resume(out, {m["name"]: m["config"] for m in manifest["members"]},
                               {m.get("name"): m["config"] for m in saved}, ds)
            resumed = True
        elif (out / "groups").is_dir():  # trained groups without their manifest: nothing to check them against
            raise ValueError(f"{out}: holds trained groups but no sweep.json, so the members and data they were "
                             "trained with cannot be checked; restore sweep.json or use another --out")
        distributed.barrier("sweep: sweep.json checked")  # before process 0 writes it
    if out is not None and distributed.is_main():
        report.write_json(out / "sweep.json", manifest)
        if not resumed:  # a resumed sweep keeps the statistics (and fingerprint) it began with
            rundir.write_stats(out, record.stats_json(ds))
    scale = data.target_scale(ds)
    board = []
    for g, idx in enumerate(groups):
        group_cfgs, group_names = [configs[k] for k in idx], [names[k] for k in idx]
        gdir = None if out is None else out / "groups" / f"g{g}"
        sw, results = fit_group(group_cfgs, group_names, ds, gdir, resume=resume, mesh=mesh, chunk=chunk,
                                log=log)
        best = distributed.to_host(sw.best)
        for j, (cfg, r) in enumerate(zip(group_cfgs, results)):
            if out is not None and distributed.is_main() and r["best_epoch"] is not None:
                export_member(out / "members" / r["name"], cfg, jax.tree.map(lambda x: x[j], best), r, ds)
            board.append({"rank": 0, "member": r["name"], "group": f"g{g}", "structure": group_label(cfg),
                          **member_values(cfg), "best_epoch": r["best_epoch"],
                          "best_val_mae": r["best_val_mae"], "best_val_mae_degC": r["best_val_mae"] * scale,
                          "epochs_run": len(r["history"]), "status": r["status"], "history": r["history"]})
    board.sort(key=lambda b: (not np.isfinite(b["best_val_mae"]), b["best_val_mae"]))
    for i, b in enumerate(board, 1):
        b["rank"] = i
    if out is not None and distributed.is_main():
        write_leaderboard(out, board)
    return board


def _without_epochs(saved: list[dict], now: list[dict]) -> list[dict]:
    """``saved`` members with ``train.epochs`` taken from ``now`` (a resumed sweep may train longer)."""
    saved = json.loads(json.dumps(saved))
    for s, n in zip(saved, now):  # fields added since the sweep was saved take their defaults
        s["config"] = json.loads(json.dumps(to_dict(from_dict(s["config"]))))
        s["config"]["train"]["epochs"] = n["config"]["train"]["epochs"]
    return saved


def run_search(configs: list[Config], out: str | Path, *, resume: bool = False, mesh="auto",
               quiet: bool = False) -> dict:
    """Load the members' data once and ``run`` them into ``out`` (members: ``grid.expand``, one data config).

    ``mesh``: as ``fit_group``'s ("auto" = the members split over every local device). Under
    ``jax.distributed`` only process 0 logs.
    Returns:
      ``{"out", "members", "groups", "top"}``: ``top`` holds the five best leaderboard rows (``LEADERBOARD``).
    """
    from jena_rnn.forecast.runs import load_data

    if len({c.data for c in configs}) != 1:
        raise ValueError("sweep: every member must read the same data (one DataConfig)")
    quiet = quiet or not distributed.is_main()  # under jax.distributed, process 0 speaks for all
    log = None if quiet else (lambda m: print(m, file=sys.stderr, flush=True))
    board = run(configs, load_data(configs[0].data, quiet=quiet), out, resume=resume, mesh=mesh, log=log)
    top = [{k: b[k] for k in LEADERBOARD} for b in board[:5]]
    return {"out": str(out), "members": len(board), "groups": len({b["group"] for b in board}), "top": top}
