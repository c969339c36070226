"""`jena-rnn reproduce --quick`: every artefact exists and the table agrees with the histories;
and the acceptance check that a trained GRU beats the naive baseline."""
import csv
import dataclasses
import json

import pytest

from jena_rnn import data
from jena_rnn.forecast import reproduce, runs, train
from jena_rnn.config import Config, DataConfig, LayerConfig, ModelConfig, OptimConfig, TrainConfig

from tiny import TINY_DATA


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_quick_reproduce_artefacts_and_table(tmp_path):
    only = ["naive", "gru", "reversed_gru", "imdb_lstm"]
    reproduce.reproduce(tmp_path, data=TINY_DATA, only=only, quick=True, quiet=True)
    for name in only[1:3]:
        for f in ("history.json", "history.csv", "loss.png", "result.json"):
            assert (tmp_path / name / f).is_file(), (name, f)
    assert (tmp_path / "val_mae.png").stat().st_size > 1000
    rows = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert [r["experiment"] for r in rows] == only
    for r in rows[1:3]:
        history = json.loads((tmp_path / r["experiment"] / "history.json").read_text())
        assert int(r["epochs"]) == len(history) == 2
        assert float(r["best_val_mae"]) == pytest.approx(min(h["val_mae"] for h in history))
    naive = runs.baseline(TINY_DATA, quiet=True)
    assert float(rows[0]["best_val_mae"]) == pytest.approx(naive["val_mae"])
    table = (tmp_path / "results.md").read_text()
    assert "Quick smoke run" in table and "| reversed_gru |" in table
    imdb = json.loads((tmp_path / "imdb_lstm" / "history.json").read_text())
    assert float(rows[3]["best_val_acc"]) == pytest.approx(max(h["val_acc"] for h in imdb))
    assert "| imdb_lstm |" in table

    # a finished experiment is not trained again, and its result.json is never trusted: an edited or damaged
    # one is scored again from the run directory; other settings are refused, not answered with old figures
    before = json.loads((tmp_path / "gru" / "result.json").read_text())
    (tmp_path / "gru" / "result.json").write_text(json.dumps({**before, "best_val_mae": 0.11}))
    (tmp_path / "naive" / "result.json").write_text("[1, 2]")
    reproduce.reproduce(tmp_path, data=TINY_DATA, only=["naive", "gru"], quick=True, quiet=True)
    again = json.loads((tmp_path / "gru" / "result.json").read_text())
    assert again["best_val_mae"] == before["best_val_mae"] and again["epochs"] == 2
    assert "0.1100" not in (tmp_path / "results.md").read_text()
    with pytest.raises(ValueError, match=r"cannot resume .*gru: its saved configuration differs in \['data'\]"):
        reproduce.reproduce(tmp_path, data=dataclasses.replace(TINY_DATA, lookback=60), only=["gru"], quick=True,
                            quiet=True)


def test_reproduce_refuses_a_folder_of_someone_elses_files(tmp_path):
    (tmp_path / "results.md").write_text("my notes\n")
    (tmp_path / "val_mae.png").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match=r"holds files that are not a jena-rnn run"):
        reproduce.reproduce(tmp_path, data=TINY_DATA, only=["naive"], quick=True, quiet=True)
    assert (tmp_path / "results.md").read_text() == "my notes\n" and (tmp_path / "val_mae.png").read_bytes() == b"mine"


def test_unknown_experiment_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"unknown experiments \['gur'\]"):
        reproduce.reproduce(tmp_path, data=TINY_DATA, only=["gur"], quick=True)


def test_gru_beats_naive_baseline():
    """Acceptance (issue 4) on a short run: 1-day windows, a 6-hour horizon, 40,000 synthetic rows.

    At a 6-hour horizon persistence misses the daily cycle, so 120 training steps suffice to show the
    GRU learning it; the lecture's 24-hour protocol needs thousands of steps (see experiments/results/).
    """
    d = DataConfig(synthetic_rows=40_000, lookback=144, step=6, delay=36, batch_size=32,
                   train=(0, 28_000), val=(28_001, 36_000), test=(36_001, None))
    config = Config(data=d, model=ModelConfig(layers=(LayerConfig(cell="gru", units=16),)),
                    optim=OptimConfig(learning_rate=3e-3), train=TrainConfig(epochs=2, steps_per_epoch=60))
    ds = data.load_dataset(d)
    _, history = train.fit(config, ds, log=None)
    naive = runs.naive_mae(config, ds, "val")
    best = min(h["val_mae"] for h in history)
    assert best < 0.8 * naive, (best, naive)


def test_val_mae_plot_shows_a_one_epoch_run_and_the_naive_line(tmp_path):
    from jena_rnn.runtime import rundir

    rundir.write_history(tmp_path / "gru", [{"epoch": 1, "val_mae": 0.3}])
    fig = reproduce.plot_val_curves(tmp_path, ["gru", "lstm"], 0.31)  # lstm has no history: left out
    ax = fig.axes[0]
    (curve,) = [line for line in ax.get_lines() if line.get_label() == "gru"]
    assert list(curve.get_xdata()) == [1] and curve.get_marker() not in ("None", "", " ", None)
    (naive,) = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
    assert list(naive.get_ydata()) == [0.31, 0.31]
    fig.canvas.draw()
    lo, hi = ax.get_xlim()
    assert all(float(t).is_integer() for t in ax.get_xticks() if lo <= t <= hi)
