"""Sharding on a simulated 4-device CPU mesh: sharded training gives the single-device losses.

The device count is fixed when JAX starts, so the checks run in a subprocess with
``XLA_FLAGS=--xla_force_host_platform_device_count=4``.
"""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from jena_rnn import distributed

SCRIPT = textwrap.dedent('''
    import dataclasses, jax, numpy as np
    jax.config.update("jax_default_matmul_precision", "highest")
    from jena_rnn import data, distributed, sweep
    from tiny import TINY_DATA, tiny_config
    assert jax.device_count() == 4, jax.devices()
    ds = data.load_dataset(TINY_DATA)

    def member(lr, rd, seed):
        cfg = tiny_config(units=8, epochs=2, steps=2, seed=seed, recurrent_dropout=rd)
        return dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, learning_rate=lr))

    configs = [member(1e-3, 0.0, 0), member(3e-3, 0.2, 1), member(1e-2, 0.5, 2), member(3e-2, 0.1, 3)]
    names = ["a", "b", "c", "d"]

    def losses(mesh):
        sw, results = sweep.fit_group(configs, names, ds, mesh=mesh, log=None)
        return sw, np.array([[(h["train_mae"], h["val_mae"]) for h in r["history"]] for r in results])

    _, ref = losses(None)
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
''')


def test_sharded_losses_equal_single_device(tmp_path):
    tests = Path(__file__).parent
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4", "JAX_PLATFORMS": "cpu",
           "JENA_RNN_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert proc.stdout.count("ok") == 4


def test_mesh_parsing_and_sizes():
    assert distributed.parse_mesh("sweep=2,data=-1") == {"sweep": 2, "data": -1}
    assert distributed.parse_mesh(None) is None
    with pytest.raises(ValueError, match="AXIS=SIZE"):
        distributed.parse_mesh("model=2")
    mesh = distributed.make_mesh({"data": -1})  # every device of this process
    assert distributed.axis_size(mesh, "data") == len(mesh.devices.flat)
    assert distributed.axis_size(mesh, "sweep") == 1 and distributed.axis_size(None, "data") == 1
    with pytest.raises(ValueError, match="needs 64 devices"):
        distributed.make_mesh({"sweep": 64})
