"""The project's one atomic file writer: a reader sees the old file or the new one, never a part.

It imports nothing of jena_rnn, so every wing may use it (``data`` for its caches and downloads,
``runtime.report`` for run files). Its temporaries carry the project's tag (``TMP_PREFIX``), the pid of
the writer and a uuid (``tmp_name``), so they cannot be a user's file and a stale one can be recognised.
"""
from __future__ import annotations

import contextlib
import os
import re
import stat
import uuid
from pathlib import Path
from typing import BinaryIO, Iterator

TMP_PREFIX = ".jena-rnn-tmp-"  # the project's own temporary files (stale ones are pruned by this tag)


def tmp_pid(name: str) -> int | None:
    """The writer's pid if ``name`` is one of ``tmp_name``'s temporaries, else None."""
    m = _TMP_RE.fullmatch(name)
    return None if m is None else int(m.group(1))


_TMP_RE = re.compile(re.escape(TMP_PREFIX) + r".+\.(\d+)\.[0-9a-f]{32}")


def pid_alive(pid) -> bool:
    """Whether process ``pid`` may be alive: False only when it certainly is gone (not when it is not ours)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (OSError, ValueError, TypeError):
        return True  # exists but not ours, or not a pid: do not assume it is gone
    return True


def tmp_name(what: str) -> str:
    """A temporary name that cannot be a user's: the project tag, what it is, this pid and a uuid."""
    return f"{TMP_PREFIX}{what}.{os.getpid()}.{uuid.uuid4().hex}"


@contextlib.contextmanager
def writer(path: str | Path) -> Iterator[BinaryIO]:
    """Write ``path`` through a binary file object: committed when the block ends, discarded if it raises.

    The data go to a temporary file beside ``path`` (same file system), are fsynced, then moved into
    place with ``os.replace`` and the folder is fsynced, so the rename itself is durable. The temporary is
    removed on any failure.

    Mode: the mode a plain ``open(path, "wb")`` would leave. A new file gets ``0o666 & ~umask`` (the
    temporary is created by ``open``, which asks for 0o666, never by ``tempfile.mkstemp``, whose 0o600
    would hide run files from a group that shares them); a file being replaced keeps its permission
    bits (as ``open`` would, since it rewrites the same inode), so a user's ``chmod 600 config.json``
    survives the next write. Owner and group are the writer's, as for any new file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(tmp_name(path.name))
    try:
        with open(tmp, "wb") as f:
            yield f
            f.flush()
            try:
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(path).st_mode))
            except FileNotFoundError:
                pass  # a new file: open() already applied the umask
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def new_file_mode(folder: str | Path) -> int:
    """The permission bits a plain ``open()`` gives a new file in ``folder`` (``0o666 & ~umask``).

    Read from a probe file (one of ``tmp_name``'s, removed at once) rather than ``os.umask``, which can only
    be read by setting it, process-wide, under every other thread's feet. For files that another library
    creates with ``tempfile`` (0o600) before they are moved into place (the downloads).
    """
    probe = Path(folder) / tmp_name("mode")
    try:
        with open(probe, "wb"):
            pass
        return stat.S_IMODE(os.stat(probe).st_mode)
    finally:
        probe.unlink(missing_ok=True)


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` (text is UTF-8 encoded) to ``path`` atomically (``writer``)."""
    with writer(path) as f:
        f.write(data.encode() if isinstance(data, str) else data)
