"""The command line end to end on a tiny synthetic configuration, and its one-line errors."""
import argparse
import dataclasses
import functools
import importlib.util
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jena_rnn.runtime import checkpoint
from jena_rnn import cli, data
from jena_rnn.cli import configs, parsers, values
from jena_rnn.forecast import reproduce, train
from jena_rnn.config import DataConfig, LayerConfig, from_dict, lecture_config
from jena_rnn.imdb import IMDBConfig
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
    (["train", "--out", "x", "--set", "model.nope=1"],
     "model has no field 'nope'; its fields are kind, layers, mlp_units"),
    (["train", "--out", "x", "--set", "train.bogus=1"], "its fields are epochs, steps_per_epoch, seed, patience"),
    (["train", "--out", "x", "--set", "modle.units=1"], "unknown section 'modle'; the sections are data, model, "
                                                      "optim, train"),
    (["train", "--out", "x", "--set", "patience=3"], "expected SECTION.FIELD=VALUE"),
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


def _subparsers():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    return sub.choices


def test_every_default_a_flag_has_is_in_its_help():
    for name, parser in {**_subparsers(), "experiments/gru.py": cli.experiment_parser("gru")}.items():
        text = " ".join(parser.format_help().split())
        for action in parser._actions:
            if action.default in (None, False, argparse.SUPPRESS) or action.dest == "help":
                continue
            assert f"default {action.default}" in text, (name, action.dest, action.default)


def test_help_and_defaults_come_from_the_config_dataclasses(monkeypatch):
    monkeypatch.setattr(parsers, "DataConfig", functools.partial(DataConfig, lookback=720, train=(0, 999)))
    monkeypatch.setattr(parsers, "IMDBConfig", functools.partial(IMDBConfig, maxlen=77))
    helps = {name: " ".join(p.format_help().split()) for name, p in _subparsers().items()}
    assert "(default 720)" in helps["train"] and "(default 720)" in helps["baseline"]
    assert "(default 0:999,200001:300000,300001:)" in helps["sweep"]
    assert "tokens kept per review (default 77)" in helps["imdb"]
    assert cli.build_parser().parse_args(["imdb", "--out", "x"]).maxlen == 77


def test_imdb_flags_left_out_give_imdb_config_defaults():
    args = cli.build_parser().parse_args(["imdb", "--out", "x"])
    assert configs.imdb_config(args) == IMDBConfig()
    args = cli.build_parser().parse_args(["imdb", "--out", "x", "--cell", "gru", "--units", "8", "--maxlen", "40"])
    cfg = configs.imdb_config(args)
    assert cfg == dataclasses.replace(IMDBConfig(), maxlen=40, layers=(LayerConfig(cell="gru", units=8),))


def test_splits_text_round_trips():
    d = DataConfig()
    assert values.parse_splits(values.format_splits(d)) == {"train": d.train, "val": d.val, "test": d.test}
    assert values.parse_splits("0:0.5,0.5:0.75,0.75:") == {"train": (0, 0.5), "val": (0.5, 0.75), "test": (0.75, None)}


def test_sweep_axes_parse_lists_and_ranges():
    assert values.parse_axis("1e-3,3e-3", "lr") == [1e-3, 3e-3]
    assert values.parse_axis("1e-4:1e-2", "lr") == (1e-4, 1e-2)
    assert values.parse_axis("0,after", "reset_after") == [False, True]
    with pytest.raises(ValueError, match=r"--units: 8 is given twice"):
        values.parse_axis("8,16,8", "units")
    with pytest.raises(ValueError, match=r"--lr: empty range"):
        values.parse_axis("1e-2:1e-3", "lr")


def _script(name: str):
    path = Path(__file__).parents[1] / "experiments" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"experiment_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_experiment_scripts_apply_their_flags_to_their_config(monkeypatch, tmp_path, capsys):
    calls = []
    def run_experiment(name, config, run_dir, *, quick):
        calls.append((name, config, run_dir, quick))
        return {"ok": 1}

    monkeypatch.setattr(reproduce, "run_experiment", run_experiment)
    gru = _script("gru")
    assert gru.main(["--quick", "--data", "x.csv", "--out", str(tmp_path)]) == {"ok": 1}
    assert json.loads(capsys.readouterr().out) == {"ok": 1}
    name, config, run_dir, quick = calls.pop()
    assert (name, run_dir, quick) == ("gru", tmp_path / "gru", True)
    assert config == reproduce.quick_config(dataclasses.replace(
        gru.CONFIG, data=dataclasses.replace(gru.CONFIG.data, path="x.csv")))
    assert (config.train.epochs, config.train.steps_per_epoch) == (2, 5)
    gru.main([])
    assert calls.pop()[1:] == (gru.CONFIG, Path(parsers.EXPERIMENTS_OUT) / "gru", False)
    _script("imdb_lstm").main(["--out", str(tmp_path)])
    assert calls.pop() == ("imdb_lstm", None, tmp_path / "imdb_lstm", False)


@pytest.mark.parametrize("name, argv, message", [
    ("imdb_lstm", ["--data", "imdb.npz"], "experiments/imdb_lstm.py: error: --data: use `jena-rnn imdb"),
    ("gru", ["--out", ""], "experiments/gru.py: error: argument --out: expected a path"),
    ("gru", ["--epochs", "3"], "experiments/gru.py: error: unrecognized arguments: --epochs 3"),
])
def test_experiment_scripts_refuse_bad_flags_in_one_line(name, argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        _script(name).main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == message or err[0].startswith(message)
    assert len(err) == 2 and "--help" in err[1]


def test_each_sweep_axis_has_its_own_help_and_evaluate_split_says_what_it_is():
    sweep, evaluate = _subparsers()["sweep"], _subparsers()["evaluate"]
    axes = {a.option_strings[0]: a.help for a in sweep._actions
            if a.option_strings and a.option_strings[0] in parsers.SWEEP_HELP}
    assert sorted(axes) == sorted("--" + a.replace("_", "-") for a in values.SWEEP_AXES)
    assert len(set(axes.values())) == len(axes)  # no note repeated for every axis
    words = {"--lr": "learning rates", "--rho": "RMSprop decays", "--dropout": "input dropout rates",
             "--recurrent-dropout": "recurrent dropout rates", "--units": "hidden units", "--reset-after": "GRU forms",
             "--cell": "recurrent cells (simple_rnn, lstm, gru)"}
    for flag, text in axes.items():
        assert text.startswith(words[flag]) and "default" in text, (flag, text)
    assert "LO:HI ranges need --samples" in " ".join(sweep.format_help().split())
    split = next(a for a in evaluate._actions if a.dest == "split")
    text = " ".join(evaluate.format_help().split())
    assert split.default == "test" and "split whose windows are scored" in text and "(default test)" in text


def test_the_step_time_leaves_out_each_process_first_epoch():
    from jena_rnn.runtime import report

    # resumed after epoch 4: epoch 5 compiled again; the rows say which epochs each process ran first
    rows = [{"epoch": e, "step_ms": ms, "first_in_process": e in (1, 5)}
            for e, ms in [(1, 900.0), (2, 10.0), (3, 14.0), (4, 12.0), (5, 800.0), (6, 11.0)]]
    assert report.warm_step_time(rows[:4]) == (12.0, "epochs 2-4, compile excluded")
    assert report.warm_step_time(rows) == (11.5, "epochs 2-4, 6, compile excluded")
    assert report.warm_step_time(rows[:1]) == (900.0, "epoch 1, compile included")
    # rows that do not say (an older version's) are not trusted to be warm
    assert report.warm_step_time([{k: v for k, v in r.items() if k != "first_in_process"} for r in rows[:4]]) \
        == (12.0, "epoch 4, compile included")
    assert report.epoch_ranges([2, 3, 5, 7, 8]) == "epochs 2-3, 5, 7-8"


def test_data_report_is_printed_only_when_it_says_something(tmp_path, capsys):
    from jena_rnn.forecast import runs

    clean = {"file": "x.npz", "rows": 9, "source": "s", "sentinel_counts": {}, "duplicated_timestamps": 0,
             "missing_slots": 0, "gaps": 0, "cached": True}
    assert runs.data_notes(clean) == {}
    assert runs.data_notes(clean | {"cached": False}) == {"generated": "synthetic default written to the cache x.npz"}
    real = {"file": "j.csv", "rows": 9, "columns": 14, "sentinel": -9999.0, "sentinel_policy": "zero",
            "outlier_policy": "error", "outlier_counts": {"T (degC)": 0}, "dropped_duplicates": 0,
            "sentinel_counts": {"wv (m/s)": 3, "max. wv (m/s)": 0}, "interval_s": 600.0, "duplicated_timestamps": 2,
            "non_increasing": 0, "gaps": 1, "missing_slots": 4}
    assert runs.data_notes(real) == {"sentinel_counts": {"wv (m/s)": 3}, "sentinel_policy": "zero",
                                     "duplicated_timestamps": 2, "gaps": 1, "missing_slots": 4}
    # a sentinel outside the wind columns was handled by the other policy: the note says which did what
    elsewhere = real | {"sentinel_counts": {"wv (m/s)": 3, "T (degC)": 5}, "other_sentinel_policy": "interpolate"}
    assert runs.data_notes(elsewhere)["sentinel_policy"] == "zero"
    assert runs.data_notes(elsewhere)["other_sentinel_policy"] == "interpolate"
    only_t = real | {"sentinel_counts": {"T (degC)": 5}, "other_sentinel_policy": "interpolate"}
    assert "sentinel_policy" not in runs.data_notes(only_t) and runs.data_notes(only_t)["other_sentinel_policy"] \
        == "interpolate"
    assert runs.data_notes(real | {"sentinel_counts": {}, "duplicated_timestamps": 0, "gaps": 0,
                                   "missing_slots": 0}) == {}
    cli.main(["baseline", *TINY])  # the synthetic default is cached now
    capsys.readouterr()
    assert cli.main(["baseline", *TINY]) == 0
    err = capsys.readouterr().err
    assert "data: synthetic" in err and "data report" not in err


def test_train_prints_the_step_time_without_compilation(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "gru", "--units", "4", "--epochs", "3", "--steps-per-epoch", "2",
                     "--out", str(out), *TINY]) == 0
    captured = capsys.readouterr()
    summary = json.loads(captured.out)
    assert summary["step_ms_of"] == "epochs 2-3, compile excluded"
    assert f"{summary['step_ms_median']:.1f} ms per training step (median of epochs 2-3, compile excluded" \
        in captured.err
    assert cli.main(["train", "--model", "gru", "--units", "4", "--epochs", "4", "--steps-per-epoch", "2",
                     "--out", str(out), "--resume", *TINY]) == 0
    # the resumed process compiled in epoch 4: the warm epochs are the first process's
    assert json.loads(capsys.readouterr().out)["step_ms_of"] == "epochs 2-3, compile excluded"
    history = json.loads((out / "history.json").read_text())
    assert [h["first_in_process"] for h in history] == [True, False, False, True]
