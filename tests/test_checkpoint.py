"""Checkpoint round trips, latest/best and pruning, error messages, and crash safety with real subprocesses."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import _ckpt_writer as writer
from jena_rnn import atomic
from jena_rnn.runtime import checkpoint, report

REPO = Path(__file__).resolve().parents[1]
CONFIG = {"model": {"cell": "gru", "hidden_size": 5}, "optim": {"learning_rate": 1e-3}}


class TrainState(NamedTuple):  # the shape of train.TrainState, defined here so this test stands alone
    params: dict
    opt_state: optax.OptState
    step: jax.Array
    key: jax.Array


def make_state(key, typed_key=False):
    """A realistic state: stacked and bidirectional layers, a head, rmsprop state after one update."""
    k = jax.random.split(key, 6)
    params = {
        "layers": [
            {"w_x": jax.random.normal(k[0], (3, 15)), "w_h": jax.random.normal(k[1], (5, 15)),
             "b_x": jnp.zeros(15), "b_h": jnp.ones(15)},
            {"forward": {"w_x": jax.random.normal(k[2], (5, 20)), "b": jnp.arange(20.0)},
             "backward": {"w_x": jax.random.normal(k[3], (5, 20)), "b": -jnp.arange(20.0)}},
        ],
        "head": {"w": jax.random.normal(k[4], (10, 1)), "b": jnp.zeros(1)},
    }
    opt = optax.inject_hyperparams(optax.rmsprop)(learning_rate=1e-3, decay=0.9, eps=1e-7)
    opt_state = opt.init(params)
    grads = jax.tree.map(lambda p: jnp.full_like(p, 0.5), params)
    _, opt_state = opt.update(grads, opt_state, params)
    state_key = jax.random.key(7) if typed_key else jax.random.PRNGKey(7)
    return TrainState(params, opt_state, jnp.int32(1), state_key)


def assert_same(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert type(x) is type(y)
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            assert x.dtype == y.dtype
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("typed_key", [False, True], ids=["raw-key", "typed-key"])
def test_round_trip_exact(tmp_path, typed_key):
    state = make_state(jax.random.PRNGKey(0), typed_key)
    history = [{"epoch": 1, "loss": 0.1 + 0.2, "val_mae": float(np.float32(1 / 3))}]
    threads = set(threading.enumerate())
    path = checkpoint.save(tmp_path, state, epoch=1, history=history, config=CONFIG, is_best=True)
    assert path == tmp_path / "checkpoints" / "epoch_0001"
    assert {t for t in threading.enumerate() if t.is_alive()} <= threads  # synchronous: nothing left running
    assert (path / "commit_success.txt").is_file() and not (path / "tree.json").exists()  # orbax's layout
    like = make_state(jax.random.PRNGKey(1), typed_key)  # different values, same structure
    restored, meta = checkpoint.restore(tmp_path, like)
    assert_same(restored, state)
    assert type(restored.opt_state) is type(state.opt_state)
    assert meta == {"epoch": 1, "history": history, "config": CONFIG}
    abstract, _ = checkpoint.restore(tmp_path, jax.eval_shape(lambda: like))
    np.testing.assert_array_equal(abstract.params["head"]["w"], state.params["head"]["w"])


def test_latest_best_pruning_and_run_files(tmp_path):
    state = make_state(jax.random.PRNGKey(0))
    assert checkpoint.latest(tmp_path) is None and checkpoint.best(tmp_path) is None
    history = []
    for epoch in range(1, 6):
        history.append({"epoch": epoch, "val_mae": 1.0 if epoch != 2 else 0.5})
        step_state = state._replace(step=jnp.int32(epoch))
        checkpoint.save(tmp_path, step_state, epoch=epoch, history=history, config=CONFIG,
                        is_best=epoch == 2, keep=2)
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == ["epoch_0002", "epoch_0004", "epoch_0005"]  # the newest 2 and the best
    assert (checkpoint.latest(tmp_path), checkpoint.best(tmp_path)) == (5, 2)
    best_state, best_meta = checkpoint.restore(tmp_path, state, which="best")
    assert int(best_state.step) == 2 and best_meta["epoch"] == 2 and len(best_meta["history"]) == 2
    assert int(checkpoint.restore(tmp_path, state, which=4)[0].step) == 4
    with pytest.raises(FileNotFoundError, match="epoch_0003|complete epochs: \\[2, 4, 5\\]"):
        checkpoint.restore(tmp_path, state, which=3)
    with pytest.raises(FileExistsError, match="epoch_0004 is already committed"):
        checkpoint.save(tmp_path, state, epoch=4, history=[], config=CONFIG, is_best=True)
    assert int(checkpoint.restore(tmp_path, state, which=4)[0].step) == 4
    assert json.loads((tmp_path / "config.json").read_text()) == CONFIG
    assert json.loads((tmp_path / "history.json").read_text()) == history


def test_mismatch_and_missing_errors(tmp_path):
    state = make_state(jax.random.PRNGKey(0))
    checkpoint.save(tmp_path, state, epoch=0, history=[], config=CONFIG, is_best=False)
    wrong_shape = state._replace(params={**state.params, "head": {"w": jnp.zeros((10, 2)), "b": jnp.zeros(1)}})
    with pytest.raises(ValueError, match=r".params\['head'\]\['w'\].*\(10, 1\).*\(10, 2\)"):
        checkpoint.restore(tmp_path, wrong_shape)
    extra_leaf = state._replace(params={**state.params, "extra": jnp.zeros(3)})
    with pytest.raises(ValueError, match=r"only in the target \[\"\.params\['extra'\]\"\]"):
        checkpoint.restore(tmp_path, extra_leaf)
    missing = tmp_path / "no_such_run"
    with pytest.raises(FileNotFoundError, match=str(missing)):
        checkpoint.restore(missing, state)


def test_leftovers_and_stray_directories_are_survivable(tmp_path):
    state = make_state(jax.random.PRNGKey(0))
    for epoch in (1, 2):
        checkpoint.save(tmp_path, state._replace(step=jnp.int32(epoch)), epoch=epoch, history=[],
                        config=CONFIG, is_best=False)
    root = tmp_path / "checkpoints"
    partial = root / "epoch_0003.orbax-checkpoint-tmp-1234" / "state"  # orbax's save that died half way
    partial.mkdir(parents=True)
    (partial / "garbage").write_bytes(b"\0" * 100)
    ours = root / atomic.tmp_name("epoch_0003")  # the older layout's save of this process, left by a failure
    ours.mkdir()
    (root / ".tmp-epoch_0003-123-abc").mkdir()  # not the project's pattern: a user's, never deleted
    (root / "epoch_0009").mkdir()  # not produced by save, but an incomplete dir must be ignored
    (root / "epoch_0008").mkdir()
    (root / "epoch_0008" / "notes.txt").write_text("mine")  # nor is someone else's
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert checkpoint.latest(tmp_path) == 2
        assert int(checkpoint.restore(tmp_path, state)[0].step) == 2
    checkpoint.save(tmp_path, state, epoch=3, history=[], config=CONFIG, is_best=False)
    assert not list(root.glob("*orbax-checkpoint-tmp*")) and not ours.exists() and checkpoint.latest(tmp_path) == 3
    assert (root / ".tmp-epoch_0003-123-abc").is_dir() and (root / "epoch_0009").is_dir()
    assert (root / "epoch_0008" / "notes.txt").read_text() == "mine"
    with pytest.raises(FileExistsError, match="epoch_0008 exists but is no checkpoint of this run"):
        checkpoint.save(tmp_path, state, epoch=8, history=[], config=CONFIG, is_best=False)
    assert (root / "epoch_0008" / "notes.txt").read_text() == "mine"


def test_resume_matches_uninterrupted_run(tmp_path):
    """Stopping after epoch 2, restoring, and continuing gives bit-identical params and history."""
    opt = optax.inject_hyperparams(optax.rmsprop)(learning_rate=1e-2, decay=0.9, eps=1e-7)
    x = jax.random.normal(jax.random.PRNGKey(3), (16, 3))

    @jax.jit
    def epoch_fn(state):
        key, sub = jax.random.split(state.key)
        y = x @ jnp.array([1.0, -2.0, 0.5]) + 0.1 * jax.random.normal(sub, (16,))
        loss, grads = jax.value_and_grad(lambda p: jnp.mean(jnp.abs(x @ p["w"] - y)))(state.params)
        updates, opt_state = opt.update(grads, state.opt_state, state.params)
        return TrainState(optax.apply_updates(state.params, updates), opt_state, state.step + 1, key), loss

    def run(state, history, start, stop, run_dir):
        for epoch in range(start, stop):
            state, loss = epoch_fn(state)
            history = history + [{"epoch": epoch, "loss": float(loss)}]
            checkpoint.save(run_dir, state, epoch=epoch, history=history, config=CONFIG, is_best=False)
        return state, history

    params = {"w": jnp.zeros(3)}
    init = TrainState(params, opt.init(params), jnp.int32(0), jax.random.PRNGKey(0))
    full_state, full_history = run(init, [], 1, 5, tmp_path / "full")
    run(init, [], 1, 3, tmp_path / "resumed")
    state, meta = checkpoint.restore(tmp_path / "resumed", init)
    state, history = run(state, meta["history"], meta["epoch"] + 1, 5, tmp_path / "resumed")
    assert_same(state, full_state)
    assert history == full_history


def start_writer(run_dir, n_floats, *crash):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, str(Path(writer.__file__)), str(run_dir), str(n_floats), *map(str, crash)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def assert_restores_epoch(run_dir, n_floats, epoch):
    with warnings.catch_warnings():  # the LATEST pointer must be intact: no fallback warning
        warnings.simplefilter("error")
        restored, meta = checkpoint.restore(run_dir, writer.make_state(0, n_floats))
    assert meta["epoch"] == epoch and len(meta["history"]) == epoch
    jax.tree.map(np.testing.assert_array_equal, restored, writer.make_state(epoch, n_floats))


@pytest.mark.parametrize("stage, crash, latest, best", [
    ("before_save", 2, 1, 1), ("before_commit", 2, 1, 1), ("before_prune", 3, 3, 3), ("before_run_files", 2, 2, 2)])
def test_crash_at_each_commit_stage_keeps_last_good_checkpoint(tmp_path, stage, crash, latest, best):
    proc = start_writer(tmp_path, 1000, stage, crash)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == writer.CRASH_CODE, err
    assert out.split("\n")[:-1] == [f"SAVED {e}" for e in range(1, crash)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (checkpoint.latest(tmp_path), checkpoint.best(tmp_path)) == (latest, best)
    assert_restores_epoch(tmp_path, 1000, latest)
    if stage == "before_prune":  # killed before orbax deleted epoch 1: the next save deletes it
        assert (tmp_path / "checkpoints" / "epoch_0001").is_dir()
    # Resuming saves epoch latest + 1, past the uncommitted temporary step left by the crash.
    nxt = latest + 1
    checkpoint.save(tmp_path, writer.make_state(nxt, 1000), epoch=nxt, history=[{}] * nxt, config={},
                    is_best=True)
    assert_restores_epoch(tmp_path, 1000, nxt)
    assert not list((tmp_path / "checkpoints").glob("*orbax-checkpoint-tmp*"))  # the killed writer's: stale
    kept = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert kept == [f"epoch_{nxt - 1:04d}", f"epoch_{nxt:04d}"]


@pytest.mark.parametrize("delay", [0.0, 0.13, 0.31])
def test_sigkill_mid_run_leaves_a_readable_checkpoint(tmp_path, delay):
    n_floats = 1_000_000  # 4 MB per save, so a kill often lands inside one
    proc = start_writer(tmp_path, n_floats)
    try:
        assert proc.stdout.readline() == "SAVED 1\n", proc.stderr.read() if proc.poll() else ""
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        out, _ = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == -signal.SIGKILL
    last_printed = int(out.split()[-1]) if out.split() else 1
    epoch = checkpoint.latest(tmp_path)
    # "SAVED n" is printed after the commit, so the checkpoint is n or a later one committed since.
    assert epoch in (last_printed, last_printed + 1)
    assert_restores_epoch(tmp_path, n_floats, epoch)


def test_every_process_checks_before_process_0_commits(tmp_path, monkeypatch):
    """Under jax.distributed a process checking after process 0's commit would refuse alone and leave its
    partners waiting: ``save`` meets the others at a barrier after its check and before any write."""
    from jena_rnn.runtime import distributed
    seen = []

    def barrier(name):
        seen.append((name, checkpoint.latest(tmp_path)))  # nothing of this epoch is committed yet
    monkeypatch.setattr(distributed, "barrier", barrier)
    state = make_state(jax.random.PRNGKey(0))
    checkpoint.save(tmp_path, state, epoch=1, history=[], config=CONFIG, is_best=True)
    checkpoint.save(tmp_path, state, epoch=2, history=[], config=CONFIG, is_best=False)
    assert seen == [("checkpoint.save: epoch 1 checked", None), ("checkpoint.save: epoch 2 checked", 1)]
    with pytest.raises(FileExistsError, match="already committed"):  # refused before the barrier
        checkpoint.save(tmp_path, state, epoch=2, history=[], config=CONFIG, is_best=False)
    assert len(seen) == 2
    # one process alone (process 0 exporting a sweep member): no barrier to wait at
    checkpoint.save(tmp_path / "alone", state, epoch=1, history=[], config=CONFIG, is_best=True, collective=False)
    assert len(seen) == 2 and checkpoint.latest(tmp_path / "alone") == 1


def test_the_one_atomic_writer_respects_the_umask_and_leaves_no_temporary(tmp_path):

    old = os.umask(0o022)
    try:
        report.write_json(tmp_path / "stats.json", {"a": 1})
        atomic.write_atomic(tmp_path / "history.csv", "epoch\n1\n")
    finally:
        os.umask(old)
    assert {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()} == {"stats.json": 0o644,
                                                                               "history.csv": 0o644}
