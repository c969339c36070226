"""Bad run directories: user files are never deleted, one writer at a time, no silent wrong numbers, one clear line.

Issue 14's classes on the run side: (3) nothing the user owns is lost (temporaries, the lock);
(2) evaluate/predict/resume on other data (saved statistics, fingerprint, the forecast horizon);
(4) damaged checkpoints fall back with one warning, and damaged JSON files give one error naming them.
Every case builds its run directory in tmp_path from one tiny trained run (copied).
"""
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import threading
import types
import warnings

import jax
import numpy as np
import pytest

from jena_rnn.runtime import checkpoint, rundir
from jena_rnn import cli, data
from jena_rnn.forecast import runs, train

from tiny import TINY_DATA, tiny_config


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("JENA_RNN_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _table(rows=4000, seed=0):
    return data.synthetic_jena(n_rows=rows, seed=seed)


def _csv(path, table):
    data.write_jena_csv(table, path)
    return str(path)


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A tiny run trained for 3 epochs on a CSV (checkpoints 2 and 3 kept, BEST on its best epoch)."""
    root = tmp_path_factory.mktemp("base")
    path = _csv(root / "jena.csv", _table())
    config = tiny_config(epochs=3, steps=2)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, path=path))
    train.fit(config, data.load_dataset(config.data), root / "run", log=None)
    return root / "run", config


@pytest.fixture
def run_dir(base, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(base[0], out)
    return out


def _no_traceback(capfd):
    err = capfd.readouterr().err
    assert "Traceback" not in err and "RuntimeError" not in err, err


# ------------------------------------------------------------------ class 3: nothing the user owns is lost
USER_FILES = [".tmp-notes.txt", ".tmp-dir/inside.txt", "checkpoints/.tmp-mine", "notes.md",
              "checkpoints/.jena-rnn-tmp-looks-like-ours", "checkpoints/.tmp-epoch_0009-1-abc/x"]


@pytest.fixture(scope="module")
def trained_with_user_files(tmp_path_factory):
    run = tmp_path_factory.mktemp("user") / "run"
    for rel in USER_FILES:
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text("mine")
    config = tiny_config(epochs=2, steps=1)
    ds = data.load_dataset(config.data)
    train.fit(config, ds, run, log=None)
    train.fit(dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=4)), ds, run,
              resume=True, log=None)
    assert checkpoint.latest(run) == 4  # pruning ran: epochs 1 and 2 are gone
    return run


@pytest.mark.parametrize("rel", USER_FILES)
def test_user_files_survive_training_and_resume(trained_with_user_files, rel):
    assert (trained_with_user_files / rel).read_text() == "mine"


def test_only_stale_temporaries_of_our_own_pattern_are_pruned(tmp_path):
    state = {"a": np.arange(3.0)}
    checkpoint.save(tmp_path, state, epoch=1, history=[], config={}, is_best=True)
    root = tmp_path / "checkpoints"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = root / f".jena-rnn-tmp-epoch_0002.{dead_pid}.{'a' * 32}"
    live = root / f".jena-rnn-tmp-epoch_0002.{os.getppid()}.{'b' * 32}"  # a live process's save in progress
    for p in (stale, live):
        p.mkdir()
    checkpoint.save(tmp_path, state, epoch=2, history=[], config={}, is_best=False)
    assert not stale.exists() and live.is_dir()


def test_a_second_writer_is_refused_at_once_naming_the_holder(tmp_path):
    errors = []
    with rundir.lock(tmp_path):
        holder = json.loads((tmp_path / rundir.LOCK).read_text())

        def other():
            try:
                with rundir.lock(tmp_path):
                    pass
            except FileExistsError as e:
                errors.append(str(e))
        t = threading.Thread(target=other)
        t.start()
        t.join(timeout=30)
        with rundir.lock(tmp_path):  # the same thread again: re-entrant (imdb.run around imdb.fit)
            pass
        assert (tmp_path / rundir.LOCK).exists()
    assert len(errors) == 1 and f"pid {os.getpid()}" in errors[0] and holder["host"] in errors[0]
    assert "since" in errors[0] and not (tmp_path / rundir.LOCK).exists()


def test_a_stale_lock_of_a_dead_pid_is_taken_over_with_a_warning(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / rundir.LOCK).write_text(json.dumps({"pid": int(dead.stdout), "host": "here", "since": "then"}))
    with pytest.warns(UserWarning, match=f"taking over the stale lock .*pid {int(dead.stdout)} on host here"):
        with rundir.lock(tmp_path):
            assert json.loads((tmp_path / rundir.LOCK).read_text())["pid"] == os.getpid()
    assert not (tmp_path / rundir.LOCK).exists()


def test_the_lock_is_released_when_fit_returns_and_when_it_raises(run_dir, base):
    config = base[1]
    ds = data.load_dataset(config.data)
    with pytest.raises(FileExistsError, match="already holds checkpoints"):
        train.fit(config, ds, run_dir, log=None)  # raises inside the lock
    assert not (run_dir / rundir.LOCK).exists()
    other = dataclasses.replace(config, optim=dataclasses.replace(config.optim, learning_rate=0.5))
    with pytest.raises(ValueError, match="configuration differs in"):
        train.fit(other, ds, run_dir, resume=True, log=None)
    assert not (run_dir / rundir.LOCK).exists()
    result = []
    with rundir.lock(run_dir):  # another writer (thread) holds it: fit is refused at once, naming it
        t = threading.Thread(target=lambda: result.append(
            _call(lambda: train.fit(config, ds, run_dir, resume=True, log=None))))
        t.start()
        t.join(timeout=120)
        assert isinstance(result[0], FileExistsError) and f"held by pid {os.getpid()}" in str(result[0])
        # readers need no lock: evaluate works while a writer holds it
        assert runs.evaluate(run_dir, which="latest")["epoch"] == 3
    assert checkpoint.latest(run_dir) == 3


def _call(fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 -- handed back to the test's thread
        return e
    return None


# ------------------------------------------------------------------ class 2: no silent wrong numbers
def test_evaluate_on_another_file_uses_the_runs_statistics(run_dir, base, tmp_path, capfd):
    config = base[1]
    shifted = _table()
    shifted = shifted._replace(values=shifted.values + np.float32(3.0) * (np.arange(14) == 1))  # T + 3 degC:
    # the file's own statistics would hide the shift
    path = _csv(tmp_path / "other.csv", shifted)
    out = runs.evaluate(run_dir, which="latest", data_path=path)
    saved = json.loads((run_dir / "stats.json").read_text())
    cfg = dataclasses.replace(config, data=dataclasses.replace(config.data, path=path))
    ds = data.load_dataset(cfg.data, stats=data.Stats(np.float32(saved["mean"]), np.float32(saved["std"])))
    like = train.init_state(cfg, jax.random.PRNGKey(0), len(saved["columns"]))
    state, _ = checkpoint.restore(run_dir, like, which="latest")
    assert out["mae"] == pytest.approx(train.evaluate_split(cfg, state.params, ds, "test"), rel=1e-6)
    own = train.evaluate_split(cfg, state.params, data.load_dataset(cfg.data), "test")
    assert abs(out["mae"] - own) > 1e-3  # the file's own statistics would have given another number
    assert out["data"] == "other than the run's training data (fingerprint differs)"
    assert "other than the run's training data" in capfd.readouterr().err
    same = runs.evaluate(run_dir, which="latest")
    assert same["data"] == "same as training"


@pytest.mark.parametrize("change", ["reordered", "dropped", "renamed"])
def test_evaluate_and_predict_refuse_other_columns_naming_both(run_dir, tmp_path, change):
    import pandas as pd

    t = _table()
    cols = list(t.columns)
    if change == "reordered":
        cols[0], cols[1] = cols[1], cols[0]
    elif change == "dropped":
        cols = cols[:-1]
    frame = pd.DataFrame(t.values, columns=t.columns)[cols]
    if change == "renamed":
        frame = frame.rename(columns={cols[2]: "wind"})
    frame.insert(0, "Date Time", pd.to_datetime(t.times).strftime("%d.%m.%Y %H:%M:%S"))
    path = tmp_path / "other.csv"
    frame.to_csv(path, index=False)
    for fn in (runs.evaluate, runs.predict):  # a Jena-like header is refused by the loader before the run's check
        with pytest.raises(ValueError, match=r"other\.csv: line 1.*header is not the Jena header"):
            fn(run_dir, data_path=str(path))


def test_a_run_on_a_described_csv_refuses_other_columns_naming_both(tmp_path):
    """With a generic (described) CSV the loader cannot know the columns: the run's own check refuses."""
    import pandas as pd

    t = _table(rows=1200)
    cols = ["p (mbar)", "T (degC)", "rh (%)"]
    frame = pd.DataFrame(t.values[:, [0, 1, 4]], columns=cols)
    frame.insert(0, "when", pd.to_datetime(t.times).strftime("%Y-%m-%d %H:%M:%S"))
    frame.to_csv(tmp_path / "mine.csv", index=False)
    d = dataclasses.replace(TINY_DATA, path=str(tmp_path / "mine.csv"), time_column="when",
                            time_format="%Y-%m-%d %H:%M:%S", columns=None, train=(0, 600), val=(600, 900),
                            test=(900, None))
    config = dataclasses.replace(tiny_config(epochs=1, steps=1), data=d)
    train.fit(config, data.load_dataset(d), tmp_path / "run", log=None)
    frame[["when", "T (degC)", "p (mbar)", "rh (%)"]].to_csv(tmp_path / "swapped.csv", index=False)
    for fn in (runs.evaluate, runs.predict):
        with pytest.raises(ValueError, match=r"swapped\.csv: columns \['T \(degC\)', 'p \(mbar\)', 'rh \(%\)'\] "
                                             r"differ from the run's \['p \(mbar\)', 'T \(degC\)', 'rh \(%\)'\]"):
            fn(tmp_path / "run", data_path=str(tmp_path / "swapped.csv"))


@pytest.mark.parametrize("change, what", [
    ("cell", r"in content \(SHA-256"), ("rows", r"rows \(4000 -> 3900\), content"),
    ("train_cell", r"content .*statistics \(training mean/std\)")])
def test_resume_on_changed_data_is_refused(tmp_path, change, what):
    t = _table()
    path = _csv(tmp_path / "jena.csv", t)
    config = tiny_config(epochs=1, steps=1)
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, path=path))
    train.fit(config, data.load_dataset(config.data), tmp_path / "run", log=None)
    values = t.values.copy()
    if change == "cell":
        values[3500, 1] += 1.0
    elif change == "train_cell":
        values[100, 1] += 50.0
    t = t._replace(values=values)
    if change == "rows":
        t = t._replace(values=values[:3900], times=t.times[:3900])
    _csv(tmp_path / "jena.csv", t)
    more = dataclasses.replace(config, train=dataclasses.replace(config.train, epochs=2))
    with pytest.raises(ValueError, match=f"cannot resume .*data differ .*{what}.*trained on .*jena.csv, now"):
        train.fit(more, data.load_dataset(more.data), tmp_path / "run", resume=True, log=None)
    assert checkpoint.latest(tmp_path / "run") == 1 and not (tmp_path / "run" / rundir.LOCK).exists()


def test_resume_of_a_run_without_fingerprint_warns_it_cannot_check(run_dir, base):
    stats = json.loads((run_dir / "stats.json").read_text())
    del stats["fingerprint"]  # as written before the fingerprint existed
    (run_dir / "stats.json").write_text(json.dumps(stats))
    config = dataclasses.replace(base[1], train=dataclasses.replace(base[1].train, epochs=4))
    with pytest.warns(UserWarning, match="no data fingerprint .*cannot check"):
        _, history = train.fit(config, data.load_dataset(config.data), run_dir, resume=True, log=None)
    assert len(history) == 4
    assert runs.evaluate(run_dir, which="latest")["data"].startswith("unknown")


def test_predict_says_exactly_what_it_forecasts(run_dir, base):
    d = base[1].data
    out = runs.predict(run_dir, which="latest")
    rows = d.delay + d.step
    assert out["rows_ahead_of_last_input"] == rows and out["forecast_row"] == out["last_input_row"] + rows
    assert out["hours_ahead"] == pytest.approx(rows / 6)  # 10-minute rows
    assert f"{rows} rows (delay {d.delay} + step {d.step}) after the last input row" in out["forecast_of"]
    assert out["data"] == "same as training"
    sub = next(a for a in cli.build_parser()._actions if a.dest == "command")
    assert "DELAY + STEP rows after" in next(a.help for a in sub._choices_actions if a.dest == "predict")


# ------------------------------------------------------------------ class 4: damaged checkpoints fall back
def _data_files(ckpt):
    """The files of orbax's OCDBT store under ckpt/state, smallest first (small leaves live in state/d)."""
    files = sorted((ckpt / "state").rglob("*"), key=lambda p: p.stat().st_size if p.is_file() else -1)
    return [f for f in files if f.is_file() and (f.parent.name == "d" or f.name == "manifest.ocdbt")]


def _truncate(ckpt):
    for f in _data_files(ckpt):
        f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])


def _garbage(ckpt):
    for f in _data_files(ckpt):
        f.write_bytes(os.urandom(f.stat().st_size))


def _metrics(ckpt, text):
    (ckpt / "metrics").mkdir(exist_ok=True)
    (ckpt / "metrics" / "metrics").write_text(text)


def _flip(ckpt):  # one byte: zstd may still decode, to wrong numbers
    f = _data_files(ckpt)[-1]
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))


def _empty(ckpt):
    for f in _data_files(ckpt):
        f.write_bytes(b"")


DAMAGE = {
    "truncated-data": _truncate, "garbage-data": _garbage, "flipped-byte": _flip, "empty-data": _empty,
    "no-state": lambda c: shutil.rmtree(c / "state"),
    # orbax's pytree metadata (what tree.json was) and the meta item with the leaves' digests
    "tree-not-json": lambda c: (c / "state" / "_METADATA").write_text("[{"),
    "tree-binary": lambda c: (c / "state" / "_METADATA").write_bytes(b"\xff\xfe\x00"),
    "tree-wrong-form": lambda c: (c / "state" / "_METADATA").write_text('{"leaf": 1}'),
    "meta-binary": lambda c: (c / "meta" / "metadata").write_bytes(b"\x80abc"),
    "meta-not-json": lambda c: (c / "meta" / "metadata").write_text("nope"),
    "meta-without-digests": lambda c: (c / "meta" / "metadata").write_text('{"epoch": 3, "history": []}'),
    # orbax's metrics item (the best-epoch record): orbax reads every step's when a manager opens
    "metrics-not-json": lambda c: _metrics(c, "{not json"),
    "metrics-empty": lambda c: _metrics(c, ""),
    "metrics-other-key": lambda c: _metrics(c, "{}"),
    "metrics-other-epoch": lambda c: _metrics(c, '{"best": 1}'),
}


def _host_leaves(state):
    return [np.asarray(x) for x in jax.tree.leaves(state)]


# a flipped byte may land where the restore never reads (orbax's OCDBT store keeps more than the leaves), so
# that case is below; every other damage is always one the restore meets
@pytest.mark.parametrize("damage", [d for d in DAMAGE if d != "flipped-byte"])
def test_damaged_latest_checkpoint_falls_back_to_the_newest_readable(run_dir, damage, capfd):
    DAMAGE[damage](run_dir / "checkpoints" / "epoch_0003")
    with pytest.warns(UserWarning, match=r"damaged checkpoint.*epoch_0003.*falling back .* epoch 2"):
        _, _, _, meta = runs.load_run(run_dir, which="latest")
    assert meta["epoch"] == 2
    _no_traceback(capfd)


def test_a_users_folder_holding_a_copied_run_is_no_run_folder(run_dir, tmp_path):
    # only a study (reproduce) keeps runs in subfolders; a train run would overwrite the user's config.json
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.json").write_text('{"mine": true}')
    shutil.copytree(run_dir, work / "oldrun")
    with pytest.raises(FileExistsError, match=r"work: holds files that are not a jena-rnn run \(config.json"):
        rundir.check_folder(work, "forecast")
    rundir.check_folder(work, "reproduce")  # a study of runs is still accepted
    assert (work / "config.json").read_text() == '{"mine": true}'


def test_orbax_closed_loop_noise_after_damage_is_dropped_and_nothing_else(run_dir, monkeypatch):
    # orbax failing on damaged files may leave tensorstore reads that call its closed event loop later;
    # Python would print that as an "Exception ignored" traceback after our one warning line
    import gc

    gc.collect()  # an earlier test's orbax garbage reports itself now, not under the raw hook below
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", seen.append)
    _garbage(run_dir / "checkpoints" / "epoch_0003")
    with pytest.warns(UserWarning, match=r"damaged checkpoint.*epoch_0003"):
        runs.load_run(run_dir, which="latest")
    closed, other = (types.SimpleNamespace(exc_value=e) for e in (RuntimeError("Event loop is closed"),
                                                                     RuntimeError("something else")))
    sys.unraisablehook(closed)
    sys.unraisablehook(other)
    # judged on the two reports sent here: a real closed-loop report of an earlier test's orbax work may still
    # reach the raw hook before the filter is installed (CI saw one), and is no concern of this test
    assert [x for x in seen if x is closed or x is other] == [other]


def test_a_flipped_byte_never_gives_other_numbers(run_dir, capfd):
    # either the restore sees the damage (warns, falls back to epoch 2) or it read none of the flipped
    # bytes and returns exactly the saved leaves: never numbers that differ from what was saved
    before = _host_leaves(runs.load_run(run_dir, which="latest")[2])
    DAMAGE["flipped-byte"](run_dir / "checkpoints" / "epoch_0003")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, _, state, meta = runs.load_run(run_dir, which="latest")
    if any("damaged checkpoint" in str(w.message) and "epoch_0003" in str(w.message) for w in caught):
        assert meta["epoch"] == 2
    else:
        assert meta["epoch"] == 3 and all(np.array_equal(a, b) for a, b in zip(before, _host_leaves(state)))
    _no_traceback(capfd)


def test_a_leaf_that_decodes_to_other_numbers_is_damage(run_dir):
    # orbax's zstd chunks can decode to wrong numbers without an error: the recorded digest catches it
    meta_file = run_dir / "checkpoints" / "epoch_0003" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    path = sorted(meta["leaves"])[0]
    meta["leaves"][path]["sha256"] = "0" * 64  # as if the stored bytes had decoded to other values
    meta_file.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match=r"epoch_0003: leaf .* differs from what was saved.*falling back .* epoch 2"):
        assert runs.load_run(run_dir, which="latest")[3]["epoch"] == 2


# (a checkpoint of the older layout without files.json: tests/test_legacy_checkpoint.py)


def test_evaluate_falls_back_and_says_which_epoch(run_dir, capfd):
    _garbage(run_dir / "checkpoints" / "epoch_0003")
    with pytest.warns(UserWarning, match="epoch_0003"):
        assert runs.evaluate(run_dir, which="latest")["epoch"] == 2
    _no_traceback(capfd)


def test_damaged_best_falls_back_to_the_newest_readable(run_dir):
    best = checkpoint.best(run_dir)
    _garbage(run_dir / "checkpoints" / f"epoch_{best:04d}")
    want = 3 if best != 3 else 2
    with pytest.warns(UserWarning, match=f"epoch_{best:04d}.*falling back .* epoch {want}"):
        assert runs.load_run(run_dir, which="best")[3]["epoch"] == want


@pytest.mark.parametrize("text", ["{not json", '{"best": 1}'])
def test_a_damaged_best_record_names_it_falls_back_and_training_goes_on(run_dir, base, text, capfd):
    # one step's damaged metrics file must not stop orbax's manager for every other step (it reads them all)
    best = checkpoint.best(run_dir)
    _metrics(run_dir / "checkpoints" / f"epoch_{best:04d}", text)
    with pytest.warns(UserWarning, match=f"epoch_{best:04d}/metrics/metrics.*falling back"):
        assert runs.load_run(run_dir, which="best")[3]["epoch"] != best
    config = dataclasses.replace(base[1], train=dataclasses.replace(base[1].train, epochs=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, history = train.fit(config, data.load_dataset(config.data), run_dir, resume=True, log=None)
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and checkpoint.latest(run_dir) == 4
    kept = (run_dir / "checkpoints" / f"epoch_{best:04d}").is_dir()  # a damaged one is never deleted:
    assert kept or list((run_dir / "checkpoints").glob(f"damaged-epoch_{best:04d}.*"))  # kept, or set aside
    _no_traceback(capfd)


# (LATEST/BEST pointers exist in the older layout only: tests/test_legacy_checkpoint.py)


def test_resume_past_a_damaged_checkpoint_sets_it_aside(run_dir, base, capfd):
    _truncate(run_dir / "checkpoints" / "epoch_0003")
    config = dataclasses.replace(base[1], train=dataclasses.replace(base[1].train, epochs=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _, history = train.fit(config, data.load_dataset(config.data), run_dir, resume=True, log=None)
    text = " ".join(str(w.message) for w in caught)
    assert "epoch_0003" in text and "resuming" in text and "set aside as damaged-epoch_0003" in text
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and checkpoint.latest(run_dir) == 4
    assert len(list((run_dir / "checkpoints").glob("damaged-epoch_0003.*"))) == 1  # kept, not deleted
    _no_traceback(capfd)


def test_no_readable_checkpoint_is_one_clear_cli_line(run_dir, capsys):
    for ckpt in (run_dir / "checkpoints").glob("epoch_*"):
        _garbage(ckpt)
    with pytest.raises(SystemExit) as exc, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cli.main(["evaluate", str(run_dir), "--which", "latest"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1
    assert err[0].startswith("jena-rnn: error: no readable 'latest' checkpoint in run directory") and "epoch_0002" in err[0]


# ------------------------------------------------------------------ class 4: damaged JSON files name themselves
def _edit_config(fn):
    def apply(run_dir):
        cfg = json.loads((run_dir / "config.json").read_text())
        fn(cfg)
        (run_dir / "config.json").write_text(json.dumps(cfg))
    return apply


BAD_FILES = {
    "config-not-json": (lambda r: (r / "config.json").write_text("{'data': "), r"config.json: not valid JSON \(line 1"),
    "config-binary": (lambda r: (r / "config.json").write_bytes(b"\xff\xd8\xff"), r"config.json: not UTF-8"),
    "config-a-list": (lambda r: (r / "config.json").write_text("[]"), r"config.json: expected a JSON object"),
    "config-unknown-field": (_edit_config(lambda c: c["data"].update(colour="red")),
                             r"config.json: unknown field data.colour"),
    "config-missing-section": (_edit_config(lambda c: c.pop("model")), r"config.json: field 'model' is missing"),
    "config-missing-field": (_edit_config(lambda c: c["data"].pop("lookback")),
                             r"config.json: field data.lookback is missing"),
    "config-wrong-type": (_edit_config(lambda c: c["data"].update(lookback="120")),
                          r"config.json: field data.lookback must be int, got '120'"),
    "config-layer-wrong-type": (_edit_config(lambda c: c["model"]["layers"][0].update(units=8.5)),
                                r"config.json: field model.layers\[0\].units must be int, got 8.5"),
    "config-bad-value": (_edit_config(lambda c: c["model"]["layers"][0].update(cell="cnn")),
                         r"config.json: LayerConfig.cell must be one of"),
    "stats-not-json": (lambda r: (r / "stats.json").write_text("{"), r"stats.json: not valid JSON"),
    "stats-binary": (lambda r: (r / "stats.json").write_bytes(b"\x00\x9f"), r"stats.json: not UTF-8"),
    "stats-missing-mean": (lambda r: (r / "stats.json").write_text('{"columns": ["a"], "target_col": 0}'),
                           r"stats.json: expected columns, target_col and one mean and std per column"),
}


@pytest.mark.parametrize("bad", list(BAD_FILES), ids=list(BAD_FILES))
@pytest.mark.parametrize("reader", ["evaluate", "predict"])
def test_damaged_run_files_are_one_error_naming_the_file(run_dir, bad, reader):
    damage, message = BAD_FILES[bad]
    damage(run_dir)
    with pytest.raises(ValueError, match=message):
        getattr(runs, reader)(run_dir, which="latest")


@pytest.mark.parametrize("bad", ["config-not-json", "config-binary", "config-unknown-field", "config-wrong-type",
                                 "stats-not-json"])
def test_resume_with_damaged_run_files_names_the_file(run_dir, base, bad):
    damage, message = BAD_FILES[bad]
    damage(run_dir)
    config = dataclasses.replace(base[1], train=dataclasses.replace(base[1].train, epochs=4))
    with pytest.raises(ValueError, match=message):
        train.fit(config, data.load_dataset(config.data), run_dir, resume=True, log=None)
    assert not (run_dir / rundir.LOCK).exists()


def test_damaged_history_json_does_not_stop_evaluate_or_resume(run_dir, base):
    (run_dir / "history.json").write_bytes(b"\xff\x00 not json")  # a report only: meta.json holds the history
    assert runs.evaluate(run_dir, which="latest")["epoch"] == 3
    config = dataclasses.replace(base[1], train=dataclasses.replace(base[1].train, epochs=4))
    _, history = train.fit(config, data.load_dataset(config.data), run_dir, resume=True, log=None)
    assert len(json.loads((run_dir / "history.json").read_text())) == len(history) == 4


# ------------------------------------------------------------------ found by a review
def test_a_folder_of_someone_elses_files_is_refused_and_left_intact(tmp_path, base):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"my": 1}')
    (out / "history.csv").write_text("mine\n")
    with pytest.raises(FileExistsError, match=r"mine: holds files that are not a jena-rnn run \(config\.json, "
                                              r"history\.csv\)"):
        train.fit(base[1], data.load_dataset(base[1].data), out, log=None)
    assert (out / "config.json").read_text() == '{"my": 1}' and sorted(p.name for p in out.iterdir()) == [
        "config.json", "history.csv"]


@pytest.mark.parametrize("out, match", [("", r"give a new or empty folder, not the current one"),
                                        ("a-file", r"a-file: is a file, not a run directory")])
def test_the_current_folder_or_a_file_is_no_run_directory(tmp_path, base, monkeypatch, out, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("keep me")
    with pytest.raises(FileExistsError, match=match):
        train.fit(base[1], data.load_dataset(base[1].data), out, log=None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"] and (tmp_path / "a-file").read_text() == "keep me"


def test_a_new_run_directory_is_marked_as_ours(run_dir):
    assert json.loads((run_dir / rundir.MARKER).read_text())["written_by"] == "jena_rnn"


@pytest.mark.parametrize("field, value, match", [
    ("std", -5.0, r"column 'T \(degC\)' has mean .* and std -5\.0"),
    ("std", 0.0, r"column 'T \(degC\)' has mean .* and std 0\.0"),
    ("mean", float("nan"), r"column 'T \(degC\)' has mean nan")])
def test_edited_statistics_are_refused_not_used(run_dir, field, value, match):
    stats = json.loads((run_dir / "stats.json").read_text())
    stats[field][1] = value
    (run_dir / "stats.json").write_text(json.dumps(stats))
    for fn in (runs.evaluate, runs.predict):
        with pytest.raises(ValueError, match=r"stats\.json: " + match):
            fn(run_dir)


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["data"].update(target="p (mbar)"), r"config\.json: target 'p \(mbar\)' differs from the one the run "
                                                     r"was trained on, 'T \(degC\)'"),
    (lambda c: c["data"].update(lookback=240), r"config\.json differs in \['data'\] from the configuration saved with "
                                               r"checkpoint epoch \d: was it edited\?")])
def test_an_edited_config_is_refused_by_evaluate_and_predict(run_dir, edit, match):
    config = json.loads((run_dir / "config.json").read_text())
    edit(config)
    (run_dir / "config.json").write_text(json.dumps(config))
    for fn in (runs.evaluate, runs.predict):
        with pytest.raises(ValueError, match=match):
            fn(run_dir)


def test_resume_without_checkpoints_says_it_starts_afresh(run_dir, base):
    shutil.rmtree(run_dir / "checkpoints")
    with pytest.warns(UserWarning, match=r"has a history\.json but no checkpoint to resume from: starting afresh"):
        _, history = train.fit(base[1], data.load_dataset(base[1].data), run_dir, resume=True, log=None)
    assert [h["epoch"] for h in history] == [1, 2, 3]


# (a broken LATEST pointer of the older layout warns once on resume: tests/test_legacy_checkpoint.py)


def test_resume_with_nothing_left_to_train_says_so(run_dir, base):
    lines = []
    train.fit(base[1], data.load_dataset(base[1].data), run_dir, resume=True, log=lines.append)
    assert lines == ["nothing to train: the run already has 3 epochs (epochs=3); raise --epochs to continue it"]


# ------------------------------------------------------------------ found by a second review
def test_one_kind_of_run_never_writes_into_anothers_folder(run_dir, base, tmp_path):
    from jena_rnn import sweep

    ds = data.load_dataset(base[1].data)
    stats = (run_dir / "stats.json").read_text()
    with pytest.raises(FileExistsError, match=r"run: holds a forecast run, not a sweep one"):
        sweep.run([base[1]], ds, run_dir, log=None)
    assert (run_dir / "stats.json").read_text() == stats
    other = tmp_path / "sweep_out"
    other.mkdir()
    (other / rundir.MARKER).write_text(json.dumps({"written_by": "jena_rnn", "kind": "sweep"}))
    with pytest.raises(FileExistsError, match=r"sweep_out: holds a sweep run, not a forecast one"):
        train.fit(base[1], ds, other, log=None)


def test_a_sweep_without_its_manifest_is_not_resumed_unchecked(tmp_path, base):
    from jena_rnn import sweep

    out = tmp_path / "sw"
    (out / "groups" / "g0").mkdir(parents=True)
    (out / rundir.MARKER).write_text(json.dumps({"written_by": "jena_rnn", "kind": "sweep"}))
    with pytest.raises(ValueError, match=r"sw: holds trained groups but no sweep\.json"):
        sweep.run([base[1]], data.load_dataset(base[1].data), out, resume=True, log=None)


@pytest.mark.parametrize("argv, expected", [
    (["--lr", "inf"], "OptimConfig.learning_rate must be positive and finite, got inf"),
    (["--lr", "1e-3,1e-3"], "--lr: 0.001 is given twice in '1e-3,1e-3'")])
def test_sweep_values_that_cannot_be_members_are_refused(tmp_path, capsys, argv, expected):
    with pytest.raises(SystemExit):
        cli.main(["sweep", *argv, "--out", str(tmp_path / "sw"), "--synthetic-rows", "4000"])
    assert expected in capsys.readouterr().err and not (tmp_path / "sw").exists()
