"""The shared epoch loop: best checkpoint, early stopping (also across a resume), divergence, refusals."""
import math

import numpy as np
import pytest

from jena_rnn.runtime import checkpoint, loop, rundir


def scripted(scores, key="val"):
    """An epoch function whose state counts epochs and whose metric follows ``scores`` (training took 0.5 s)."""
    def one_epoch(state):
        n = int(state["n"]) + 1
        return {"n": np.asarray(n)}, {key: scores[n - 1], "train": 1.0}, 0.5
    return one_epoch


def test_best_checkpoint_and_early_stop_follow_the_score(tmp_path):
    logs = []
    state, history = loop.run_epochs({"n": np.asarray(0)}, [], scripted([3.0, 1.0, 2.0, 1.0, 5.0, 0.5]),
                                     epochs=6, steps=1, score="val", finite={"val": "validation X"}, run_dir=tmp_path,
                                     config={},
                                     log=logs.append, line=lambda row, h: f"e{row['epoch']}", patience=3)
    # epoch 2 is best; 3, 4 (a tie is not better) and 5 are not: stopped after epoch 5, never ran 6
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5] and int(state["n"]) == 5
    assert checkpoint.best(tmp_path) == 2 and checkpoint.latest(tmp_path) == 5
    assert logs[:5] == ["e1", "e2", "e3", "e4", "e5"] and "no better validation X for 3 epochs" in logs[-1]
    assert all(h["epoch_seconds"] >= 0 and h["train"] == 1.0 for h in history)
    # the one row builder: the metrics, then the training time, per step (1 step: 500 ms) and the epoch's
    assert list(history[0]) == ["epoch", "val", "train", "train_seconds", "step_ms", "epoch_seconds",
                                "first_in_process"]
    assert [h["first_in_process"] for h in history] == [True] + [False] * (len(history) - 1)
    assert history[0]["train_seconds"] == 0.5 and history[0]["step_ms"] == 500.0


def test_until_stops_a_run_without_a_score(tmp_path):
    """A sweep's way: no BEST pointer (its state holds each member's best), stopped when ``until`` says so."""
    state, history = loop.run_epochs({"n": np.asarray(0)}, [], scripted([1.0] * 5), epochs=5, steps=4,
                                     run_dir=tmp_path, config={}, until=lambda state: int(state["n"]) >= 2)
    assert int(state["n"]) == 2 and [h["step_ms"] for h in history] == [125.0, 125.0]
    assert checkpoint.latest(tmp_path) == 2 and checkpoint.best(tmp_path) is None


def test_maximised_score_picks_the_highest(tmp_path):
    _, history = loop.run_epochs({"n": np.asarray(0)}, [], scripted([0.5, 0.9, 0.7], key="acc"), epochs=3, steps=1,
                                 score="acc", minimize=False, finite={}, run_dir=tmp_path, config={})
    assert len(history) == 3 and checkpoint.best(tmp_path) == 2


def test_resumed_run_stops_where_the_uninterrupted_one_does(tmp_path):
    scores = [3.0, 1.0, 2.0, 2.0, 0.1]
    full = loop.run_epochs({"n": np.asarray(0)}, [], scripted(scores), epochs=5, steps=1, score="val", finite={},
                           patience=2)[1]
    assert len(full) == 4  # epochs 3 and 4 are not better
    loop.run_epochs({"n": np.asarray(0)}, [], scripted(scores), epochs=3, steps=1, score="val", finite={},
                    run_dir=tmp_path, config={"a": 1}, patience=2)
    state, history = loop.open_run(tmp_path, {"n": np.asarray(0)}, resume=True, check_config=lambda saved: None)
    assert int(state["n"]) == 3 and len(history) == 3
    _, history = loop.run_epochs(state, history, scripted(scores), epochs=5, steps=1, score="val", finite={},
                                 run_dir=tmp_path, config={"a": 1}, patience=2)
    assert [h["val"] for h in history] == [h["val"] for h in full]
    # already stale when resumed: nothing runs
    again = loop.run_epochs(state, list(history), scripted(scores), epochs=5, steps=1, score="val", finite={},
                            patience=2)
    assert len(again[1]) == 4


def test_non_finite_metric_names_epoch_and_last_good_checkpoint(tmp_path):
    with pytest.raises(loop.TrainingDiverged, match=r"epoch 3: validation X nan \(not finite\).*epoch 2 in .* Lower"):
        loop.run_epochs({"n": np.asarray(0)}, [], scripted([1.0, 0.5, math.nan]), epochs=3, steps=1, score="val",
                        finite={"val": "validation X"}, run_dir=tmp_path, config={}, hint="Lower it.")
    assert checkpoint.latest(tmp_path) == 2
    with pytest.raises(loop.TrainingDiverged, match="none saved"):
        loop.run_epochs({"n": np.asarray(0)}, [], scripted([math.inf]), epochs=1, steps=1, score="val",
                        finite={"val": "validation X"})


def test_open_run_refuses_without_resume_and_checks_config_before_restoring(tmp_path):
    assert loop.open_run(tmp_path / "new", "fresh", resume=False, check_config=None) == ("fresh", [])
    loop.run_epochs({"n": np.asarray(0)}, [], scripted([1.0]), epochs=1, steps=1, score="val", finite={},
                    run_dir=tmp_path, config={"units": [32]})
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        loop.open_run(tmp_path, {"n": np.asarray(0)}, resume=False, check_config=lambda saved: None)

    def check(saved):
        raise ValueError(f"saw {saved}")
    # a template the checkpoint does not fit: restoring first would raise restore's own mismatch error
    with pytest.raises(ValueError, match=r"saw \{'units': \[32\]\}"):
        loop.open_run(tmp_path, {"m": np.asarray(0)}, resume=True, check_config=check)
    with pytest.raises(ValueError, match="does not match the target tree"):
        loop.open_run(tmp_path, {"m": np.asarray(0)}, resume=True, check_config=lambda saved: None)


def test_a_run_directory_needs_its_config():
    with pytest.raises(ValueError, match="needs the config"):
        loop.run_epochs({"n": np.asarray(0)}, [], scripted([1.0]), epochs=1, steps=1, score="val", finite={},
                        run_dir="somewhere")


def test_config_differences_treats_tuples_as_lists_and_ignores_keys():
    assert rundir.config_differences({"a": (1, 2), "b": 1, "e": 3}, {"a": [1, 2], "b": 2, "e": 4},
                                   ignore=("e",)) == ["b"]
    assert rundir.config_differences({"a": 1}, {"c": 1}) == ["a", "c"]
