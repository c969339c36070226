"""One writer per folder: a lock file held with ``fcntl.flock``, re-entrant within a thread.

The lock file holds the holder's pid, host and start time, for the message that refuses a second
writer at once (``FileExistsError``). flock rather than an ``O_CREAT | O_EXCL`` file because the kernel
drops a flock when its process dies, kill -9 included: a killed trainer never leaves a lock that
blocks the next one, and no pid has to be guessed alive (a reused pid, a pid in another container or
on another host would fool that). A lock file left by a dead holder is taken over with a warning
naming it; the file is removed on release, also after an exception. Where the file system has no
flock, the file's pid decides (same host, pid gone: stale). Under ``jax.distributed`` process 0 alone
takes it and tells the others whether it got it. What the lock guards (a run directory, its checks and
marker) is ``jena_rnn.runtime.rundir``'s.
"""
from __future__ import annotations

import contextlib
import datetime
import errno
import json
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Callable, Iterator

from jena_rnn import atomic
from jena_rnn.runtime import distributed

_held: dict[str, list] = {}  # lock path -> [fd, depth, thread id]: re-entrant within one thread


def now() -> str:
    """The local time, to the second, with its UTC offset (ISO 8601)."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _holder(text: str) -> dict:
    try:
        info = json.loads(text)
        return info if isinstance(info, dict) else {}
    except ValueError:
        return {}


def _describe(info: dict) -> str:
    return (f"pid {info.get('pid', '?')} on host {info.get('host', '?')} since {info.get('since', '?')}"
            if info else "an unknown holder (the lock file is empty or unreadable)")


def acquire(path: Path) -> int:
    """Take the lock file ``path``; return its open descriptor (see the module docstring).

    Raises:
      FileExistsError: another process holds it; names its pid, host and start time.
    """
    import fcntl

    me = {"pid": os.getpid(), "host": socket.gethostname(), "since": now()}
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                flocked = True
            except BlockingIOError:
                info = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                raise FileExistsError(f"{path.parent} is in use by another training: {path} is held by "
                                      f"{_describe(info)}; wait for it to end or use another output directory"
                                      ) from None
            except OSError as e:  # no flock on this file system: the pid in the file decides
                if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL):
                    raise
                flocked = False
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if not same:  # the holder released (unlinked) it between our open and flock: try again
                os.close(fd)
                continue
            info = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            if info and not flocked and (info.get("host") != me["host"] or atomic.pid_alive(info.get("pid"))):
                raise FileExistsError(f"{path.parent} is in use by another training: {path} is held by "
                                      f"{_describe(info)} (no flock here, so a lock of a live process or of "
                                      "another host counts); remove the file if that training is gone")
            if info or os.fstat(fd).st_size:
                warnings.warn(f"taking over the stale lock {path} of {_describe(info)}: that process ended "
                              "without releasing it (killed?)", stacklevel=7)  # the caller of rundir.lock
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(me) + "\n").encode(), 0)
            os.fsync(fd)
            return fd
        except BaseException:
            with contextlib.suppress(OSError):
                os.close(fd)
            raise


def _release(path: Path, fd: int) -> None:
    with contextlib.suppress(OSError):
        path.unlink()  # before the close: a waiting writer then sees a new file (inode check)
    os.close(fd)


@contextlib.contextmanager
def hold(path: Path, take: Callable[[], int]) -> Iterator[None]:
    """Hold the lock file ``path`` for the block; re-entrant in one thread; released on exit and on errors.

    ``take()`` runs on process 0 only (the first time in this thread): it checks what it guards and
    returns ``acquire(path)``'s descriptor, or raises ``FileExistsError``, which every process then raises.
    """
    key, me = str(path), threading.get_ident()
    if key in _held and _held[key][2] == me:
        _held[key][1] += 1
        try:
            yield
        finally:
            _held[key][1] -= 1
        return
    fd, error = None, None
    if distributed.is_main():
        try:
            fd = take()
        except FileExistsError as e:
            error = e
    if _processes() > 1:  # every process learns whether process 0 got it, so all stop alike
        from jax.experimental import multihost_utils
        import numpy as np

        ok = int(multihost_utils.broadcast_one_to_all(np.int32(error is None)))
        if not ok and error is None:
            error = FileExistsError(f"{path.parent} is in use by another training (process 0 could not lock {path})")
    if error is not None:
        raise error
    _held[key] = [fd, 1, me]
    try:
        yield
    finally:
        del _held[key]
        if fd is not None:
            _release(path, fd)


def _processes() -> int:
    import jax

    return jax.process_count()
