"""The run directory's owner: its files, the one config comparison, the one data comparison, the resume check."""
import json
import os
import stat

import numpy as np
import pytest

from jena_rnn import atomic
from jena_rnn.runtime import report, rundir

FP = {"rows": 4000, "columns": ["a", "b"], "sha256": "0123456789abcdef" * 4, "mean": [1.0, 2.0], "std": [3.0, 4.0]}
LABELS = {"sha256": "content", "mean": "statistics", "std": "statistics"}


def test_config_differences_leave_out_dotted_paths():
    now, saved = {"train": {"epochs": 3, "lr": 1}, "model": (1, 2)}, {"train": {"epochs": 5, "lr": 1}, "model": [1, 2]}
    assert rundir.config_differences(now, saved, ignore=("train.epochs",)) == []
    assert rundir.config_differences(now, saved) == ["train"]
    assert rundir.config_differences({**now, "train": {"epochs": 3, "lr": 2}}, saved, ignore=("train.epochs",)) == [
        "train"]
    assert saved["train"]["epochs"] == 5  # the inputs are not changed


def test_data_differences_name_each_label_once_with_values_for_scalars_and_words():
    now = {**FP, "rows": 3900, "columns": ["b", "a"], "sha256": "f" * 64, "mean": [1.0, 9.0], "std": [0.0, 4.0]}
    diff, unchecked = rundir.data_differences(FP, now, LABELS)
    assert diff == ["rows (4000 -> 3900)", "columns (['a', 'b'] -> ['b', 'a'])",
                    "content (SHA-256 0123456789ab... -> SHA-256 ffffffffffff...)", "statistics"]
    assert unchecked == []
    assert rundir.data_differences(FP, dict(FP), LABELS) == ([], [])
    # only the statistics differ, in std alone: still named (mean and std share the label)
    assert rundir.data_differences(FP, {**FP, "std": [3.0, 5.0]}, LABELS)[0] == ["statistics"]
    # a fingerprint written before some fields existed: those are unchecked, the rest still compared
    old = {"columns": ["a", "b"], "mean": [1.0, 2.0], "std": [3.0, 4.0]}
    assert rundir.data_differences(old, FP, LABELS) == ([], ["content", "rows"])
    assert rundir.data_differences(old, {**FP, "mean": [0.0, 0.0]}, LABELS) == (["statistics"], ["content", "rows"])


def _check(tmp_path, **kw):
    args = dict(config_now={"a": 1, "epochs": 3}, config_saved={"a": 1, "epochs": 2}, ignore=("epochs",),
                fingerprint_now=FP, fingerprint_saved=dict(FP), where=tmp_path / "fingerprint.json", labels=LABELS,
                noun="reviews", sources=("old.csv", "new.csv"))
    rundir.check_resume(tmp_path / "run", **{**args, **kw})


def test_check_resume_refuses_naming_the_run_and_what_differs(tmp_path):
    _check(tmp_path)  # same config (up to epochs), same data: nothing to say
    with pytest.raises(ValueError, match=r"cannot resume .*run: its saved configuration differs in \['a'\]"):
        _check(tmp_path, config_saved={"a": 2})
    with pytest.raises(ValueError, match=r"cannot resume .*run: its reviews differ from the run's training data in "
                                         r"rows \(4000 -> 1\); trained on old\.csv, now new\.csv\. Resume with"):
        _check(tmp_path, fingerprint_now={**FP, "rows": 1})
    with pytest.raises(ValueError, match=r"fingerprint\.json: expected a JSON object .*got list"):
        _check(tmp_path, fingerprint_saved=[])


def test_check_resume_warns_when_the_data_cannot_be_checked(tmp_path):
    with pytest.warns(UserWarning, match=r"fingerprint\.json is missing .*cannot check .*same reviews"):
        _check(tmp_path, fingerprint_saved=None)
    with pytest.warns(UserWarning, match=r"fingerprint\.json has no data fingerprint of content, rows .*cannot check"):
        _check(tmp_path, fingerprint_saved={"columns": ["a", "b"], "mean": [1.0, 2.0], "std": [3.0, 4.0]})


def test_files_round_trip_and_damage_names_the_file(tmp_path):
    rundir.write_config(tmp_path, {"a": (1, 2), "n": np.float32(0.5)})  # numpy scalars become JSON numbers
    assert rundir.read_config(tmp_path) == {"a": [1, 2], "n": 0.5}
    rundir.write_history(tmp_path, [{"epoch": 1}])
    assert rundir.read_history(tmp_path) == [{"epoch": 1}]
    assert rundir.read_stats(tmp_path, missing_ok=True) is None and rundir.read_fingerprint(tmp_path) is None
    (tmp_path / rundir.CONFIG).write_text("[1]")
    with pytest.raises(ValueError, match=r"config\.json: expected a JSON object of the run's configuration, got list"):
        rundir.read_config(tmp_path)
    (tmp_path / rundir.HISTORY).write_text('{"epoch": 1}')
    with pytest.raises(ValueError, match=r"history\.json: expected a JSON list of per-epoch objects"):
        rundir.read_history(tmp_path)
    with pytest.raises(FileNotFoundError, match=r"stats\.json: no such run statistics"):
        rundir.read_stats(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "history.json"]  # no temporaries left


def test_a_new_run_folder_is_marked_with_its_kind_and_another_kind_is_refused(tmp_path):
    with rundir.lock(tmp_path / "run", "imdb"):
        assert (tmp_path / "run" / rundir.LOCK).exists()
    assert json.loads((tmp_path / "run" / rundir.MARKER).read_text())["kind"] == "imdb"
    assert rundir.kind_of(tmp_path / "run") == "imdb" and not (tmp_path / "run" / rundir.LOCK).exists()
    with pytest.raises(FileExistsError, match=r"run: holds a imdb run, not a forecast one"):
        with rundir.lock(tmp_path / "run", "forecast"):
            pass


def test_save_figure_writes_one_png_atomically(tmp_path):
    path = tmp_path / "f.png"
    path.write_bytes(b"old")
    fig, ax = report.pyplot().subplots()
    ax.plot([0, 1], [1, 0])
    report.save_figure(fig, path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["f.png"]
    assert not report.pyplot().get_fignums()  # closed


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_every_file_a_train_run_writes_has_the_mode_a_plain_open_gives(tmp_path, monkeypatch, umask):
    from jena_rnn.forecast import runs
    from tiny import tiny_config

    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path / "cache"))
    old = os.umask(umask)
    try:
        runs.train(tiny_config(epochs=2, steps=2), tmp_path / "run", quiet=True, mesh=None)
        (tmp_path / "plain").write_bytes(b"")  # what open() gives under this umask
    finally:
        os.umask(old)
    want = stat.S_IMODE((tmp_path / "plain").stat().st_mode)
    assert want == 0o666 & ~umask
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"history.csv", "history.json", "loss.png", "stats.json", "config.json", "jena-rnn-run.json"} <= names
    assert any("checkpoints" in p.parts for p in files)  # orbax's files are checked too
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in files
            if stat.S_IMODE(p.stat().st_mode) != want} == {}
    # folders (ours and orbax's) get what mkdir gives: 0o777 & ~umask
    dirs = [p for p in (tmp_path / "run").rglob("*") if p.is_dir()] + [tmp_path / "run"]
    assert {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in dirs
            if stat.S_IMODE(p.stat().st_mode) != 0o777 & ~umask} == {}


def test_write_atomic_keeps_the_mode_of_the_file_it_replaces(tmp_path):
    path = tmp_path / "config.json"
    path.write_text("{}")
    path.chmod(0o600)
    atomic.write_atomic(path, "{\"a\": 1}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and path.read_text() == "{\"a\": 1}"
    path.chmod(0o640)
    report.write_json(path, {"b": 2})
    assert stat.S_IMODE(path.stat().st_mode) == 0o640 and json.loads(path.read_text()) == {"b": 2}


def _history(vals):
    return [{"epoch": e + 1, "train_mae": v + 0.05, "val_mae": v} for e, v in enumerate(vals)]


def _lines(ax, **props):
    """The Line2D objects of ``ax`` whose getters return ``props`` (e.g. ``linestyle="--"``)."""
    return [line for line in ax.get_lines() if all(getattr(line, f"get_{k}")() == v for k, v in props.items())]


def test_loss_figure_has_the_baseline_the_best_epoch_a_degc_axis_and_whole_epoch_ticks():
    fig = report.history_figure(_history([0.40, 0.31, 0.29, 0.33]), baseline=0.35, scale=8.0)
    try:
        (ax,) = fig.axes[:1]
        (base,) = _lines(ax, linestyle="--")
        assert list(base.get_ydata()) == [0.35, 0.35]
        (star,) = _lines(ax, marker="*")
        assert list(star.get_xdata()) == [3] and list(star.get_ydata()) == [0.29]  # argmin of val_mae
        (sec,) = ax.child_axes
        fig.canvas.draw()
        np.testing.assert_allclose(sec.get_ylim(), np.asarray(ax.get_ylim()) * 8.0)
        assert "°C" in sec.get_ylabel() and ax.get_ylabel() == "MAE (normalised)"
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert ticks and all(float(t).is_integer() for t in ticks), ticks
    finally:
        report.pyplot().close(fig)


def test_the_second_axis_is_in_the_target_columns_unit():
    from jena_rnn import data

    assert [data.unit_of(c) for c in ("T (degC)", "p (mbar)", "wd (deg)", "rho (g/m**3)", "load")] == \
        ["°C", "mbar", "°", "g/m**3", "target units"]
    fig = report.history_figure(_history([0.4, 0.3]), scale=2.0, scale_unit=data.unit_of("p (mbar)"))
    try:
        assert fig.axes[0].child_axes[0].get_ylabel() == "MAE (mbar)"
    finally:
        report.pyplot().close(fig)


def test_a_one_epoch_history_shows_its_points_and_no_baseline_or_axis_unless_given():
    fig = report.history_figure(_history([0.3]))
    try:
        ax = fig.axes[0]
        val = [line for line in ax.get_lines() if line.get_label() == "Validation loss"][0]
        assert len(val.get_xdata()) == 1 and val.get_marker() not in ("None", "", " ", None)
        assert not _lines(ax, linestyle="--") and not ax.child_axes
        fig.canvas.draw()
        ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
        assert all(float(t).is_integer() for t in ticks), ticks
    finally:
        report.pyplot().close(fig)


def test_best_of_a_maximised_score_marks_the_most_accurate_epoch_on_every_panel():
    hist = [{"epoch": e + 1, "train_loss": 1.0, "val_loss": v, "train_acc": 0.5, "val_acc": a}
            for e, (v, a) in enumerate([(0.6, 0.70), (0.5, 0.90), (0.4, 0.80)])]
    fig = report.history_figure(hist, panels=(("loss", "loss", "bce"), ("acc", "accuracy", "accuracy")),
                                best_of=("val_acc", False))
    try:
        stars = [_lines(ax, marker="*")[0] for ax in fig.axes]
        assert [list(s.get_xdata()) for s in stars] == [[2], [2]]
        assert [list(s.get_ydata()) for s in stars] == [[0.5], [0.9]]
    finally:
        report.pyplot().close(fig)
