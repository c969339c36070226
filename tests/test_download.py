"""download_jena / download_imdb through pooch, served by a local HTTP server (no network is used)."""
import hashlib
import os
import re
import stat
import http.server
import socket
import threading

import numpy as np
import pytest
import requests

from jena_rnn import data
from jena_rnn.data import download
from jena_rnn.data.text import load_keras_npz


class Server:
    """A ``ThreadingHTTPServer`` on 127.0.0.1 serving ``files`` (path -> bytes); ``log`` lists the paths asked."""

    def __init__(self):
        self.files, self.log = {}, []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.log.append(self.path)
                body = outer.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep the test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_port}{path}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def closed_port_url(path="/gone.zip") -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_size_only_download_prints_the_digest_to_pin(server, tmp_path, capsys):
    server.files["/a.zip"] = b"x" * 1000
    got = data.download_jena(tmp_path / "dl", url=server.url("/a.zip"), size=1000)
    assert got.read_bytes() == b"x" * 1000 and got.name == "jena_climate_2009_2016.csv.zip"
    err = capsys.readouterr().err
    assert sha(b"x" * 1000) in err and server.url("/a.zip") in err
    assert "\r" not in err and "━" not in err  # stderr is not a terminal: no bar
    assert [p.name for p in got.parent.iterdir()] == [got.name]  # no staging or temporary file left


def test_pinned_hash_download(server, tmp_path, capsys):
    server.files["/a.zip"] = b"x" * 1000
    got = data.download_jena(tmp_path / "dl", url=server.url("/a.zip"), size=1000, sha256=sha(b"x" * 1000).upper())
    assert got.read_bytes() == b"x" * 1000 and sha(b"x" * 1000) in capsys.readouterr().err
    assert [p.name for p in got.parent.iterdir()] == [got.name]


def test_wrong_size_or_hash_leaves_nothing_and_names_the_url(server, tmp_path):
    server.files["/a.zip"] = b"x" * 1000
    url = server.url("/a.zip")
    with pytest.raises(ValueError, match=rf"no verified copy.*{url}: downloaded 1000 bytes, expected 13568290"):
        data.download_jena(tmp_path / "dl2", url=url)
    assert list((tmp_path / "dl2").iterdir()) == []
    with pytest.raises(ValueError, match=rf"{url}: SHA-256 does not match the pinned 0+"):
        data.download_jena(tmp_path / "dl3", url=url, size=1000, sha256="0" * 64)
    assert list((tmp_path / "dl3").iterdir()) == []


def test_first_mirror_down_then_the_second_is_used(server, tmp_path):
    server.files["/b.zip"] = b"y" * 50
    down = closed_port_url()
    dest = data.download_jena(tmp_path, url=down, mirrors=[server.url("/b.zip")], size=50, verbose=False)
    assert dest.read_bytes() == b"y" * 50 and server.log == ["/b.zip"]
    missing = server.url("/missing.zip")  # a 404 is a failed mirror too
    dest.unlink()
    data.download_jena(tmp_path, url=missing, mirrors=[server.url("/b.zip")], size=50, verbose=False)
    assert server.log == ["/b.zip", "/missing.zip", "/b.zip"]


def test_verifies_existing_copy_and_falls_back_to_the_mirror(server, tmp_path, monkeypatch):
    good, digest = b"y" * 50, sha(b"y" * 50)
    server.files.update({"/book.zip": b"z" * 50, "/tf.zip": good})  # the first mirror serves a corrupt copy
    book, tf = server.url("/book.zip"), server.url("/tf.zip")
    monkeypatch.setitem(download.MIRRORS, book, (tf,))  # as the default URL has TensorFlow's
    dest = data.download_jena(tmp_path, url=book, size=50, sha256=digest, verbose=False)
    assert dest.read_bytes() == good and server.log == ["/book.zip", "/tf.zip"]
    data.download_jena(tmp_path, url=book, size=50, sha256=digest, verbose=False)  # verified copy: no download
    assert len(server.log) == 2
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]


def test_a_file_that_does_not_verify_is_never_replaced(server, tmp_path):
    """A copy at the destination that is not a verified one may be the user's (a partial download, another
    version): it is refused, named and left as it was, and nothing is fetched."""
    good = b"y" * 50
    server.files["/tf.zip"] = good
    dest = tmp_path / "jena_climate_2009_2016.csv.zip"
    for mine, pinned, why in ((b"w" * 50, sha(good), f"SHA-256 {sha(b'w' * 50)}, expected {sha(good)}"),
                              (b"short", None, "5 bytes, expected 50")):
        dest.write_bytes(mine)
        with pytest.raises(ValueError, match=re.escape(f"{dest} exists but is not a verified copy of the Jena "
                                                       f"archive ({why}); it is left as it is")):
            data.download_jena(tmp_path, url=server.url("/tf.zip"), size=50, sha256=pinned, verbose=False)
        assert dest.read_bytes() == mine and server.log == []
    assert [p.name for p in tmp_path.iterdir()] == [dest.name]


def test_a_download_gets_the_mode_of_a_new_file(server, tmp_path):
    """pooch's temporary is 0o600 (tempfile); the download gets what open() gives under the umask."""
    server.files["/a.zip"] = b"x" * 30
    old = os.umask(0o027)
    try:
        dest = data.download_jena(tmp_path / "d", url=server.url("/a.zip"), size=30, verbose=False)
    finally:
        os.umask(old)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o640
    assert [p.name for p in dest.parent.iterdir()] == [dest.name]  # the probe is gone


def test_another_error_of_pooch_is_not_called_a_digest_mismatch(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("something else went wrong")

    import pooch

    monkeypatch.setattr(pooch, "retrieve", broken)
    with pytest.raises(ValueError, match="something else went wrong"):
        data.download_jena(tmp_path, url="http://127.0.0.1:9/x.zip", size=5, sha256="ab" * 32, verbose=False)


def test_verified_copy_is_reused_with_no_server(tmp_path):
    dest = tmp_path / "jena_climate_2009_2016.csv.zip"
    dest.write_bytes(b"q" * 20)
    url = closed_port_url()
    assert data.download_jena(tmp_path, url=url, size=20, sha256=sha(b"q" * 20)) == dest
    assert data.download_jena(tmp_path, url=url, size=20) == dest  # size only
    with pytest.raises(ValueError, match="20 bytes, expected 21"):  # a copy of the wrong size is not the archive
        data.download_jena(tmp_path, url=url, size=21, verbose=False)
    assert dest.read_bytes() == b"q" * 20  # and it is left as it was


def test_server_gone_gives_one_connection_error(server, tmp_path):
    server.files["/a.zip"] = b"x" * 10
    url = server.url("/a.zip")
    server.close()
    mirror = closed_port_url("/m.zip")
    with pytest.raises(ConnectionError, match=rf"offline\?\): {url}: .*; {mirror}: .*Fetch it by hand from {url}"):
        data.download_jena(tmp_path, url=url, mirrors=[mirror], size=10, verbose=False)
    assert list(tmp_path.iterdir()) == []


def test_download_offline_message(tmp_path, monkeypatch):
    def offline(url, **kwargs):
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setattr(requests, "get", offline)  # pooch's HTTPDownloader calls requests.get
    with pytest.raises(ConnectionError, match=r"offline\?.*s3\.amazonaws.*storage\.googleapis.*by hand"):
        data.download_jena(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_only_http_urls(tmp_path):
    src = tmp_path / "src.zip"
    src.write_bytes(b"x")
    with pytest.raises(ValueError, match=r"file://.*only http\(s\).*pass a local copy's path"):
        data.download_jena(tmp_path / "dl", url=src.as_uri())
    assert not (tmp_path / "dl").exists()


def _keras_npz(path):
    def ragged(*seqs):
        out = np.empty(len(seqs), dtype=object)
        out[:] = [np.asarray(s, np.int64) for s in seqs]
        return out

    np.savez(path, x_train=ragged([1, 5], [2, 3, 4]), y_train=np.array([1, 0]), x_test=ragged([7]),
             y_test=np.array([0]))
    return path.read_bytes()


def test_download_imdb_pins_keras_digest_and_gives_a_readable_npz(server, tmp_path):
    body = _keras_npz(tmp_path / "src.npz")
    server.files["/imdb.npz"] = body
    url = server.url("/imdb.npz")
    with pytest.raises(ValueError, match=rf"{url}: SHA-256 does not match the pinned {download.IMDB_SHA256}"):
        download.download_imdb(tmp_path / "dl", url=url)  # our toy file is not Keras's
    assert list((tmp_path / "dl").iterdir()) == []
    got = download.download_imdb(tmp_path / "dl", url=url, sha256=sha(body), verbose=False)
    assert got == tmp_path / "dl" / "imdb.npz"
    (x_train, y_train), (x_test, y_test), report = load_keras_npz(got, max_features=20)
    assert sorted(map(len, x_train)) == [3, 4] and len(x_test) == 1 and report["format"] == "keras_npz"
    assert download.IMDB_URL.endswith("/tf-keras-datasets/imdb.npz") and len(download.IMDB_SHA256) == 64


def test_on_a_terminal_pooch_drives_the_rich_download_bar(server, tmp_path, capsys, monkeypatch):
    import sys

    server.files["/a.zip"] = b"x" * 300_000
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)  # the captured stderr now passes for a terminal
    got = data.download_jena(tmp_path, url=server.url("/a.zip"), size=300_000)
    err = capsys.readouterr().err
    assert got.stat().st_size == 300_000
    assert "━" in err and "300.0 kB" in err  # rich's bar and DownloadColumn, fed total/update by pooch
    assert err.rstrip().endswith(f"(300000 bytes, sha256 {sha(b'x' * 300_000)})")  # the bar removed, the line kept


def test_a_corrupt_copy_is_said_louder_than_an_unreachable_mirror(server, tmp_path):
    server.files["/a.zip"] = b"x" * 10
    url, down = server.url("/a.zip"), closed_port_url()
    with pytest.raises(ValueError, match=rf"no verified copy.*{url}: downloaded 10 bytes, expected 11; {down}: "):
        data.download_jena(tmp_path, url=url, mirrors=[down], size=11, verbose=False)
    assert list(tmp_path.iterdir()) == []
