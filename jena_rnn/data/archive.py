"""Read a possibly compressed text file with a bound on what it may inflate to, and name every failure.

A data file is read whole into memory, so an archive that inflates to gigabytes (a "zip bomb", or a
damaged size field) must be refused before, or while, it is inflated, never after. The rules:

- ``.zip``: exactly one member that is not a folder; its uncompressed size, as the archive's central
  directory declares it, must not exceed ``max_bytes`` (checked before inflating); the member is then
  read with a bounded read, so a size field that lies is caught too; CRC errors are reported.
- ``.gz``, ``.bz2``, ``.xz``: streams whose size is not known in advance: read with a bounded read.
- anything else: the file's size must not exceed ``max_bytes``.

Every failure is a ``ValueError`` (``FileNotFoundError`` for a missing file) whose message starts with
the path: a truncated or damaged archive never surfaces as ``EOFError``, ``BadZipFile`` or ``zlib.error``.
"""
from __future__ import annotations

import bz2
import gzip
import lzma
import os
import zipfile
import zlib
from pathlib import Path

__all__ = ["MAX_TEXT_BYTES", "read_bytes", "read_text", "first_line", "compression_of"]

# The real Jena CSV inflates to about 43 MB; 1 GiB leaves room for far longer series and refuses bombs.
MAX_TEXT_BYTES = 1 << 30
_STREAMS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}
_DAMAGED = (EOFError, OSError, zlib.error, zipfile.BadZipFile, lzma.LZMAError, ValueError)


def compression_of(path) -> str | None:
    """Return ``".zip"``, ``".gz"``, ``".bz2"``, ``".xz"`` or None from the file name's suffix."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in (".zip", *_STREAMS) else None


def _too_big(path, what: str, n: int | str, max_bytes: int) -> ValueError:
    return ValueError(f"{path}: {what} {n} bytes uncompressed, more than the limit of {max_bytes} bytes "
                      f"(a damaged archive or a decompression bomb?); pass a larger max_bytes if it is real")


def _zip_member(path, zf: zipfile.ZipFile) -> zipfile.ZipInfo:
    members = [m for m in zf.infolist() if not m.is_dir()]
    if len(members) != 1:
        raise ValueError(f"{path}: a .zip must hold exactly one file, found {len(members)}: "
                         f"{[m.filename for m in members][:10]}")
    return members[0]


def _bounded(stream, path, max_bytes: int, what: str) -> bytes:
    chunks, n = [], 0
    while chunk := stream.read(min(1 << 20, max_bytes + 1 - n)):
        chunks.append(chunk)
        n += len(chunk)
        if n > max_bytes:
            raise _too_big(path, what, f"more than {max_bytes}", max_bytes)
    return b"".join(chunks)


def read_bytes(path, *, max_bytes: int = MAX_TEXT_BYTES, limit: int | None = None) -> bytes:
    """Return the (decompressed) bytes of ``path``; ``limit``: only the first ``limit`` bytes.

    Raises:
      FileNotFoundError: no such file.
      ValueError: a folder, an archive that is damaged, truncated, holds several files, or inflates past
        ``max_bytes`` (the message names the file and the member).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder, not a data file")
    kind = compression_of(path)
    try:
        if kind == ".zip":
            with zipfile.ZipFile(path) as zf:
                member = _zip_member(path, zf)
                if member.flag_bits & 0x1:
                    raise ValueError(f"{path}: member {member.filename!r} is encrypted; unpack it first")
                if compression_of(member.filename) is not None or member.filename.lower().endswith(".tar"):
                    raise ValueError(f"{path}: holds another archive ({member.filename!r}), not a CSV; unpack it "
                                     "first")
                if member.file_size > max_bytes:
                    raise _too_big(f"{path} (member {member.filename!r})", "declares", member.file_size, max_bytes)
                with zf.open(member) as f:
                    return f.read(limit) if limit is not None else _bounded(
                        f, f"{path} (member {member.filename!r})", max_bytes, "inflates to")
        if kind in _STREAMS:
            with _STREAMS[kind](path, "rb") as f:
                return f.read(limit) if limit is not None else _bounded(f, path, max_bytes, "inflates to")
        size = os.path.getsize(path)
        if size > max_bytes:
            raise _too_big(path, "holds", size, max_bytes)
        with open(path, "rb") as f:
            return f.read(limit) if limit is not None else f.read()
    except ValueError as e:
        if str(e).startswith(str(path)):
            raise
        raise ValueError(f"{path}: damaged or truncated {kind or 'file'} ({type(e).__name__}: {e})") from None
    except NotImplementedError as e:  # e.g. a zip member compressed with a method zipfile lacks
        raise ValueError(f"{path}: unsupported {kind or 'file'} ({e})") from None
    except RuntimeError as e:  # zipfile: an encrypted member ("password required")
        raise ValueError(f"{path}: cannot read it ({e})") from None
    except _DAMAGED as e:
        if isinstance(e, (FileNotFoundError, PermissionError)):
            raise
        what = "not a zip archive, or a damaged or truncated one" if kind == ".zip" else \
            f"damaged or truncated {kind} file" if kind else "unreadable file"
        raise ValueError(f"{path}: {what} ({type(e).__name__}: {e})") from None


def decode_utf8(path, raw: bytes) -> str:
    """Decode ``raw`` as UTF-8 (a leading byte-order mark is dropped); name the line of a bad byte."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}: line {line}: not UTF-8 text (byte {raw[e.start:e.start + 1]!r} at offset "
                         f"{e.start}); re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)") from None


def read_text(path, *, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """Return the whole (decompressed) file as UTF-8 text, bounded by ``max_bytes`` (see ``read_bytes``)."""
    return decode_utf8(path, read_bytes(path, max_bytes=max_bytes))


def first_line(path, *, limit: int = 1 << 16) -> str:
    """Return the file's first line (the header), read from at most ``limit`` bytes of it."""
    raw = read_bytes(path, limit=limit)
    head = raw.split(b"\n", 1)[0] if b"\n" in raw or len(raw) < limit else raw
    if b"\n" not in raw and len(raw) >= limit:
        raise ValueError(f"{path}: line 1: no end of line in the first {limit} bytes (not a CSV file?)")
    return decode_utf8(path, head).rstrip("\r")
