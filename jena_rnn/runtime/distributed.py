"""Devices and hosts: a ``jax.sharding.Mesh`` for sweeps and data parallelism, and multi-host start-up.

A mesh has up to two named axes (docs/scaling.md):

- ``"data"``: each training batch ``[B, ...]`` is split over the axis's devices. The train step constrains
  its drawn end rows with ``NamedSharding(mesh, P("data"))`` (``train.make_train_step(batch_sharding=)``);
  XLA's SPMD partitioner then runs forward and backward on ``B / n`` rows per device and all-reduces the
  gradients. Parameters and optimiser state are replicated. Needs ``B % n == 0``.
- ``"sweep"``: the leading member axis ``[S, ...]`` of a sweep's stacked state is split over the devices,
  so each device trains ``S / n`` members (no communication). Needs ``S % n == 0``.

Both together form a 2-D mesh (``{"sweep": 2, "data": 2}``): the vmap over members is given
``spmd_axis_name="sweep"`` so the batch constraint inside it becomes ``P("sweep", "data")``.

On a CPU, XLA runs one program's small per-timestep operations on one core. Splitting the host into
one JAX device per core (``use_cpu_cores``, done by the ``jena-rnn`` command unless
``JENA_RNN_CPU_DEVICES=1``) and training data-parallel over them (``auto_mesh``) puts every core on the
recurrence (benchmarks/RESULTS.md, "Every core, windows by phase, the GRU mask", item 1).

Arrays are placed with ``jax.make_array_from_callback`` from host copies that every process computes
identically (same seeds), which is also how they are placed across hosts. Only process 0 writes files.
"""
from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from jena_rnn import backend

AXES = ("sweep", "data")


def initialize(coordinator_address: str | None = None, num_processes: int | None = None,
               process_id: int | None = None) -> dict:
    """Start JAX's multi-host runtime (``jax.distributed.initialize``) and return who we are.

    With no arguments JAX reads its cluster environment: SLURM (``SLURM_*``), Open MPI
    (``OMPI_*``), Cloud TPU pod slices (TPU metadata). For a hand-made launch, set
    ``JAX_COORDINATOR_ADDRESS`` (read by JAX) and ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID`` (read
    here: JAX itself does not). Call it once per process, before any other JAX call. Calling it with one
    process and no coordinator is skipped. On CPUs the processes exchange collectives over TCP (gloo,
    JAX's default).

    Raises:
      ValueError: a malformed ``JAX_NUM_PROCESSES`` / ``JAX_PROCESS_ID``, a process id outside
        ``[0, num_processes)``, or a coordinator without a process count and id.
    """
    num_processes = num_processes if num_processes is not None else _env_int("JAX_NUM_PROCESSES", 1)
    process_id = process_id if process_id is not None else _env_int("JAX_PROCESS_ID", 0)
    if num_processes is not None and process_id is not None and not 0 <= process_id < num_processes:
        raise ValueError(f"process id {process_id} is outside [0, {num_processes}) "
                         "(JAX_PROCESS_ID / --process-id against JAX_NUM_PROCESSES / --num-processes)")
    coordinator = coordinator_address or os.environ.get("JAX_COORDINATOR_ADDRESS")
    auto = os.environ.get("SLURM_JOB_ID") or os.environ.get("OMPI_COMM_WORLD_SIZE") \
        or os.environ.get("TPU_WORKER_HOSTNAMES")
    if not auto:
        if process_id is not None and num_processes is None:
            raise ValueError(f"process id {process_id} given without the number of processes: set "
                             "JAX_NUM_PROCESSES (or --num-processes)")
        if not coordinator and (num_processes or 1) > 1:
            raise ValueError(f"{num_processes} processes need a coordinator: set JAX_COORDINATOR_ADDRESS "
                             "(or --coordinator) to HOST:PORT of process 0")
        if coordinator and (num_processes is None or process_id is None):
            raise ValueError(f"coordinator {coordinator!r} given without the number of processes and this "
                             "process's id: set JAX_NUM_PROCESSES and JAX_PROCESS_ID (or --num-processes and "
                             "--process-id)")
    if coordinator or auto:
        jax.distributed.initialize(coordinator_address=coordinator_address, num_processes=num_processes,
                                   process_id=process_id)
    return {"process_id": jax.process_index(), "processes": jax.process_count(),
            "local_devices": jax.local_device_count(), "devices": jax.device_count()}


def _env_int(name: str, minimum: int) -> int | None:
    """Return the integer in environment variable ``name`` (None if unset); ValueError if not an int >= minimum."""
    text = os.environ.get(name)
    if text is None or text == "":
        return None
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {text!r}")
    return value


def cpu_cores() -> int:
    """Number of CPU cores this process may use: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    try:  # a container limited to e.g. "200000 100000" (2 CPUs) still sees every core in its mask
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            n = min(n, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return n


def _chosen_cpu_devices() -> int | None:
    """The CPU device count the user already chose (``jax_num_cpu_devices`` / XLA_FLAGS), if any."""
    if jax.config.jax_num_cpu_devices > 0:
        return int(jax.config.jax_num_cpu_devices)
    m = re.search(r"--xla_force_host_platform_device_count=(\d+)", os.environ.get("XLA_FLAGS", ""))
    return int(m.group(1)) if m else None


def use_cpu_cores(n: int | None = None) -> int:
    """Expose the host CPU as ``n`` JAX devices (default: ``$JENA_RNN_CPU_DEVICES``, else ``cpu_cores()``).

    Must run before JAX's first computation (``jax_num_cpu_devices`` is read when the backends
    start); afterwards, or if the user already chose a count (``jax_num_cpu_devices`` or XLA_FLAGS'
    ``--xla_force_host_platform_device_count``), nothing changes. It never starts JAX itself, so
    ``jax.distributed.initialize`` may still follow. Accelerator backends are unaffected.
    Returns the number of CPU devices JAX will use (or already uses).
    """
    if n is None:
        env = os.environ.get("JENA_RNN_CPU_DEVICES", "").strip()
        if env and (not re.fullmatch(r"[0-9]+", env) or int(env) < 1):
            raise ValueError(f"JENA_RNN_CPU_DEVICES must be a positive integer, got {env!r}")
        n = int(env) if env else cpu_cores()
    if n < 1:
        raise ValueError(f"use_cpu_cores: n must be >= 1, got {n}")
    chosen = _chosen_cpu_devices()
    if chosen is not None:
        return chosen
    try:  # JAX refuses the count once its backends have started (public API: no private probe needed)
        jax.config.update("jax_num_cpu_devices", n)
    except RuntimeError:
        try:
            return len(jax.devices("cpu"))
        except RuntimeError:  # JAX_PLATFORMS without cpu
            return 0
    return n


# data parallelism splits a batch no finer: its gain shrinks with the rows each device gets (measured on
# 2 cores only: benchmarks/RESULTS.md, "How finely data parallelism may split a batch"); 16 keeps a
# margin for hosts with more devices, where every split adds a larger all-reduce
MIN_ROWS_PER_DEVICE = 16


def auto_mesh(batch_size: int | None = None, *, members: int | None = None, devices=None) -> Mesh | None:
    """A one-axis mesh over the local devices, or None when only one device would be used.

    Under ``jax.distributed`` (several processes) it spans every device of the job, and raises
    ``ValueError`` when the split cannot use them all (a process left out would train alone).

    For a sweep (``members`` given) a ``"sweep"`` axis, else a ``"data"`` axis for ``batch_size``;
    it takes the largest device count that divides that number (e.g. 3 of 4 devices for a batch of
    18), so that the split is always even. A batch is not split below ``MIN_ROWS_PER_DEVICE`` rows per
    device (batch 128: at most 8 devices): per-step overhead dominates tiny slices. Measured only on
    a 2-core CPU (benchmarks/RESULTS.md); on a many-core host pass an explicit mesh to go further.
    """
    if devices is None:  # several processes: every device of the job, or each would train alone
        devices = jax.devices() if jax.process_count() > 1 else jax.local_devices()
    devices = list(devices)
    if members is not None:
        axis, size, most = "sweep", members, len(devices)
    elif batch_size is not None:
        axis, size = "data", batch_size
        most = min(len(devices), max(1, batch_size // MIN_ROWS_PER_DEVICE))
    else:
        raise ValueError("auto_mesh: pass batch_size or members")
    n = max((k for k in range(1, most + 1) if size % k == 0), default=1)
    if jax.process_count() > 1 and n != len(devices):
        what = (f"{size} sweep members cannot be split over" if members is not None else
                f"a batch of {size} cannot be split (at least {MIN_ROWS_PER_DEVICE} rows each) over")
        raise ValueError(f"auto mesh: {what} all {len(devices)} devices of the {jax.process_count()} processes; "
                         "pass --mesh " + ("data=-1 (or change the member count)" if members is not None
                                           else "data=-1 (or change the batch size)"))
    return None if n == 1 else make_mesh({axis: n}, devices[:n])


def first_devices_mesh(shape: Mapping[str, int]) -> Mesh:
    """Build a mesh ``{"sweep": n, "data": m}`` on the first devices of ``jax.devices()``.

    Fixed sizes take the first ``n * m`` devices (every process's under ``jax.distributed``); with a
    ``-1`` size, all of them (``make_mesh``). The command line's ``--mesh AXIS=SIZE,...``.
    """
    devices = jax.devices()
    if -1 not in shape.values():
        devices = devices[:int(np.prod(list(shape.values())))]
    return make_mesh(shape, devices)


def make_mesh(shape: Mapping[str, int], devices=None) -> Mesh:
    """Build a mesh with named axes from ``{"sweep": n, "data": m}`` (one size may be -1).

    Raises:
      ValueError: the sizes do not multiply to the number of devices.
    """
    devices = list(jax.devices() if devices is None else devices)
    names = [a for a in AXES if a in shape]
    sizes = [shape[a] for a in names]
    if not names:
        raise ValueError(f"mesh: name at least one axis of {AXES}")
    if sizes.count(-1) > 1:
        raise ValueError("mesh: only one axis size may be -1")
    if any(size == 0 or size < -1 for size in sizes):
        raise ValueError(f"mesh {dict(zip(names, sizes))}: sizes must be >= 1 (or one -1 = the rest)")
    if -1 in sizes:
        rest = int(np.prod([s for s in sizes if s != -1]))
        sizes[sizes.index(-1)] = len(devices) // max(rest, 1)
    if int(np.prod(sizes)) != len(devices) or min(sizes) < 1:
        raise ValueError(f"mesh {dict(zip(names, sizes))} needs {int(np.prod(sizes))} devices, "
                         f"but {len(devices)} are available ({backend.name()})")
    if jax.process_count() > 1:
        left_out = sorted(set(range(jax.process_count())) - {d.process_index for d in devices})
        if left_out:
            raise ValueError(f"mesh {dict(zip(names, sizes))} uses {len(devices)} of the {jax.device_count()} devices "
                             f"and leaves out process(es) {left_out}, which would have nothing to run: give every "
                             "process's devices a place in the mesh (e.g. data=-1)")
    return Mesh(np.asarray(devices).reshape(sizes), tuple(names))


def axis_size(mesh: Mesh | None, name: str) -> int:
    """Number of devices along ``name`` (1 when the mesh or the axis is absent)."""
    return 1 if mesh is None or name not in mesh.axis_names else int(mesh.shape[name])


def check_divisible(mesh: Mesh | None, *, batch_size: int, members: int) -> None:
    """Raise a clear error when the batch or the member count does not split evenly over the mesh."""
    n_data, n_sweep = axis_size(mesh, "data"), axis_size(mesh, "sweep")
    if batch_size % n_data:
        raise ValueError(f"batch size {batch_size} is not divisible by the {n_data} devices of the mesh's "
                         f"'data' axis: choose a batch size that is a multiple of {n_data}")
    if members % n_sweep:
        raise ValueError(f"{members} sweep members cannot be split over the {n_sweep} devices of the "
                         f"mesh's 'sweep' axis: use a multiple of {n_sweep} members")


def data_parallel(fn, mesh: Mesh, in_specs: tuple, reduce=jax.lax.psum):
    """``shard_map`` ``fn`` over the mesh's ``"data"`` axis; each output is combined by ``reduce(x, "data")``.

    Each device runs ``fn`` on its slice of the arguments split by ``in_specs`` (the others are
    replicated), so the devices work concurrently; on a CPU split into one device per core
    (``use_cpu_cores``) that puts every core on the recurrence. The outputs are replicated.
    """
    def local(*args):
        return jax.tree.map(lambda x: reduce(x, "data"), fn(*args))

    # check_vma=False: scan carries start replicated (zeros) and become per-device; the values are exact.
    return jax.shard_map(local, mesh=mesh, in_specs=in_specs, out_specs=P(), check_vma=False)


def local_rows(batch_size: int, mesh: Mesh) -> tuple:
    """Inside ``data_parallel``: ``(start, batch_size)``, this device's first row of the whole batch.

    Passed as ``dropout_rows`` so each device keeps its rows of the whole batch's dropout masks.
    """
    return jax.lax.axis_index("data") * (batch_size // axis_size(mesh, "data")), batch_size


def batch_sharding(mesh: Mesh | None) -> NamedSharding | None:
    """The sharding of a batch's leading axis over ``"data"`` (None without a data axis)."""
    return NamedSharding(mesh, P("data")) if axis_size(mesh, "data") > 1 else None


def place(tree, mesh: Mesh | None, *, stacked: bool):
    """Put host arrays on the mesh: leading axis over ``"sweep"`` if ``stacked``, else replicated.

    Works across hosts: each process supplies the slices its devices hold, from its own full copy.
    """
    if mesh is None:
        return jax.tree.map(jax.numpy.asarray, tree)
    spec = P("sweep") if stacked and "sweep" in mesh.axis_names else P()
    sharding = NamedSharding(mesh, spec)

    def put(x):
        x = np.asarray(x)
        return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])

    return jax.tree.map(put, tree)


def to_host(tree):
    """Return numpy copies of a tree of (possibly sharded, possibly multi-host) arrays.

    A leaf that spans processes is gathered (``process_allgather``: a collective, so every process must
    call ``to_host`` on the same tree); host arrays and this process's own arrays are copied as they are.
    """
    def one(x):
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            from jax.experimental import multihost_utils

            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return np.asarray(x)

    return jax.tree.map(one, tree)


def barrier(name: str) -> None:
    """Wait until every process reaches the barrier ``name`` (nothing to wait for with one process)."""
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def is_main() -> bool:
    """True on the process that writes files (process 0)."""
    return jax.process_index() == 0
