"""The command line end to end on a tiny synthetic configuration, and its one-line errors."""
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jena_rnn.runtime import checkpoint
from jena_rnn import cli, data
from jena_rnn.forecast import train
from jena_rnn.config import from_dict, lecture_config
from jena_rnn.nn.models import apply_model

TINY = ["--synthetic-rows", "4000", "--lookback", "120", "--step", "6", "--delay", "24",
        "--batch-size", "16", "--splits", "0:2000,2001:3000,3001:"]


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def run(capsys, *argv):
    assert cli.main(list(argv)) == 0
    return json.loads(capsys.readouterr().out)


def test_train_evaluate_predict_baseline(tmp_path, capsys):
    out = tmp_path / "run"
    summary = run(capsys, "train", "--model", "gru", "--units", "8", "--epochs", "2", "--steps-per-epoch", "3",
                  "--out", str(out), "--quiet", *TINY)
    assert summary["epochs"] == 2 and summary["params"] > 0
    for name in ("config.json", "stats.json", "history.json", "history.csv", "loss.png"):
        assert (out / name).is_file(), name
    history = json.loads((out / "history.json").read_text())
    assert min(h["val_mae"] for h in history) == pytest.approx(summary["best_val_mae"])

    ev = run(capsys, "evaluate", str(out), "--split", "test")
    assert ev["mae"] == pytest.approx(summary["test_mae"], rel=1e-5)

    base = run(capsys, "baseline", *TINY)
    assert base["val_mae_degC"] == pytest.approx(base["val_mae"] * base["target_std"])

    pred = run(capsys, "predict", str(out))
    assert pred["last_input_row"] == 3999 and pred["forecast_row"] == 3999 + 24 + 6
    # the same number by hand: the newest 120 rows every 6th, normalised with the run's saved stats
    stats = json.loads((out / "stats.json").read_text())
    table = data.synthetic_jena(n_rows=4000, seed=0)
    xs = (table.values[np.arange(4000 - 120 + 5, 4000, 6)] - stats["mean"]) / np.asarray(stats["std"])
    config = from_dict(json.loads((out / "config.json").read_text()))
    state, _ = checkpoint.restore(out, train.init_state(config, jax.random.PRNGKey(0), 14), which="best")
    y = float(apply_model(config.model, state.params, jnp.asarray(xs[None], jnp.float32))[0])
    assert pred["forecast_normalised"] == pytest.approx(y, rel=1e-4, abs=1e-5)
    assert pred["forecast"] == pytest.approx(y * stats["std"][1] + stats["mean"][1], rel=1e-4, abs=1e-4)

    # a file with only one window's rows is enough to forecast from
    short = tmp_path / "short.csv"
    data.write_jena_csv(data.synthetic_jena(n_rows=150, seed=5), short)
    assert run(capsys, "predict", str(out), "--data", str(short))["last_input_row"] == 149

    # resuming to more epochs continues the same run
    more = run(capsys, "train", "--model", "gru", "--units", "8", "--epochs", "3", "--steps-per-epoch", "3",
               "--out", str(out), "--quiet", "--resume", *TINY)
    assert more["epochs"] == 3


def test_synth_writes_a_file_load_jena_reads(tmp_path, capsys):
    from jena_rnn import data

    run(capsys, "synth", "--out", str(tmp_path / "s.csv"), "--rows", "300", "--seed", "3")
    table = data.load_jena(tmp_path / "s.csv")
    assert table.values.shape == (300, 14)


@pytest.mark.parametrize("argv, message", [
    (["train", "--out", "x", "--units", "0"], "units must be positive"),
    (["train", "--out", "x", "--dropout", "1.5"], "rate in"),
    (["train", "--out", "x", "--splits", "0:10,20"], "three LO:HI"),
    (["train", "--out", "x", "--lookback", "100", "--step", "6"], "multiple of step"),
    (["train", "--out", "x", "--set", "model.nope=1"], "existing field"),
    (["train", "--out", "x", "--set", 'train.patience="x"'], "train.patience must be int | None"),
    (["train", "--out", "x", "--set", "data.columns=5"], "data.columns must be tuple"),
    (["train", "--out", "x", "--set", "model.layers=[1]"], "--set model.layers: use --units"),
    (["baseline", "--data", "no/such/file.csv"], "no/such/file.csv"),
    (["evaluate", "no/such/run"], "not a run directory"),
])
def test_bad_values_give_one_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err
    assert len(err.splitlines()) <= 3  # argparse prints usage + one error line


def test_flags_build_the_lecture_config():
    args = cli.build_parser().parse_args(["train", "--model", "stacked_gru", "--out", "x", "--units", "16,24",
                                          "--lr", "3e-4", "--reset-after"])
    config = cli.train_config(args)
    assert [layer.units for layer in config.model.layers] == [16, 24]
    assert all(layer.reset_after for layer in config.model.layers)
    assert config.optim.learning_rate == 3e-4
    assert config.train.epochs == lecture_config("stacked_gru").train.epochs == 40
