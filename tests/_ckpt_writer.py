"""Subprocess for the kill tests: save epochs 1, 2, ... of a state whose values are a function of the epoch.

Usage: python _ckpt_writer.py RUN_DIR N_FLOATS [CRASH_STAGE CRASH_EPOCH]

After each committed save it prints "SAVED <epoch>" and flushes. With CRASH_STAGE it exits with
`os._exit(CRASH_CODE)` (no cleanup, like a kill) when `save` for CRASH_EPOCH reaches that stage: one of
`checkpoint._on_stage`'s ("before_save", "before_run_files"), or, inside orbax's save, "before_commit"
(the rename of orbax's temporary step directory to its final name, which commits it) or "before_prune"
(the first deletion of an old step). The last two are found by wrapping `os.rename` and `shutil.rmtree`,
which orbax's local file system calls (through etils.epath), so no orbax internals are touched.
Without CRASH_STAGE, it saves until killed (or MAX_EPOCHS).
"""
import os
import re
import shutil
import sys
from typing import NamedTuple

import numpy as np

CRASH_CODE = 17
MAX_EPOCHS = 10_000


class State(NamedTuple):
    params: dict
    step: np.ndarray
    key: np.ndarray


def make_state(epoch: int, n_floats: int) -> State:
    """Return the state the writer saves at `epoch`; every leaf encodes the epoch."""
    big = np.arange(n_floats, dtype=np.float32) + np.float32(epoch)
    params = {"layers": [{"w_x": big, "b": np.full((3,), epoch, np.float32)}], "head": {"w": -big[:7]}}
    return State(params, np.int32(epoch), np.array([0, epoch], np.uint32))


def main() -> None:
    run_dir, n_floats = sys.argv[1], int(sys.argv[2])
    crash_stage, crash_epoch = (sys.argv[3], int(sys.argv[4])) if len(sys.argv) > 3 else (None, -1)
    from jena_rnn.runtime import checkpoint

    def crash_at(stage, real=None):
        def wrapped(*args, **kw):
            path = os.fspath(args[0]) if args else ""
            if stage == "before_commit" and "orbax-checkpoint-tmp" in path:
                os._exit(CRASH_CODE)
            if stage == "before_prune" and re.fullmatch(r"epoch_\d{4}", os.path.basename(path.rstrip("/"))):
                os._exit(CRASH_CODE)
            return real(*args, **kw)
        return wrapped

    for epoch in range(1, MAX_EPOCHS):
        if epoch == crash_epoch:
            checkpoint._on_stage = lambda stage: os._exit(CRASH_CODE) if stage == crash_stage else None
            os.rename = crash_at(crash_stage, os.rename)
            shutil.rmtree = crash_at(crash_stage, shutil.rmtree)
        history = [{"epoch": e, "val_mae": 1.0 / e} for e in range(1, epoch + 1)]
        checkpoint.save(run_dir, make_state(epoch, n_floats), epoch=epoch, history=history,
                        config={"n_floats": n_floats}, is_best=True, keep=2)
        print(f"SAVED {epoch}", flush=True)


if __name__ == "__main__":
    main()
