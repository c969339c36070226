"""Bad IMDB inputs (issue 14): no code runs from a data file, decompression is bounded, one clear error."""
import builtins
import dataclasses
import io
import json
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from jena_rnn import cli, imdb
from jena_rnn.data import imdb_files, safe_npz, text
from jena_rnn.config import LayerConfig


class Exec:
    """Unpickles to ``exec(code)``: what a crafted file uses to run code under ``np.load(allow_pickle=True)``."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return builtins.exec, (self.code,)


class System:
    """Unpickles to ``os.system(command)``."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def touch_code(marker):
    return f"open({str(marker)!r}, 'w').write('x')"


def ragged(*seqs):
    out = np.empty(len(seqs), dtype=object)
    for i, s in enumerate(seqs):
        out[i] = s
    return out


def good(**override):
    arrays = {"x_train": ragged([1, 5, 9], [2], [3, 3], [4], [6]), "y_train": np.array([1, 0, 1, 0, 1]),
              "x_test": ragged([7, 3], [1]), "y_test": np.array([0, 1])}
    arrays.update(override)
    return arrays


def savez(path, compressed=False, **arrays):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def npy_header(descr, shape):
    head = io.BytesIO()
    np.lib.format.write_array_header_1_0(head, {"descr": descr, "fortran_order": False, "shape": shape})
    return head.getvalue()


def object_npy(pickle_bytes, n):
    """An .npy member: numpy's header for a 1-D object array of n entries, then ``pickle_bytes``."""
    return npy_header("|O", (n,)) + pickle_bytes


def npz_members(path, members, compression=zipfile.ZIP_STORED):
    """Write an npz from {name: .npy bytes}, the other Keras keys taken from ``good()``."""
    with zipfile.ZipFile(path, "w", compression) as zf:
        for key, arr in good().items():
            if f"{key}.npy" not in members:
                buf = io.BytesIO()
                np.save(buf, arr)
                zf.writestr(f"{key}.npy", buf.getvalue())
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def set_central_size(path, member, size):
    """Overwrite ``member``'s uncompressed size in the zip's central directory (a lying or huge header)."""
    data = bytearray(path.read_bytes())
    at = data.index(b"PK\x01\x02")
    while data[at + 46:at + 46 + struct.unpack_from("<H", data, at + 28)[0]] != member.encode():
        at = data.index(b"PK\x01\x02", at + 4)
    struct.pack_into("<L", data, at + 24, size)
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------- class 1: no code runs from a data file
def malicious_npz(path, marker, how):
    """An npz whose x_train runs code that creates ``marker`` when unpickled by np.load(allow_pickle=True)."""
    if how == "savez_element":  # the real format, np.savez of an object array, one entry an exploit
        return savez(path, **good(x_train=ragged([1, 2], Exec(touch_code(marker)))))
    if how == "savez_compressed_element":
        return savez(path, compressed=True, **good(x_train=ragged([1, 2], Exec(touch_code(marker)))))
    if how == "os_system":
        return savez(path, **good(x_train=ragged(System(f"touch {marker}"))))
    proto = {"exec_protocol0": 0, "exec_protocol2": 2, "exec_protocol5": 5}[how]
    return npz_members(path, {"x_train.npy": object_npy(pickle.dumps(Exec(touch_code(marker)), protocol=proto), 1)})


MALICIOUS = ["savez_element", "savez_compressed_element", "os_system", "exec_protocol0", "exec_protocol2",
             "exec_protocol5"]


@pytest.mark.parametrize("how", MALICIOUS)
def test_pickle_exploit_in_npz_runs_nothing(tmp_path, how):
    live, marker = tmp_path / "live_marker", tmp_path / "marker"
    # the fixture is live: numpy's own loader does run it
    with np.load(malicious_npz(tmp_path / "live.npz", live, how), allow_pickle=True) as f:
        f["x_train"]
    assert live.exists()
    path = malicious_npz(tmp_path / "imdb.npz", marker, how)
    with pytest.raises(ValueError, match=r"imdb\.npz: member x_train\.npy: refused pickle .*refused global"):
        text.load_keras_npz(path, 100)
    with pytest.raises(ValueError, match="refused global"):
        text.load_corpus(tmp_path, 100)  # the folder dispatch reaches the same reader
    assert not marker.exists()


@pytest.mark.parametrize("name", ["imdb.npz", "data.pkl", "inside/imdb.npz"])
def test_plain_pickle_file_is_refused_and_runs_nothing(tmp_path, name):
    live, marker = tmp_path / "live_marker", tmp_path / "marker"
    (tmp_path / "live.pkl").write_bytes(pickle.dumps(Exec(touch_code(live))))
    np.load(tmp_path / "live.pkl", allow_pickle=True)  # numpy reads a non-zip with pickle.load
    assert live.exists()
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(pickle.dumps(Exec(touch_code(marker))))
    with pytest.raises(ValueError, match=rf"{path.name}: not an \.npz \(zip\) file"):
        text.load_corpus(path.parent if name.startswith("inside") else path, 100)
    assert not marker.exists()


def test_object_array_where_labels_belong_is_not_unpickled(tmp_path):
    marker = tmp_path / "marker"
    path = savez(tmp_path / "imdb.npz", **good(y_train=ragged(Exec(touch_code(marker)), 0, 1, 0, 1)))
    with pytest.raises(ValueError, match=r"y_train\.npy: dtype object holds objects where numbers are expected"):
        text.load_keras_npz(path, 100)
    assert not marker.exists()


_RECON = b"cnumpy._core.multiarray\n_reconstruct\n"
PAYLOADS = {  # hand-written pickles that use only admitted names, with arguments numpy never writes
    "ndarray_called": (b"cnumpy\nndarray\n(I100000000000\ntR.", "numpy.ndarray is admitted only as"),
    "reconstruct_big_shape": (_RECON + b"(cnumpy\nndarray\n(I1000000000\ntC\x01btR.", "arguments numpy never"),
    "dtype_bool": (b"cnumpy\ndtype\n(Vb1\nI0\nI1\ntR.", "dtype 'b1' is not admitted"),
    "codecs_other_encoding": (b"c_codecs\nencode\n(Vx\nVrot13\ntR.", "other than \\(str, 'latin1'\\)"),
    "persistent_id": (b"Pfoo\n.", "persistent ids are refused"),
    "not_an_array": (b"(lp0\nI1\na.", "pickle is not a 1-D object array of 5 entries"),
    "build_on_ndarray": (b"cnumpy\nndarray\n}(Vx\nI1\nub.", "BUILD on an admitted global"),
    "build_on_reconstruct": (_RECON + b"}(V__defaults__\n(I1\nI2\ntub.", "BUILD on an admitted global"),
    "build_on_dtype_class": (b"cnumpy\ndtype\n(I3\nV|\nNNNI-1\nI-1\nI0\ntb.", "BUILD on an admitted global"),
    "huge_global_name": (b"c" + b"a" * 100_000 + b"\nb\n.", r"refused global a+\.\.\.a+\.b \(only numpy"),
}


@pytest.mark.parametrize("payload, message", PAYLOADS.values(), ids=PAYLOADS.keys())
def test_admitted_names_with_odd_arguments_are_refused(tmp_path, payload, message):
    path = npz_members(tmp_path / "imdb.npz", {"x_train.npy": object_npy(payload, 5)})
    with pytest.raises(ValueError, match=r"imdb\.npz: member x_train\.npy: .*" + message) as e:
        text.load_keras_npz(path, 100)
    assert len(str(e.value)) < 400  # the file's values are abridged in the message
    # no file can change the admitted globals: a good file still reads afterwards
    assert text.load_keras_npz(savez(tmp_path / "good.npz", **good()), 100)[0][1].tolist()


def test_shared_references_cannot_multiply_the_payload(tmp_path):
    shared = list(range(1, 1001))
    x = ragged(*([shared] * 1000))  # pickled once, referenced 1000 times: 1e6 integers from ~3 KB
    path = savez(tmp_path / "imdb.npz", **good(x_train=x, y_train=np.zeros(1000, np.int64)))
    with pytest.raises(ValueError, match=r"x_train\.npy: entries 0\.\.\d+ hold more integers .* share references"):
        text.load_keras_npz(path, 100)


@pytest.mark.parametrize("entry, message", [
    ([True, False], r"x_train\.npy: entry 0 holds \['bool'\], not ints"),
    ([1.5], r"entry 0 holds \['float'\], not ints"),
    ([[1]], r"entry 0 holds \['list'\], not ints"),
    (["a"], r"entry 0 holds \['str'\], not ints"),
    ([2 ** 70], "out of the int64 range"),
    (np.array([True]), "dtype 'b1' is not admitted"),
    (np.array([1.0]), "dtype 'f8' is not admitted"),
    ("word", "entry 0 is a str"),
])
def test_ragged_entries_must_be_integer_sequences(tmp_path, entry, message):
    x = ragged(entry, [1], [2], [3], [4])
    path = savez(tmp_path / "imdb.npz", **good(x_train=x))
    with pytest.raises(ValueError, match=message):
        text.load_keras_npz(path, 100)


def test_numpy_1_and_protocol_2_pickles_are_read(tmp_path):
    x = ragged([1, 5, 9], [2], [3, 3], [4], [6])
    # numpy 1.26 writes exactly numpy 2's protocol-3 pickle with the numpy.core name (checked byte for byte)
    v1 = pickle.dumps(x, protocol=3).replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")
    assert b"numpy.core.multiarray" in v1
    v2 = pickle.dumps(x, protocol=2)  # older numpy: bytes as _codecs.encode(str, 'latin1')
    assert b"_codecs" in v2
    ints = ragged(np.array([1, 5, 9]), np.array([2], np.uint8), np.array([3, 3], np.int16), np.array([4]), [6])
    def as_lists(path):
        (x_tr, y_tr), (x_te, y_te), _ = text.load_keras_npz(path, 100)
        return x_tr, y_tr.tolist(), x_te, y_te.tolist()

    reference = as_lists(savez(tmp_path / "ref.npz", **good()))
    assert reference[0][0][0] == text.START and len(reference[0]) == 5
    for i, payload in enumerate((v1, v2, pickle.dumps(ints, protocol=2), pickle.dumps(ints, protocol=4))):
        path = npz_members(tmp_path / f"v{i}.npz", {"x_train.npy": object_npy(payload, 5)}, zipfile.ZIP_DEFLATED)
        assert as_lists(path) == reference


# ---------------------------------------------------------------- class 1: decompression is bounded
def test_member_declaring_a_huge_size_is_refused_before_inflating(tmp_path, monkeypatch):
    path = savez(tmp_path / "imdb.npz", compressed=True, **good())
    set_central_size(path, "x_train.npy", 600 << 20)
    monkeypatch.setattr(safe_npz, "_member_bytes", lambda *a: pytest.fail("inflated a member over the cap"))
    with pytest.raises(ValueError, match=r"imdb\.npz: member x_train\.npy declares 629145600 bytes uncompressed, "
                                         r"over the 536870912 byte cap"):
        text.load_keras_npz(path, 100)


def test_members_over_the_total_cap_are_refused(tmp_path, monkeypatch):
    path = savez(tmp_path / "imdb.npz", **good())
    monkeypatch.setattr(safe_npz, "MAX_TOTAL_BYTES", 600)
    with pytest.raises(ValueError, match=r"imdb\.npz: members .* declare \d+ bytes uncompressed, over the 600 byte"):
        text.load_keras_npz(path, 100)


@pytest.mark.parametrize("compressed", [True, False])
def test_stream_inflating_past_its_declared_size_is_stopped(tmp_path, compressed, monkeypatch):
    path = savez(tmp_path / "imdb.npz", compressed=compressed, **good(y_train=np.zeros(20_000, np.int64)))
    set_central_size(path, "y_train.npy", 1000)  # the real member is 160,128 bytes
    sizes = []
    real_open = zipfile.ZipFile.open

    def open_and_record(self, info, *a, **k):  # how much is asked of the lying member: its declared size + 1
        f = real_open(self, info, *a, **k)
        real_read = f.read
        f.read = lambda n=-1: sizes.append(n) or real_read(n)
        return f

    monkeypatch.setattr(zipfile.ZipFile, "open", open_and_record)
    with pytest.raises(ValueError, match=r"member y_train\.npy: damaged \(Bad CRC-32 for file 'y_train\.npy'\): "
                                         r"its data do not match the archive's declared size"):
        text.load_keras_npz(path, 100)
    assert sizes == [1001]  # never an unbounded read(-1); zipfile itself stops at the declared size


# ---------------------------------------------------------------- class 4: one clear error naming the file
def corrupt_member(path):
    data = bytearray(path.read_bytes())
    at = data.index(b"x_test.npy") + len("x_test.npy") + 40  # inside the member's data
    data[at:at + 8] = b"\xff" * 8
    path.write_bytes(bytes(data))


NPZ_CASES = {  # name: (write(path), message)
    "truncated": (lambda p: p.write_bytes(savez(p, **good()).read_bytes()[:300]), r"not an \.npz \(zip\) file"),
    "empty_file": (lambda p: p.write_bytes(b""), r"not an \.npz \(zip\) file"),
    "garbage": (lambda p: p.write_bytes(b"PK\x03\x04 this is not really a zip archive"), "not an .npz"),
    "crc": (lambda p: corrupt_member(savez(p, **good())), r"member x_test\.npy: .*(CRC|refused)"),
    "bad_deflate": (lambda p: corrupt_member(savez(p, compressed=True, **good())), r"member x_test\.npy: "),
    "missing_keys": (lambda p: np.savez(p, x_train=good()["x_train"], y_train=good()["y_train"]),
                     r"missing arrays \['x_test', 'y_test'\] \(has \['x_train', 'y_train'\]\)"),
    "labels_float": (lambda p: savez(p, **good(y_train=np.array([1.0, 0, 1, 0, 1]))),
                     r"y_train has dtype float64 .* expected 1-D integer 0/1 labels"),
    "labels_2d": (lambda p: savez(p, **good(y_test=np.array([[0], [1]]))), r"y_test has dtype int64 and shape"),
    "labels_not_01": (lambda p: savez(p, **good(y_test=np.array([0, 2]))), r"y_test must hold 0/1 labels"),
    "length_mismatch": (lambda p: savez(p, **good(y_train=np.array([1, 0]))),
                        "x_train has 5 reviews but y_train has 2 labels"),
    "x_not_ragged": (lambda p: savez(p, **good(x_train=np.ones((5, 3), np.int64))),
                     r"x_train\.npy: dtype int64 shape \(5, 3\); expected a 1-D object array"),
    "empty_test": (lambda p: savez(p, **good(x_test=ragged(), y_test=np.array([], np.int64))),
                   "x_test holds no reviews"),
    "rank_zero": (lambda p: savez(p, **good(x_train=ragged([1, 0], [2], [3], [4], [5]))),
                  r"x_train\[0\] holds rank 0; word ranks start at 1"),
    "header_lies": (lambda p: npz_members(p, {"y_test.npy": npy_header("<i8", (10 ** 9,)) + b"\0" * 16}),
                    r"y_test\.npy: header declares \(1000000000,\) int64 \(8000000000 bytes\) but 16 bytes follow"),
}


@pytest.mark.parametrize("case", NPZ_CASES.keys())
def test_bad_npz_is_one_clear_error(tmp_path, case):
    write, message = NPZ_CASES[case]
    path = tmp_path / "imdb.npz"
    write(path)
    with pytest.raises(ValueError, match=message) as exc:
        text.load_corpus(path, 100)
    assert "imdb.npz" in str(exc.value) and "\n" not in str(exc.value)


def write_reviews(root, split, reviews):
    for label, items in reviews.items():
        folder = root / split / label
        folder.mkdir(parents=True, exist_ok=True)
        for i, body in enumerate(items):
            (folder / f"{i}_{8 if label == 'pos' else 2}.txt").write_bytes(body)


def acl(tmp_path, train=True, test=True):
    root = tmp_path / "aclImdb"
    write_reviews(root, "train", {"pos": [b"great fun", b"good", b"fun"] * train,
                                  "neg": [b"bad", b"dull film", b"dull"] * train})
    write_reviews(root, "test", {"pos": [b"great"] * test, "neg": [b"bad"] * test})
    return root


def missing_neg(t):
    root = acl(t)
    for p in (root / "test" / "neg").iterdir():
        p.unlink()
    (root / "test" / "neg").rmdir()
    return root


def bad_review(t, where, body):
    root = acl(t)
    (root / where).write_bytes(body)
    return root


def fifo(t):
    os.mkfifo(t / "pipe")
    return t / "pipe"


ACL_CASES = {  # name: (make(tmp_path) -> path, exception, message)
    "empty_test_split": (lambda t: acl(t, test=False), ValueError, r"aclImdb/test: no reviews"),
    "empty_train_split": (lambda t: acl(t, train=False), ValueError, r"aclImdb/train: no reviews"),
    "missing_root": (lambda t: t / "nowhere", FileNotFoundError, r"nowhere: no such file or folder"),
    "not_acl_layout": (lambda t: (t / "stuff").mkdir() or t / "stuff", FileNotFoundError,
                       r"stuff: neither an aclImdb folder"),
    "missing_neg": (missing_neg, FileNotFoundError, r"test/neg: missing folder"),
    "latin1_review": (lambda t: bad_review(t, "train/pos/7_9.txt", "café".encode("latin-1")), ValueError,
                      r"7_9\.txt: not UTF-8 \(byte 3"),
    "empty_review": (lambda t: bad_review(t, "test/neg/5_1.txt", b" \n"), ValueError, r"5_1\.txt: empty review"),
    "fifo": (fifo, ValueError, "pipe: neither a regular file"),
    "folder_named_npz": (lambda t: (t / "imdb.npz").mkdir() or t / "imdb.npz", FileNotFoundError,
                         r"imdb\.npz: neither an aclImdb folder"),
}


@pytest.mark.parametrize("case", ACL_CASES.keys())
def test_bad_acl_folder_is_one_clear_error(tmp_path, case):
    make, exc_type, message = ACL_CASES[case]
    path = make(tmp_path)
    with pytest.raises(exc_type, match=message):
        text.load_corpus(path, 100)


def test_oversized_review_is_refused_before_reading(tmp_path, monkeypatch):
    root = acl(tmp_path)
    (root / "train" / "neg" / "9_1.txt").write_bytes(b"bad " * 100)
    monkeypatch.setattr(imdb_files, "MAX_REVIEW_BYTES", 200)  # read_review's home
    with pytest.raises(ValueError, match=r"9_1\.txt: 400 bytes, over the 200 byte cap"):
        text.load_corpus(root, 100)


def test_empty_split_is_refused_by_prepare_not_jax(tmp_path):
    cfg = imdb.IMDBConfig(data=str(acl(tmp_path, test=False)), max_features=20, maxlen=8)
    with pytest.raises(ValueError, match="aclImdb/test: no reviews"):
        imdb.prepare(cfg)


WORD_INDEX = {  # name: (file bytes, message)
    "not_json": (b"{'the': 1}", "not a UTF-8 JSON word index"),
    "latin1": ('{"café": 1}'.encode("latin-1"), "not a UTF-8 JSON word index .UnicodeDecodeError"),
    "list": (b"[1, 2]", "expected a JSON object mapping words to integer ranks, got list"),
    "string_rank": (b'{"the": "1"}', r"word 'the' has rank '1'; expected an integer >= 1"),
    "bool_rank": (b'{"the": true}', "word 'the' has rank True"),
    "zero_rank": (b'{"the": 0}', "word 'the' has rank 0"),
    "duplicate_rank": (b'{"the": 1, "a": 1}', "rank 1 is given to more than one word"),
    "deep_nesting": (b"[" * 100_000, "not a UTF-8 JSON word index .RecursionError"),
}


@pytest.mark.parametrize("case", WORD_INDEX.keys())
def test_bad_word_index_is_one_clear_error(tmp_path, case):
    body, message = WORD_INDEX[case]
    path = tmp_path / "imdb_word_index.json"
    path.write_bytes(body)
    with pytest.raises(ValueError, match=rf"imdb_word_index\.json: {message}"):
        text.load_word_index(path)


def test_missing_word_index_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"imdb_word_index\.json: no such file"):
        text.load_word_index(tmp_path / "imdb_word_index.json")


@pytest.mark.parametrize("fields, message", [
    ({"max_features": 4}, r"max_features \(--max-features\) must be at least 5 to keep any word, got 4"),
    ({"max_features": 0}, "max_features must be a positive integer, got 0"),
    ({"max_features": 2.5}, "max_features must be a positive integer, got 2.5"),
    ({"max_features": "100"}, "max_features must be a positive integer, got '100'"),
    ({"maxlen": True}, "maxlen must be a positive integer, got True"),
    ({"maxlen": -3}, "maxlen must be a positive integer, got -3"),
    ({"max_features": 10 ** 9, "embed_dim": 32}, r"--max-features\) 1000000000 x embed_dim 32 exceeds"),
    ({"validation_split": "0.2"}, "validation_split must be in"),
])
def test_config_values_that_cannot_work(fields, message):
    with pytest.raises(ValueError, match=message):
        imdb.IMDBConfig(**fields)


@pytest.mark.parametrize("fields, message", [
    ({"validation_split": 0.1}, r"aclImdb: validation_split 0.1 of 6 training reviews leaves 0 validation"),
    ({"maxlen": 10 ** 9}, r"aclImdb: --maxlen 1000000000 pads 8 reviews to 8000000000 tokens"),
])
def test_prepare_refuses_splits_and_lengths_that_cannot_work(tmp_path, fields, message):
    cfg = imdb.IMDBConfig(data=str(acl(tmp_path)), max_features=20, **{"maxlen": 8, **fields})
    with pytest.raises(ValueError, match=message):
        imdb.prepare(cfg)


def test_prepare_accepts_a_split_leaving_one_review_each_side(tmp_path):
    cfg = imdb.IMDBConfig(data=str(acl(tmp_path)), max_features=20, maxlen=8, validation_split=0.9)
    splits = imdb.prepare(cfg)  # int(6 * 0.9) = 5 validation reviews, 1 to train on
    assert [len(splits[s][2]) for s in ("train", "val", "test")] == [1, 5, 2]


# ---------------------------------------------------------------- the CLI: exit 2, one line, nothing written
@pytest.mark.parametrize("make, name", [
    (lambda t: malicious_npz(t / "imdb.npz", t / "marker", "savez_element"), "imdb.npz"),
    (lambda t: (t / "data.pkl").write_bytes(pickle.dumps(Exec(touch_code(t / "marker")))) and t / "data.pkl",
     "data.pkl"),
    (lambda t: acl(t, test=False), "aclImdb/test"),
])
def test_cli_gives_one_error_line(tmp_path, capsys, make, name):
    data = make(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(["imdb", "--data", str(data), "--out", str(tmp_path / "run"), "--quiet", "--epochs", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1, err
    assert err[0].startswith("jena-rnn: error: ") and name in err[0]
    assert not (tmp_path / "marker").exists() and not (tmp_path / "run").exists()


# ---------------------------------------------------------------- class 2: a resume on other reviews
def test_a_resume_on_other_reviews_is_refused(tmp_path):
    import shutil

    def corpus(seed):  # the same folder, other reviews: only the fingerprint can tell
        shutil.rmtree(tmp_path / "aclImdb", ignore_errors=True)
        return text.write_synthetic_imdb(tmp_path / "aclImdb", n_train=60, n_test=20, mean_len=12, vocab=40,
                                         seed=seed)

    cfg = imdb.IMDBConfig(data=str(corpus(1)), max_features=50, maxlen=16, embed_dim=4, epochs=1, batch_size=16,
                          layers=(LayerConfig(cell="lstm", units=4),))
    run_dir = tmp_path / "run"
    imdb.fit(cfg, imdb.prepare(cfg), run_dir, log=None)
    saved = json.loads((run_dir / "fingerprint.json").read_text())
    assert saved == imdb.data_fingerprint(imdb.prepare(cfg)) and saved["train"] == 48
    longer = dataclasses.replace(cfg, epochs=2)
    corpus(2)
    with pytest.raises(ValueError, match=r"cannot resume .*run: its reviews differ .* in content \(SHA-256 "):
        imdb.fit(longer, imdb.prepare(longer), run_dir, resume=True, log=None)
    corpus(1)
    _, history = imdb.fit(longer, imdb.prepare(longer), run_dir, resume=True, log=None)  # same reviews: resumes
    assert [h["epoch"] for h in history] == [1, 2]


# ---------------------------------------------------------------- found by a review
def test_a_rank_near_the_int64_limit_becomes_out_of_vocabulary_not_a_wrapped_index(tmp_path):
    path = tmp_path / "imdb.npz"
    savez(path, **good(x_train=ragged([2 ** 63 - 1, 5], [1]), y_train=np.array([1, 0])))
    (x_train, _), _, _, _ = text.load_corpus(path, 20)
    assert sorted(map(tuple, x_train)) == [(text.START, text.OOV, 8), (text.START, 4)]


@pytest.mark.parametrize("max_features", [0, -5, 4, True, 2.5])
def test_max_features_that_keep_no_word_are_refused(tmp_path, max_features):
    path = tmp_path / "imdb.npz"
    savez(path, **good())
    with pytest.raises(ValueError, match=r"max_features must be an integer of at least 5"):
        text.load_corpus(path, max_features)
