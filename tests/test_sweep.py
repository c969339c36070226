"""Sweeps: member k of a vmapped sweep equals its configuration trained alone; grouping, masking, resume, CLI."""
import dataclasses
import json

import jax
import numpy as np
import pytest

from jena_rnn import cli, data, sweep
from jena_rnn.forecast import train

from tiny import TINY_DATA, tiny_config

TIMING = {"train_seconds", "step_ms", "epoch_seconds", "first_in_process"}  # first: differs on a resume


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture(scope="module")
def ds():
    return data.load_dataset(TINY_DATA)


def _member(lr, dropout, rec, seed, epochs=2, **kw):
    cfg = tiny_config(units=8, epochs=epochs, steps=4, seed=seed, dropout=dropout, recurrent_dropout=rec, **kw)
    return dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, learning_rate=lr))


# different learning rates, dropout rates (one member without any) and seeds
MEMBERS = [_member(1e-3, 0.0, 0.0, 0), _member(3e-3, 0.2, 0.0, 1), _member(1e-2, 0.1, 0.5, 2)]


def test_member_equals_single_run(ds):
    """STYLE test 8: each member's losses and final parameters equal train.fit on its config alone."""
    sw, results = sweep.fit_group(MEMBERS, ["a", "b", "c"], ds, log=None)
    for k, cfg in enumerate(MEMBERS):
        alone, history = train.fit(cfg, ds, log=None)
        for h, g in zip(history, results[k]["history"], strict=True):
            np.testing.assert_allclose([g["train_mae"], g["val_mae"]], [h["train_mae"], h["val_mae"]], rtol=1e-4)
        member = jax.tree.map(lambda x: np.asarray(x)[k], sw.train)
        jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), member.params,
                     jax.tree.map(np.asarray, alone.params))
        assert float(member.opt_state.hyperparams["learning_rate"]) == pytest.approx(cfg.optim.learning_rate)
        assert results[k]["status"] == "finished"


def test_grid_random_search_and_groups():
    base = tiny_config(units=8)
    grid = sweep.expand(base, {"lr": [1e-4, 1e-3], "recurrent_dropout": [0.0, 0.5]}, seeds=3)
    assert len(grid) == 12 and [c.train.seed for c in grid[:3]] == [0, 1, 2]
    assert {(c.optim.learning_rate, c.model.layers[0].recurrent_dropout) for c in grid} == \
        {(a, b) for a in (1e-4, 1e-3) for b in (0.0, 0.5)}
    assert sweep.group_members(grid) == [list(range(12))]  # everything vmappable: one program
    rand = sweep.expand(base, {"lr": (1e-4, 1e-2), "dropout": (0.0, 0.5), "units": [4, 8]}, samples=40)
    lrs = np.log10([c.optim.learning_rate for c in rand])
    assert lrs.min() >= -4 and lrs.max() <= -2 and (lrs < -3).any() and (lrs > -3).any()  # log-uniform
    assert all(0 <= c.model.layers[0].dropout <= 0.5 for c in rand)
    groups = sweep.group_members(rand)  # unit counts cannot be vmapped: two groups
    assert len(groups) == 2 and sorted(len(g) for g in groups) == sorted(
        [sum(c.model.layers[0].units == u for c in rand) for u in (4, 8)])
    forms = sweep.expand(base, {"reset_after": [False, True]})
    assert [sweep.group_label(c) for c in forms] == ["gru8-reset_before", "gru8-reset_after"]
    with pytest.raises(ValueError, match="--samples"):
        sweep.expand(base, {"lr": (1e-4, 1e-2)})


def test_stopped_member_is_frozen_by_masking(ds):
    """A member whose epochs are done keeps its state while the others train on (no recompilation)."""
    short = _member(1e-3, 0.0, 0.2, 0, epochs=1)
    # three members, like test_member_equals_single_run, so the cached compiled program is reused;
    # chunk=2 runs the same members as a lax.map over vmapped chunks of 2 (and a remainder of 1)
    runs = [sweep.fit_group([short, *MEMBERS[1:]], ["short", "b", "c"], ds, chunk=c, log=None) for c in (None, 2)]
    for sw, results in runs:
        assert np.asarray(sw.train.step).tolist() == [4, 8, 8]
        assert [len(r["history"]) for r in results] == [1, 2, 2]
        assert [r["status"] for r in results] == ["finished"] * 3
    for a, b in zip(runs[0][1], runs[1][1]):
        np.testing.assert_allclose([h["val_mae"] for h in a["history"]], [h["val_mae"] for h in b["history"]],
                                   rtol=1e-4)


TINY = ["--synthetic-rows", "4000", "--lookback", "120", "--step", "6", "--delay", "24",
        "--batch-size", "16", "--splits", "0:2000,2001:3000,3001:"]


def test_cli_sweep_leaderboard_and_resume(tmp_path, capsys):
    args = ["sweep", "--model", "gru", "--units", "4", "--lr", "1e-3,1e-2", "--recurrent-dropout", "0,0.3",
            "--steps-per-epoch", "3", "--quiet", *TINY]
    assert cli.main([*args, "--epochs", "2", "--out", str(tmp_path / "full")]) == 0
    full = json.loads(capsys.readouterr().out)
    assert full["members"] == 4 and full["groups"] == 1
    assert cli.main([*args, "--epochs", "1", "--out", str(tmp_path / "part")]) == 0
    with pytest.raises(SystemExit):  # an existing sweep is not overwritten silently
        cli.main([*args, "--epochs", "1", "--out", str(tmp_path / "part")])
    capsys.readouterr()
    assert cli.main([*args, "--epochs", "2", "--out", str(tmp_path / "part"), "--resume"]) == 0
    resumed = json.loads(capsys.readouterr().out)
    key = lambda top: [(t["member"], t["best_epoch"], round(t["best_val_mae"], 6)) for t in top]
    assert key(resumed["top"]) == key(full["top"])  # resuming gives the uninterrupted results
    csv = (tmp_path / "full" / "results.csv").read_text().splitlines()
    maes = [float(line.split(",")[10]) for line in csv[1:]]
    assert maes == sorted(maes) and len(maes) == 4
    assert (tmp_path / "full" / "results.md").is_file() and (tmp_path / "full" / "val_curves.png").is_file()
    best = full["top"][0]
    assert cli.main(["evaluate", str(tmp_path / "full" / "members" / best["member"]), "--split", "val"]) == 0
    ev = json.loads(capsys.readouterr().out)
    assert ev["epoch"] == best["best_epoch"] and ev["mae"] == pytest.approx(best["best_val_mae"], rel=1e-5)


def test_a_group_history_gives_each_members_results_also_from_the_older_layout():
    """A group's history rows hold its members' rows; a group saved before them held the results: both read alike."""
    row = lambda e, v: {"epoch": e, "train_mae": v, "val_mae": v}  # noqa: E731
    results = [{"name": "a", "history": [row(1, 0.5), row(2, 0.4)], "best_epoch": 2, "best_val_mae": 0.4,
                "status": "finished"},
               {"name": "b", "history": [row(1, 0.3)], "best_epoch": 1, "best_val_mae": 0.3, "status": "early-stopped"},
               {"name": "c", "history": [row(1, 0.9), row(2, 0.8)], "best_epoch": 1, "best_val_mae": 0.9,
                "status": "running"}]
    rows = sweep.board.group_rows(results)
    assert [sorted(r["members"]) for r in rows] == [["a", "b", "c"], ["a", "c"]]
    assert rows[0]["stopped"] == {"b": "early-stopped"} and rows[1]["stopped"] == {"a": "finished"}
    assert sweep.board.member_results(["a", "b", "c"], rows) == results
    assert sweep.board.group_rows(rows) is rows  # the current layout is read as it is


def test_a_sweep_resumed_with_another_members_configuration_names_that_member(ds, tmp_path):
    members = [_member(1e-3, 0.0, 0.0, 0, epochs=1), _member(3e-3, 0.0, 0.0, 1, epochs=1)]
    sweep.run(members, ds, tmp_path / "sw", log=None)
    faster = dataclasses.replace(members[1].optim, learning_rate=0.5)
    other = [members[0], dataclasses.replace(members[1], optim=faster)]
    with pytest.raises(ValueError, match=r"cannot resume .*sw: its saved configuration differs in \['m001'\]"):
        sweep.run(other, ds, tmp_path / "sw", resume=True, log=None)
    longer = [dataclasses.replace(m, train=dataclasses.replace(m.train, epochs=2)) for m in members]
    board = sweep.run(longer, ds, tmp_path / "sw", resume=True, log=None)  # only epochs grew: it goes on
    assert sorted(b["epochs_run"] for b in board) == [2, 2]


def _visible_points_and_whole_ticks(fig, n_lines):
    ax = fig.axes[0]
    curves = [line for line in ax.get_lines() if line.get_linestyle() != "--"]
    assert len(curves) == n_lines and all(line.get_marker() not in ("None", "", " ", None) for line in curves)
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_val_curves_of_a_one_epoch_sweep_show_each_member_as_a_marker(tmp_path):
    board = [{"member": f"m{k}", "rank": k + 1, "lr": 1e-3, "recurrent_dropout": 0.0, "seed": k,
              "history": [{"epoch": 1, "val_mae_degC": 2.0 + k}]} for k in range(2)]
    fig = sweep.board.plot_curves(board, tmp_path / "val_curves.png")
    assert (tmp_path / "val_curves.png").stat().st_size > 1000
    _visible_points_and_whole_ticks(fig, 2)
