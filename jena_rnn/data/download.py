"""Download the published Jena archive and Keras's ``imdb.npz`` through pooch, with mirrors and checks.

``pooch.retrieve`` does the HTTP (requests, with a timeout), streams into a temporary file beside the
target, checks a pinned hash and moves the file into place only when it matches. This module adds what
pooch has no notion of: a size check (the Jena archive's SHA-256 is not pinned yet, its size is), a
second mirror tried when the first fails, a copy already at the destination reused without any network
when it verifies, and one error naming every URL tried and why.

pooch writes into a staging name (``atomic.tmp_name``: the project's tag, the pid, a uuid) and only a
copy that passes the size check is renamed to the destination (``os.replace``, atomic): a corrupt or
wrong-size copy never sits under the destination's name, and the one the size check rejects (the file
pooch wrote) is deleted. A fresh staging name per attempt also means pooch never finds an old file there
to reuse unchecked.
"""
from __future__ import annotations

import hashlib
import logging
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Sequence

from jena_rnn import atomic
from jena_rnn.data.table import JENA_URL, JENA_URL_TF, JENA_ZIP_BYTES

__all__ = ["download_jena", "download_imdb", "fetch", "IMDB_URL", "IMDB_SHA256", "MIRRORS"]

IMDB_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
# the digest Keras pins for imdb.npz (keras.datasets.imdb.load_data, Keras 3.15.1); its size is not published
IMDB_SHA256 = "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
MIRRORS = {JENA_URL: (JENA_URL_TF,)}  # URL -> the mirrors tried after it, in order


def download_jena(dest_dir, *, url: str = JENA_URL, sha256: str | None = None, timeout: float = 30,
                  size: int | None = JENA_ZIP_BYTES, verbose: bool = True,
                  mirrors: Sequence[str] | None = None) -> Path:
    """Download the Jena archive into `dest_dir` (skipped if a verified copy is there); return its path.

    The SHA-256 of the published archive is not pinned yet (no real copy has been seen by this project):
    the digest is printed so it can be pinned via `sha256`. Until then only the size (``JENA_ZIP_BYTES``)
    is verified. `mirrors`: URLs tried after `url` (None: ``MIRRORS[url]``, TensorFlow's copy for the
    default). Checks, errors and the atomic rename: ``fetch``.
    """
    return fetch(dest_dir, "jena_climate_2009_2016.csv.zip", [url, *_mirrors(url, mirrors)], sha256=sha256,
                 size=size, timeout=timeout, verbose=verbose, what="the Jena archive")


def download_imdb(dest_dir, *, url: str = IMDB_URL, sha256: str | None = IMDB_SHA256, timeout: float = 30,
                  size: int | None = None, verbose: bool = True, mirrors: Sequence[str] | None = None) -> Path:
    """Download Keras's ``imdb.npz`` into `dest_dir` (skipped if a verified copy is there); return its path.

    Verified by the SHA-256 Keras pins (``IMDB_SHA256``); read it with ``data.text.load_keras_npz`` or
    ``jena-rnn imdb --data DIR/imdb.npz``. Checks, errors and the atomic rename: ``fetch``.
    """
    return fetch(dest_dir, "imdb.npz", [url, *_mirrors(url, mirrors)], sha256=sha256, size=size,
                 timeout=timeout, verbose=verbose, what="Keras's imdb.npz")


def fetch(dest_dir, name: str, urls: Sequence[str], *, sha256: str | None, size: int | None, timeout: float,
          verbose: bool, what: str) -> Path:
    """Return ``dest_dir/name``, downloaded from the first of `urls` that serves a verified copy.

    A copy already there is reused, without network, when its size is `size` and its SHA-256 is
    `sha256` (each None: not checked). A progress bar is drawn only when `verbose` and stderr is a
    terminal; with `verbose`, one line names the URL, the size and the SHA-256 (to pin it).
    Raises:
      ValueError: a URL is not http(s), or some URL served a copy of the wrong size or digest (a
        changed or tampered file is said loudest, even when another URL was unreachable).
      ConnectionError: no URL could be reached (offline?).
      Either names every URL tried and what went wrong, and how to fetch the file by hand.
    """
    import pooch  # here, not at import: reading data (a GPU node without pooch, say) never needs it
    import requests

    for url in urls:
        if not url.startswith(("https://", "http://")):
            raise ValueError(f"{url}: only http(s) URLs are downloaded; pass a local copy's path instead")
    dest = Path(dest_dir) / name
    if dest.exists():
        problem = _problem(dest, size, sha256)
        if problem is None:
            return dest
        # not ours to replace: a copy the user put there (a partial download, another version) is never lost
        raise ValueError(f"{dest} exists but is not a verified copy of {what} ({problem}); it is left as it is: "
                         "move it aside or delete it to download again, or pass its path to use it as it is")
    dest.parent.mkdir(parents=True, exist_ok=True)
    errors, corrupt = [], False
    for url in urls:
        staging = dest.with_name(atomic.tmp_name(name))
        bar = _DownloadBar(url) if verbose and sys.stderr.isatty() else False
        try:
            with _quiet_pooch():
                pooch.retrieve(url, known_hash=None if sha256 is None else f"sha256:{sha256.lower()}",
                               fname=staging.name, path=staging.parent,
                               downloader=pooch.HTTPDownloader(progressbar=bar, timeout=timeout, chunk_size=1 << 16))
        except requests.RequestException as e:  # refused, timed out, DNS, an HTTP error status
            errors.append(f"{url}: {e}")
            continue
        except ValueError as e:  # pooch's hash mismatch (it has deleted its download), or something else
            if sha256 is None or "hash" not in str(e).lower():
                raise
            errors.append(f"{url}: SHA-256 does not match the pinned {sha256}")
            corrupt = True
            continue
        finally:
            if bar:
                bar.close()
        n = staging.stat().st_size
        if size is not None and n != size:
            staging.unlink()
            errors.append(f"{url}: downloaded {n} bytes, expected {size}")
            corrupt = True
            continue
        digest = _sha256(staging)
        os.chmod(staging, atomic.new_file_mode(dest.parent))  # pooch's temporary is 0o600; a download is not
        os.replace(staging, dest)
        if verbose:
            print(f"downloaded {url} -> {dest} ({n} bytes, sha256 {digest})", file=sys.stderr)
        return dest
    kind, why = (ValueError, "no verified copy") if corrupt else (ConnectionError, "offline?")
    raise kind(f"could not download {what} ({why}): " + "; ".join(errors)
               + f". Fetch it by hand from {urls[0]} into {dest} (or pass its path instead).")


def _mirrors(url: str, mirrors: Sequence[str] | None) -> tuple[str, ...]:
    return tuple(MIRRORS.get(url, ())) if mirrors is None else tuple(mirrors)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _problem(path: Path, size: int | None, sha256: str | None) -> str | None:
    """Why ``path`` is not a verified copy (its size or SHA-256 differs, it is not a file), or None."""
    if not path.is_file():
        return "not a file"
    n = path.stat().st_size
    if size is not None and n != size:
        return f"{n} bytes, expected {size}"
    if sha256 is not None and (digest := _sha256(path)) != sha256.lower():
        return f"SHA-256 {digest}, expected {sha256.lower()}"
    return None


@contextmanager
def _quiet_pooch():
    """Silence pooch's INFO lines ("Downloading ...", "use this hash as known_hash"): ours name our API."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


class _DownloadBar:
    """The tqdm-like object pooch's ``HTTPDownloader`` feeds (``total``, ``update``, ``reset``, ``close``),
    drawn by ``rich.progress`` on stderr and removed when done."""

    def __init__(self, url: str):
        from rich.console import Console
        from rich import progress as rp

        self._progress = rp.Progress(rp.TextColumn(url.rsplit("/", 1)[-1]), rp.BarColumn(), rp.DownloadColumn(),
                                     rp.TransferSpeedColumn(), rp.TimeRemainingColumn(),
                                     console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task("download", total=None)
        self._progress.start()

    @property
    def total(self):
        return self._progress.tasks[0].total

    @total.setter
    def total(self, n: int) -> None:
        self._progress.update(self._task, total=n or None)  # 0: the server sent no length

    def update(self, n: int) -> None:
        self._progress.advance(self._task, n)

    def reset(self) -> None:
        self._progress.reset(self._task, total=self.total)

    def close(self) -> None:
        self._progress.stop()
