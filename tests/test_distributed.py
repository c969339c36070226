"""Sharding on a simulated 4-device CPU mesh, and on 2 processes: sharded training gives the single-device losses.

The device count is fixed when JAX starts, so the checks run in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``; the multi-process check launches two
``jena-rnn sweep`` processes that meet through ``jax.distributed`` on localhost (gloo collectives).
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from jena_rnn.cli import values
from jena_rnn.runtime import distributed

SCRIPT = textwrap.dedent('''
    import dataclasses, jax, numpy as np
    jax.config.update("jax_default_matmul_precision", "highest")
    from jena_rnn import data, sweep
    from jena_rnn.runtime import distributed
    from tiny import TINY_DATA, tiny_config
    assert jax.device_count() == 4, jax.devices()
    ds = data.load_dataset(TINY_DATA)

    def member(lr, rd, seed):
        cfg = tiny_config(units=8, epochs=2, steps=2, seed=seed, recurrent_dropout=rd)
        return dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, learning_rate=lr))

    configs = [member(1e-3, 0.0, 0), member(3e-3, 0.2, 1), member(1e-2, 0.5, 2), member(3e-2, 0.1, 3)]
    names = ["a", "b", "c", "d"]

    def losses(mesh, chunk="auto"):
        sw, results = sweep.fit_group(configs, names, ds, mesh=mesh, chunk=chunk, log=None)
        return sw, np.array([[(h["train_mae"], h["val_mae"]) for h in r["history"]] for r in results])

    _, ref = losses(None)
    # members per device run as lax.map chunks under shard_map; "auto" splits 4 members over the 4 devices
    sw, got = losses(distributed.make_mesh({"sweep": 2}, jax.devices()[:2]), chunk=1)
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert len(sw.train.params["head"]["w"].sharding.device_set) == 2
    sw, got = losses("auto")
    np.testing.assert_allclose(got, ref, rtol=1e-4)
    assert tuple(sw.train.params["head"]["w"].sharding.spec) == ("sweep",)
    print("ok sweep chunks and auto", flush=True)
    for shape, spec in (({"sweep": 4}, ("sweep",)), ({"data": 4}, ()), ({"sweep": 2, "data": 2}, ("sweep",))):
        mesh = distributed.make_mesh(shape)
        sw, got = losses(mesh)
        np.testing.assert_allclose(got, ref, rtol=1e-4, err_msg=str(shape))
        leaf = sw.train.params["head"]["w"]
        assert tuple(leaf.sharding.spec) == spec and len(leaf.sharding.device_set) == 4, (shape, leaf.sharding)
        print("ok", shape, flush=True)
    for shape, cfgs, msg in (({"data": 4}, [dataclasses.replace(c, data=dataclasses.replace(c.data, batch_size=18))
                                              for c in configs], "batch size 18 is not divisible by the 4"),
                             ({"sweep": 4}, configs[:3], "3 sweep members cannot be split over the 4")):
        try:
            sweep.fit_group(cfgs, names[:len(cfgs)], ds, mesh=distributed.make_mesh(shape), log=None)
        except ValueError as e:
            assert msg in str(e), e
        else:
            raise AssertionError(f"no error for {shape}")
    print("ok errors", flush=True)

    # single-model data parallelism (shard_map over "data"): the single-device history, checkpoints included
    from jena_rnn.forecast import train
    import tempfile
    cfg = tiny_config(units=8, epochs=2, steps=3)
    _, ref_hist = train.fit(cfg, ds, log=None)
    mesh = distributed.make_mesh({"data": 4})  # 16 rows over all 4 devices
    assert distributed.axis_size(mesh, "data") == 4, mesh
    with tempfile.TemporaryDirectory() as d:
        state, hist = train.fit(cfg, ds, d, mesh=mesh, log=None)
        for a, b in zip(ref_hist, hist):
            np.testing.assert_allclose([a["train_mae"], a["val_mae"]], [b["train_mae"], b["val_mae"]], rtol=1e-5)
        assert len(state.params["head"]["w"].sharding.device_set) == 4
        full = train.evaluate_split(cfg, state.params, ds, "test")
        np.testing.assert_allclose(train.evaluate_split(cfg, state.params, ds, "test", mesh=mesh), full, rtol=1e-5)
        from jena_rnn.forecast import runs  # `jena-rnn evaluate` splits the windows too
        np.testing.assert_allclose(runs.evaluate(d, mesh=mesh)["mae"], runs.evaluate(d, mesh=None)["mae"], rtol=1e-5)
    from jena_rnn.config import lecture_config
    assert distributed.axis_size(runs.resolve_mesh(lecture_config("gru")), "data") == 4
    assert runs.resolve_mesh(lecture_config("mlp")) is None
    # dropout: each device keeps its rows of the whole batch's masks, so any device count gives one history
    drop = tiny_config(units=8, epochs=2, steps=3, dropout=0.3, recurrent_dropout=0.5)
    _, h1 = train.fit(drop, ds, log=None)
    for m in (mesh, distributed.make_mesh({"data": 2}, jax.devices()[:2])):
        _, h2 = train.fit(drop, ds, mesh=m, log=None)
        for a, b in zip(h1, h2):
            np.testing.assert_allclose([a["train_mae"], a["val_mae"]], [b["train_mae"], b["val_mae"]], rtol=1e-5)
    # the largest device count that divides the batch, with at least 16 rows per device
    assert [distributed.axis_size(distributed.auto_mesh(b), "data") for b in (128, 48, 32, 16)] == [4, 3, 2, 1]
    assert distributed.auto_mesh(33) is None and distributed.auto_mesh(16) is None
    try:
        train.make_train_step(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, batch_size=18)),
                              ds.train, ds.target_col, mesh=mesh)
    except ValueError as e:
        assert "batch size 18 is not divisible by the 4" in str(e), e
    else:
        raise AssertionError("no error for batch 18 over 4 devices")
    print("ok data parallel", flush=True)

    # the IMDB classifier data-parallel: the single-device history (weighted BCE over padded batches, dropout)
    from jena_rnn import imdb
    from jena_rnn.data import text
    from jena_rnn.config import LayerConfig
    with tempfile.TemporaryDirectory() as d:
        root = text.write_synthetic_imdb(d + "/aclImdb", n_train=150, n_test=40, mean_len=12, vocab=40)
        icfg = imdb.IMDBConfig(data=str(root), max_features=50, maxlen=16, embed_dim=4, epochs=2, batch_size=16,
                               layers=(LayerConfig(cell="lstm", units=4, recurrent_dropout=0.3),))
        splits = imdb.prepare(icfg)  # 120 training reviews: the last batch is padded (weights 0)
        _, ref_h = imdb.fit(icfg, splits, log=None)
        _, dp_h = imdb.fit(icfg, splits, log=None, mesh=distributed.make_mesh({"data": 4}))
        for a, b in zip(ref_h, dp_h):
            np.testing.assert_allclose([a[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")],
                                       [b[k] for k in ("train_loss", "train_acc", "val_loss", "val_acc")], rtol=1e-5)
    print("ok imdb data parallel", flush=True)
''')


def test_sharded_losses_equal_single_device(tmp_path):
    tests = Path(__file__).parent
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
           "JENA_RNN_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("ok") == 7


def _env(tmp_path, **extra):
    tests = Path(__file__).parent
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JENA_RNN_CPU_DEVICES")}
    return {**env, "JAX_PLATFORMS": "cpu", "JENA_RNN_CACHE": str(tmp_path / "cache"),
            "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")]), **extra}


def test_use_cpu_cores_sets_the_device_count_once(tmp_path):
    code = ("import jax; from jena_rnn import distributed as d; n = d.use_cpu_cores(); "
            "print(n, jax.device_count(), d.use_cpu_cores(5), jax.device_count())")
    run = lambda **env: subprocess.run([sys.executable, "-c", code], env=_env(tmp_path, **env),  # noqa: E731
                                       capture_output=True, text=True, timeout=120)
    assert run(JENA_RNN_CPU_DEVICES="3").stdout.split() == ["3", "3", "3", "3"]  # later calls change nothing
    flags = run(JENA_RNN_CPU_DEVICES="3", XLA_FLAGS="--xla_force_host_platform_device_count=2")
    assert flags.stdout.split() == ["2", "2", "2", "2"], flags.stderr  # the user's XLA_FLAGS win
    for text in ("two", "00", "-1"):
        bad = run(JENA_RNN_CPU_DEVICES=text)
        assert bad.returncode != 0 and f"JENA_RNN_CPU_DEVICES must be a positive integer, got {text!r}" in bad.stderr
    # a chosen count never starts JAX, so jax.distributed.initialize may still follow (sweep --distributed)
    late = subprocess.run([sys.executable, "-c", "from jena_rnn import distributed as d; "
                           "from jax._src import xla_bridge as x; print(d.use_cpu_cores(), x.backends_are_initialized())"],
                          env=_env(tmp_path, XLA_FLAGS="--xla_force_host_platform_device_count=3"),
                          capture_output=True, text=True, timeout=120)
    assert late.stdout.split() == ["3", "False"], late.stderr


def test_cli_train_splits_the_batch_over_cpu_devices(tmp_path):
    args = ["train", "--model", "gru", "--units", "4", "--epochs", "1", "--steps-per-epoch", "2",
            "--set", "data.synthetic_rows=3000", "--set", "data.lookback=60", "--set", "data.delay=12",
            "--set", "data.batch_size=64", "--set", "data.train=[0,1500]", "--set", "data.val=[1501,2200]",
            "--set", "data.test=[2201,null]"]
    code = "import sys; from jena_rnn.cli import main; main(sys.argv[1:])"
    run = lambda out, *extra: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code, *args, "--out", str(tmp_path / out), *extra],
        env=_env(tmp_path, JENA_RNN_CPU_DEVICES="2"), capture_output=True, text=True, timeout=300)
    two = run("two")
    assert two.returncode == 0, two.stderr[-2000:]
    assert "split over 2 cpu devices" in two.stderr and '"devices": 2' in two.stdout
    one = run("one", "--mesh", "none")
    assert one.returncode == 0 and '"devices": 1' in one.stdout, one.stderr[-2000:]
    bad = run("bad", "--mesh", "data=3")
    assert bad.returncode == 2 and "needs 3 devices, but 2 are available" in bad.stderr, bad.stderr[-2000:]


def test_mesh_parsing_and_sizes():
    assert values.parse_mesh("sweep=2,data=-1") == {"sweep": 2, "data": -1}
    for bad in ("data=0", "data=-2"):
        with pytest.raises(ValueError, match="must be >= 1"):
            values.parse_mesh(bad)
    with pytest.raises(ValueError, match="sizes must be >= 1"):
        distributed.make_mesh({"data": 0})
    assert values.parse_mesh(None) is None
    with pytest.raises(ValueError, match="AXIS=SIZE"):
        values.parse_mesh("model=2")
    mesh = distributed.make_mesh({"data": -1})  # every device of this process
    assert distributed.axis_size(mesh, "data") == len(mesh.devices.flat)
    assert distributed.axis_size(mesh, "sweep") == 1 and distributed.axis_size(None, "data") == 1
    with pytest.raises(ValueError, match="needs 64 devices"):
        distributed.make_mesh({"sweep": 64})
    assert values.mesh_option(None) == "auto" and values.mesh_option("none") is None
    assert distributed.axis_size(values.mesh_option("data=1"), "data") == 1  # the first device
    with pytest.raises(ValueError, match=re.escape("--mesh 'sweep=1': only the axes ['data'] apply here")):
        values.mesh_option("sweep=1", axes=("data",))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


TINY_ARGS = ["--model", "gru", "--units", "4", "--recurrent-dropout", "0.3", "--steps-per-epoch", "2",
             "--synthetic-rows", "3000", "--lookback", "60", "--delay", "12", "--batch-size", "16",
             "--splits", "0:1500,1501:2200,2201:", "--quiet"]


def _launch(tmp_path, *args, processes=2, status=0) -> list[str]:
    """Run ``jena-rnn ARGS`` as ``processes`` processes meeting through jax.distributed on localhost
    (one CPU device each); check that each exits with ``status``; return their stdouts (stderrs if not 0).

    Their output goes to files, not pipes: a process blocked on a full pipe that nobody reads yet would
    stall its partner in the next collective. A process still running after 300 s fails the test with
    every process's stderr."""
    code = "import sys; from jena_rnn.cli import main; main(sys.argv[1:])"
    port = _free_port()
    logs = Path(tempfile.mkdtemp(dir=tmp_path, prefix="launch-"))
    files = [(open(logs / f"out{i}", "w+"), open(logs / f"err{i}", "w+")) for i in range(processes)]
    procs = [subprocess.Popen([sys.executable, "-c", code, *args,
                               *(["--coordinator", f"localhost:{port}", "--num-processes", str(processes),
                                  "--process-id", str(i)] if processes > 1 else [])],
                              env=_env(tmp_path, JENA_RNN_CPU_DEVICES="1"), stdout=out, stderr=err, text=True)
             for i, (out, err) in enumerate(files)]
    deadline = time.monotonic() + 300
    try:
        for p in procs:
            try:
                p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                errs = [(logs / f"err{i}").read_text()[-2000:] for i in range(processes)]
                pytest.fail(f"process still running after 300 s: {p.args[3:]}\n"
                            + "\n".join(f"--- stderr of process {i}:\n{e}" for i, e in enumerate(errs)))
    finally:  # a failed or hung process must not leave its partner waiting on the coordinator
        for p in procs:
            p.kill()
        for out, err in files:
            out.close()
            err.close()
    outs = [((logs / f"out{i}").read_text(), (logs / f"err{i}").read_text()) for i in range(processes)]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == status, err[-3000:]
    if status:
        return [err for _, err in outs]
    return [out[out.find("{\n"):] for out, _ in outs]  # gloo prints "[Gloo] Rank i is connected ..." first


def test_two_processes_train_as_one(tmp_path):
    """`jena-rnn train` as 2 processes, the batch split over both (with recurrent dropout), stopped and
    resumed, gives the single-process single-device run; a mesh that leaves a process out is refused."""
    for err in _launch(tmp_path, "train", *TINY_ARGS, "--epochs", "1", "--mesh", "data=1", "--out",
                       str(tmp_path / "bad"), status=2):  # a mesh that leaves a process out: a clear error
        assert "leaves out process(es) [1]" in err, err[-2000:]
    _launch(tmp_path, "train", *TINY_ARGS, "--epochs", "1", "--mesh", "data=2", "--out", str(tmp_path / "multi"))
    outs = _launch(tmp_path, "train", *TINY_ARGS, "--epochs", "2", "--mesh", "data=2", "--resume",
                   "--out", str(tmp_path / "multi"))
    single = json.loads(_launch(tmp_path, "train", *TINY_ARGS, "--epochs", "2", "--mesh", "none",
                                "--out", str(tmp_path / "single"), processes=1)[0])
    for out in outs:  # both processes report the same run
        multi = json.loads(out)
        assert multi["devices"] == 2 and single["devices"] == 1
        np.testing.assert_allclose([multi["best_val_mae"], multi["test_mae"]],
                                   [single["best_val_mae"], single["test_mae"]], rtol=1e-5)
    hist = [json.loads((tmp_path / d / "history.json").read_text()) for d in ("multi", "single")]
    np.testing.assert_allclose([h["train_mae"] for h in hist[0]], [h["train_mae"] for h in hist[1]], rtol=1e-5)
    assert sorted(p.name for p in (tmp_path / "multi" / "checkpoints").iterdir() if p.name.startswith("tmp")) == []


def test_two_processes_imdb_as_one(tmp_path):
    """`jena-rnn imdb --distributed` as 2 processes (the batch of 64 split over both) gives the single-process
    single-device run: the lecture's LSTM with recurrent dropout on padded batches."""
    from jena_rnn.data import text

    root = text.write_synthetic_imdb(tmp_path / "aclImdb", n_train=150, n_test=40, mean_len=12, vocab=40)
    args = ["imdb", "--data", str(root), "--max-features", "50", "--maxlen", "16", "--units", "4",
            "--recurrent-dropout", "0.3", "--batch-size", "64", "--epochs", "2", "--quiet"]
    outs = _launch(tmp_path, *args, "--out", str(tmp_path / "multi"))
    single = json.loads(_launch(tmp_path, *args, "--out", str(tmp_path / "single"), processes=1)[0])
    assert single["devices"] == 1
    for out in outs:
        multi = json.loads(out)
        assert multi["devices"] == 2
        np.testing.assert_allclose([multi[k] for k in ("best_val_acc", "test_loss", "test_acc")],
                                   [single[k] for k in ("best_val_acc", "test_loss", "test_acc")], rtol=1e-5)
    hist = [json.loads((tmp_path / d / "history.json").read_text()) for d in ("multi", "single")]
    np.testing.assert_allclose([h["train_loss"] for h in hist[0]], [h["train_loss"] for h in hist[1]], rtol=1e-5)


def test_two_processes_sweep_as_one(tmp_path):
    """`jena-rnn sweep` launched as 2 processes gives the single-process leaderboard: the sweep axis across
    processes, then a resume with the data axis across them."""
    args = ["sweep", *TINY_ARGS, "--lr", "1e-3,3e-3", "--recurrent-dropout", "0,0.3"]
    _launch(tmp_path, *args, "--epochs", "1", "--mesh", "sweep=2", "--out", str(tmp_path / "multi"))
    for err in _launch(tmp_path, *args, "--epochs", "2", "--mesh", "data=2", "--out", str(tmp_path / "multi"),
                       status=2):  # every process refuses the existing sweep, not only process 0
        assert "already holds a sweep" in err, err[-2000:]
    _launch(tmp_path, *args, "--epochs", "2", "--mesh", "data=2", "--resume", "--out", str(tmp_path / "multi"))
    _launch(tmp_path, *args, "--epochs", "2", "--mesh", "none", "--out", str(tmp_path / "single"), processes=1)
    import csv

    def board(name):
        with open(tmp_path / name / "results.csv") as f:
            return [(r["member"], r["epochs_run"], float(r["best_val_mae"])) for r in csv.DictReader(f)]

    multi, single = board("multi"), board("single")
    assert [m[:2] for m in multi] == [s[:2] for s in single] and len(multi) == 4
    np.testing.assert_allclose([m[2] for m in multi], [s[2] for s in single], rtol=1e-5)
    assert sorted(p.name for p in (tmp_path / "multi" / "members").iterdir()) == ["m000", "m001", "m002", "m003"]


CLUSTER_VARS = ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID", "SLURM_JOB_ID",
                "OMPI_COMM_WORLD_SIZE", "TPU_WORKER_HOSTNAMES")


@pytest.mark.parametrize("env, kwargs, message", [
    ({"JAX_NUM_PROCESSES": "two"}, {}, "JAX_NUM_PROCESSES must be an integer >= 1, got 'two'"),
    ({"JAX_PROCESS_ID": "-1"}, {}, "JAX_PROCESS_ID must be an integer >= 0, got '-1'"),
    ({}, {"coordinator_address": "localhost:1", "num_processes": 2, "process_id": 2}, "process id 2 is outside [0, 2)"),
    ({}, {"num_processes": 2, "process_id": 0}, "2 processes need a coordinator"),
    ({"JAX_COORDINATOR_ADDRESS": "localhost:1"}, {}, "without the number of processes"),
    ({"JAX_PROCESS_ID": "1"}, {}, "process id 1 given without the number of processes"),
    ({}, {"process_id": 1}, "process id 1 given without the number of processes"),
])
def test_initialize_names_bad_settings(monkeypatch, env, kwargs, message):
    for name in CLUSTER_VARS:
        monkeypatch.delenv(name, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=re.escape(message)):
        distributed.initialize(**kwargs)


def test_initialize_alone_is_one_process(monkeypatch):
    for name in CLUSTER_VARS:  # on a SLURM or MPI node these would start a real cluster
        monkeypatch.delenv(name, raising=False)
    assert distributed.initialize()["processes"] == 1
