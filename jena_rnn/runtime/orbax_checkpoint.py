"""The orbax side of `checkpoint`: one ``ocp.CheckpointManager`` per ``run_dir/checkpoints/`` (layout, policy
and crash-safety argument: `jena_rnn.runtime.checkpoint`'s docstring).

Each step ``epoch_NNNN`` holds two items, ``state`` (``PyTreeSave`` of the host tree) and ``meta``
(``JsonSave``: epoch, history, config and the per-leaf digests), plus orbax's ``metrics`` item for the
epochs saved with ``is_best``.
"""
from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np

from jena_rnn.runtime.checkpoint_tree import Damaged, digest, path_of, quiet_orbax, unreadable

PREFIX = "epoch"
_COMMITTED = "commit_success.txt"  # orbax's commit record, written into the step before its rename
_READ = logging.CRITICAL + 1  # a read may meet damage: its only report is checkpoint.restore's warning or error


def _rank(metrics: dict) -> float:
    return metrics["best"]


def metrics_problem(step_dir: Path, epoch: int) -> str | None:
    """Why ``step_dir``'s orbax metrics item is not the record ``write`` makes (``{"best": epoch}``), or None.

    orbax reads every step's metrics when a manager opens, outside any restore, so one damaged file
    would stop every checkpoint call; a step whose record is damaged (or edited to name another epoch)
    is therefore hidden from orbax (``_Steps``) and reported as damaged by ``read`` and ``hidden``.
    """
    f = step_dir / "metrics" / "metrics"
    if not (step_dir / "metrics").exists():
        return None  # saved without is_best
    try:
        value = json.loads(f.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"{f}: unreadable best-epoch record ({type(e).__name__})"
    if value != {"best": epoch}:
        return f"{f}: holds {value!r}, not this checkpoint's best-epoch record {{'best': {epoch}}}"
    return None


def _committed(step_dir: Path) -> bool:
    return (step_dir / _COMMITTED).is_file()


def hidden(root: Path) -> dict[int, str]:
    """{epoch: why} of the committed steps in ``root`` hidden from orbax for a damaged metrics record."""
    out = {}
    for d in root.glob(f"{PREFIX}_*") if root.is_dir() else ():
        digits = d.name[len(PREFIX) + 1:]
        if d.is_dir() and digits.isdigit() and _committed(d):
            why = metrics_problem(d, int(digits))
            if why is not None:
                out[int(digits)] = why
    return out


def _steps_format():
    import orbax.checkpoint as ocp

    @dataclasses.dataclass(frozen=True)
    class _Steps(ocp.step.NameFormat):
        """orbax's ``epoch_NNNN`` steps, but only those with orbax's commit record (not the old layout's
        directories, legacy_checkpoint, nor a stray ``epoch_0009/`` of someone else's) and a sound metrics
        record (``metrics_problem``)."""
        inner: Any

        def build_name(self, step: int) -> str:
            return self.inner.build_name(step)

        def find_all(self, base_path):
            return (m for m in self.inner.find_all(base_path)
                    if _committed(Path(m.path)) and metrics_problem(Path(m.path), m.step) is None)

        def find_step(self, base_path, step: int):
            m = self.inner.find_step(base_path, step)
            if not (_committed(Path(m.path)) and metrics_problem(Path(m.path), step) is None):
                raise ValueError(f"no committed orbax step {step} in {base_path}")
            return m

    return _Steps(ocp.step.standard_name_format(step_prefix=PREFIX, step_format_fixed_length=4))


def _manager(root: Path, keep: int | None = None):
    """An orbax CheckpointManager on ``root``: a writer keeping ``keep`` + the best, or (None) a reader.

    Private to this process: under ``jax.distributed`` only process 0 saves host copies (orbax's default
    would wait for every process at a barrier), and each process restores on its own.
    """
    import orbax.checkpoint as ocp
    from orbax.checkpoint import checkpoint_managers as cm

    me = ocp.options.MultiprocessingOptions(primary_host=jax.process_index(), active_processes={jax.process_index()})
    policy = None if keep is None else cm.AnyPreservationPolicy(
        [cm.LatestN(n=keep), cm.BestN(get_metric_fn=_rank, n=1, keep_checkpoints_without_metrics=False)])
    options = ocp.CheckpointManagerOptions(
        step_name_format=_steps_format(), enable_async_checkpointing=False, best_fn=_rank, best_mode="max",
        preservation_policy=policy, read_only=keep is None, create=False,
        cleanup_tmp_directories=keep is not None, save_root_metadata=False, multiprocessing_options=me)
    return ocp.CheckpointManager(root.absolute(), options=options, item_names=("state", "meta"))


def steps(root: Path) -> tuple[list[int], int | None]:
    """(committed epochs in ``root`` ascending, the best of them or None)."""
    if not root.is_dir():
        return [], None
    with quiet_orbax(_READ), _manager(root) as m:
        return list(m.all_steps()), m.best_step()


def write(root: Path, epoch: int, tree: Any, meta: dict, *, is_best: bool, keep: int) -> None:
    """Save one step synchronously; orbax then deletes the steps the policy no longer keeps."""
    import orbax.checkpoint as ocp

    args = ocp.args.Composite(state=ocp.args.PyTreeSave(tree), meta=ocp.args.JsonSave(meta))
    root.mkdir(parents=True, exist_ok=True)  # orbax's create=True refuses our single-process options
    with quiet_orbax(), _manager(root, keep) as m:
        m.save(epoch, args=args, metrics={"best": epoch} if is_best else None, force=True)


def read(d: Path, epoch: int) -> tuple[dict[str, np.ndarray], dict]:
    """Restore step ``d`` and check every leaf against its recorded digest: ({path: array}, meta).

    Raises:
      Damaged: orbax cannot read it, its metadata is not ours, or a leaf differs from what was saved.
    """
    import orbax.checkpoint as ocp

    why = metrics_problem(d, epoch)
    if why is not None:
        raise Damaged(why)
    args = ocp.args.Composite(state=ocp.args.PyTreeRestore(), meta=ocp.args.JsonRestore())
    try:
        with quiet_orbax(_READ), _manager(d.parent) as m:
            out = m.restore(epoch, args=args)
    except Exception as e:  # noqa: BLE001 -- whatever orbax/tensorstore raise, the files are unreadable
        raise unreadable(d, e) from None
    meta, raw = out["meta"], out["state"]
    leaves = meta.get("leaves") if isinstance(meta, dict) else None
    if not (isinstance(leaves, dict) and isinstance(meta.get("epoch"), int) and isinstance(meta.get("history"), list)
            and all(isinstance(r, dict) and {"shape", "dtype", "sha256"} <= set(r) for r in leaves.values())):
        raise Damaged(f"{d / 'meta'}: not a checkpoint's metadata (epoch, history, config, leaves)")
    got = {path_of(p): np.asarray(a) for p, a in jax.tree_util.tree_flatten_with_path(raw)[0]}
    saved = {}
    for path, rec in leaves.items():
        value = got.pop(path, None)
        if value is None and 0 in rec["shape"]:  # saved as None: orbax refuses zero-size arrays
            value = np.zeros(rec["shape"], rec["dtype"])
        if value is None or digest(value) != rec["sha256"]:
            raise Damaged(f"{d}: leaf {path} differs from what was saved (SHA-256 mismatch)")
        saved[path] = value
    if got:
        raise Damaged(f"{d}: leaves {sorted(got)} are not in the saved record {d / 'meta'}")
    return saved, {k: v for k, v in meta.items() if k != "leaves"}
