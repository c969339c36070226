"""Read named arrays from an ``.npz`` without running code, with bounded decompression.

``np.load(allow_pickle=True)`` unpickles object arrays with the whole pickle machinery, so a crafted
file runs any code it likes, and a file that is not a zip is read with ``pickle.load``. This reader:

- opens the file with ``zipfile`` only; anything that is not a zip archive is refused;
- checks each member's uncompressed size as the central directory declares it (``ZipInfo.file_size``)
  against ``MAX_MEMBER_BYTES`` and the members' sum against ``MAX_TOTAL_BYTES`` *before* inflating, then
  reads at most that size + 1 through ``zipfile``, which stops at the declared size and checks the CRC-32
  (a lying header is refused as damaged);
- parses the ``.npy`` header with ``numpy.lib.format`` (``read_magic``, ``read_array_header_1_0/2_0``:
  a literal dict, no code) and reads numeric dtypes with ``np.frombuffer`` after checking the byte count;
- reads an object array (only where the caller expects one: ``ragged``) with a restricted unpickler.
  ``find_class`` admits exactly the globals numpy's object-array pickle references, checked with
  ``pickletools.dis`` on ``np.save(np.array([[1, 2], [3]], dtype=object))``: numpy 2.x (protocol 4)
  ``numpy._core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; numpy 1.x (protocol 3)
  the same with ``numpy.core.multiarray._reconstruct``; a protocol-2 pickle written by Python 3 (older
  numpy) adds ``_codecs.encode``, for its bytes. Each maps to a stand-in here, not to numpy: the stand-ins
  accept only the arguments and ``__setstate__`` tuples numpy writes and build the arrays themselves, so
  numpy's own setstate never sees the file's data. Anything else (``builtins.exec``, ``os.system``,
  persistent ids, ...) is refused. The payload must be a 1-D object array whose entries are lists of
  ints (bools refused) or 1-D integer arrays; they are returned as 1-D int64 arrays.

Every failure is one ``ValueError`` (``FileNotFoundError`` for a missing file) naming the file and member.
"""
from __future__ import annotations

import io
import math
import os
import pickle
import reprlib
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from numpy.lib import format as npy_format

MiB = 1 << 20
# Keras's imdb.npz is about 17 MB compressed (a synthetic file of its size inflates to 13 MB per review
# array). 512 MiB per member and 1 GiB for the arrays read together are far beyond any real file, yet
# bound what a crafted archive (a few KB of deflate can claim gigabytes) can make the reader allocate.
MAX_MEMBER_BYTES = 512 * MiB
MAX_TOTAL_BYTES = 1024 * MiB
_INT_CODES = {f"{k}{n}" for k in "iu" for n in (1, 2, 4, 8)}


# ---------------------------------------------------------------- restricted unpickling
_abridged = reprlib.Repr()
_abridged.maxstring = _abridged.maxother = 40
_short = _abridged.repr  # the file's values in messages, abridged


class _Admitted:
    """A global ``find_class`` admits: calls ``fn``; pickle's BUILD on it is refused, so no file can set
    attributes on these module-level objects."""

    __slots__ = ("fn",)

    def __init__(self, fn):
        self.fn = fn

    def __call__(self, *args):
        return self.fn(*args)

    def __setstate__(self, state):
        raise pickle.UnpicklingError("BUILD on an admitted global")


def _not_callable(*args):
    raise pickle.UnpicklingError("numpy.ndarray is admitted only as _reconstruct's first argument")


_NDARRAY = _Admitted(_not_callable)


class _Dtype:
    """Stand-in for ``numpy.dtype(code, align, copy)``: object or integer codes only; state checked."""

    def __init__(self, code, align=False, copy=True):
        if type(code) is not str or code not in _INT_CODES | {"O4", "O8"}:
            raise pickle.UnpicklingError(f"dtype {_short(code)} is not admitted (object or integer only)")
        self.dtype = np.dtype(object if code[0] == "O" else code)

    def __setstate__(self, state):
        # numpy writes (3, byteorder, None, None, None, -1, -1, flags) for a plain dtype
        if (type(state) is not tuple or len(state) != 8 or state[0] != 3 or state[2:5] != (None, None, None)
                or state[1] not in ("<", ">", "|", "=")):
            raise pickle.UnpicklingError("dtype state is not a plain dtype's")
        if state[1] in "<>" and self.dtype != object:
            self.dtype = self.dtype.newbyteorder(state[1])


class _Array:
    """Stand-in for ``_reconstruct(ndarray, (0,), b'b')``; ``__setstate__`` builds a 1-D array."""

    array = None

    def __setstate__(self, state):
        # numpy writes (1, shape, dtype, is_fortran, data): data a list (object) or bytes (numbers)
        if type(state) is not tuple or len(state) != 5 or state[0] != 1:
            raise pickle.UnpicklingError("array state is not numpy's (1, shape, dtype, fortran, data)")
        _, shape, dt, _, raw = state
        if type(shape) is not tuple or len(shape) != 1 or type(shape[0]) is not int or shape[0] < 0:
            raise pickle.UnpicklingError(f"array shape {_short(shape)} is not 1-D")
        if not isinstance(dt, _Dtype):
            raise pickle.UnpicklingError("array dtype is not a dtype")
        n = shape[0]
        if dt.dtype == object:
            if type(raw) is not list or len(raw) != n:
                raise pickle.UnpicklingError(f"object array data is not a list of {n} entries")
            self.array = np.empty(n, dtype=object)
            for i, v in enumerate(raw):
                self.array[i] = v
            return
        if type(raw) is str:  # a Python 2 pickle read with encoding="latin1"
            raw = raw.encode("latin1")
        if type(raw) is not bytes or len(raw) != n * dt.dtype.itemsize:
            raise pickle.UnpicklingError(f"array data is not {n * dt.dtype.itemsize} bytes")
        self.array = np.frombuffer(raw, dt.dtype).copy()


def _reconstruct(subtype, shape, typecode):
    if subtype is not _NDARRAY or shape != (0,) or typecode not in (b"b", "b"):
        raise pickle.UnpicklingError("_reconstruct with arguments numpy never writes")
    return _Array()


def _encode(text, encoding):
    """``_codecs.encode`` as protocol 2 uses it for bytes: ``(str, 'latin1') -> bytes``, nothing else."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError("_codecs.encode with arguments other than (str, 'latin1')")
    return text.encode("latin1")


ADMITTED_GLOBALS = {("numpy._core.multiarray", "_reconstruct"): _Admitted(_reconstruct),
                    ("numpy.core.multiarray", "_reconstruct"): _Admitted(_reconstruct),
                    ("numpy", "ndarray"): _NDARRAY, ("numpy", "dtype"): _Admitted(_Dtype),
                    ("_codecs", "encode"): _Admitted(_encode)}


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        try:
            return ADMITTED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refused global {_short(module)[1:-1]}.{_short(name)[1:-1]} (only "
                                         "numpy's array pickle is admitted)") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("persistent ids are refused")


def _ragged(payload: bytes, n: int) -> np.ndarray:
    """Unpickle a 1-D object array of ``n`` integer sequences; return it with int64 array entries."""
    stream = io.BytesIO(payload)
    try:
        top = _Unpickler(stream, encoding="latin1").load()
    except Exception as e:  # the payload is untrusted: any failure in it is a refusal
        raise ValueError(f"refused pickle ({type(e).__name__}: {str(e)[:300]})") from None
    if stream.tell() != len(payload):
        raise ValueError(f"{len(payload) - stream.tell()} bytes after the pickle")
    if not isinstance(top, _Array) or top.array is None or top.array.dtype != object or len(top.array) != n:
        raise ValueError(f"pickle is not a 1-D object array of {n} entries")
    out, total = np.empty(n, dtype=object), 0
    for i, v in enumerate(top.array):
        total += len(v) if type(v) is list else v.array.size if isinstance(v, _Array) and v.array is not None else 0
        if total > len(payload):  # every integer of a real pickle costs at least a byte; memo references don't
            raise ValueError(f"entries 0..{i} hold more integers ({total}) than the pickle has bytes "
                             f"({len(payload)}): entries share references")
        if type(v) is list:
            if not set(map(type, v)) <= {int}:
                raise ValueError(f"entry {i} holds {sorted({type(t).__name__ for t in v} - {'int'})}, not ints")
            try:
                out[i] = np.array(v, dtype=np.int64)
            except OverflowError:
                raise ValueError(f"entry {i} holds an integer out of the int64 range") from None
        elif isinstance(v, _Array) and v.array is not None and v.array.dtype.kind in "iu":
            if v.array.size and v.array.dtype == np.uint64 and v.array.max() > np.iinfo(np.int64).max:
                raise ValueError(f"entry {i} holds an integer out of the int64 range")
            out[i] = v.array.astype(np.int64)
        else:
            raise ValueError(f"entry {i} is a {type(v).__name__}, not a list of ints or an integer array")
    return out


# ---------------------------------------------------------------- zip members
def _member_bytes(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Return the member's ``info.file_size`` bytes through ``zipfile``, which never inflates past that size.

    A size field that lies makes zipfile stop at the declared size and report a CRC-32 mismatch; a member
    that ends early is truncated. Both are ValueErrors here.
    """
    if info.flag_bits & 0x1:
        raise ValueError("encrypted")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise ValueError(f"compression method {info.compress_type} (numpy writes stored or deflated)")
    try:
        with zf.open(info) as f:
            data = f.read(info.file_size + 1)
    except (zipfile.BadZipFile, EOFError, zlib.error) as e:
        raise ValueError(f"damaged ({e}): its data do not match the archive's declared size and CRC-32") from None
    if len(data) != info.file_size:
        raise ValueError(f"truncated: {len(data)} of the declared {info.file_size} bytes")
    return data


def _parse_npy(data: bytes, ragged: bool) -> np.ndarray:
    stream = io.BytesIO(data)
    version = npy_format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = npy_format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = npy_format.read_array_header_2_0(stream)
    else:
        raise ValueError(f".npy format version {version} (1.0 and 2.0 are read)")
    if ragged:
        if dtype != object or len(shape) != 1:
            raise ValueError(f"dtype {dtype} shape {shape}; expected a 1-D object array of integer sequences")
        return _ragged(data[stream.tell():], shape[0])
    if dtype.hasobject:
        raise ValueError(f"dtype {dtype} holds objects where numbers are expected (not unpickled)")
    expected = math.prod(shape) * dtype.itemsize
    if len(data) - stream.tell() != expected:
        raise ValueError(f"header declares {shape} {dtype} ({expected} bytes) but {len(data) - stream.tell()} "
                         "bytes follow")
    flat = np.frombuffer(data, dtype, offset=stream.tell())
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def read_npz(path: str | os.PathLike, numeric=(), ragged=()) -> dict[str, np.ndarray]:
    """Read the arrays named in ``numeric`` and ``ragged`` from the ``.npz`` at ``path``.

    Args:
      numeric: names of plain (non-object) arrays, read without unpickling.
      ragged: names of 1-D object arrays of integer sequences, read with the restricted unpickler.
    Returns:
      {name: array}; ragged arrays are 1-D object arrays of 1-D int64 arrays.
    Raises:
      FileNotFoundError: no file at ``path``.   ValueError: naming ``path`` (and the member): not a zip,
      missing member, size over the caps, corrupt or truncated data, a refused payload.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    wanted = {name: name in ragged for name in (*numeric, *ragged)}
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, struct.error, OverflowError) as e:
        raise ValueError(f"{path}: not an .npz (zip) file ({e})") from None
    except OSError as e:
        raise OSError(f"{path}: cannot read ({e})") from None
    names = [i.filename for i in infos]
    members = {}
    for name in wanted:
        member = f"{name}.npy" if f"{name}.npy" in names else name
        if names.count(member) > 1:
            raise ValueError(f"{path}: member {member} appears {names.count(member)} times")
        if member in names:
            members[name] = next(i for i in infos if i.filename == member)
    missing = sorted(n for n in wanted if n not in members)
    if missing:
        raise ValueError(f"{path}: missing arrays {missing} (has {sorted(n.removesuffix('.npy') for n in names)})")
    for name, info in members.items():
        if info.file_size > MAX_MEMBER_BYTES:
            raise ValueError(f"{path}: member {info.filename} declares {info.file_size} bytes uncompressed, over "
                             f"the {MAX_MEMBER_BYTES} byte cap (jena_rnn.data.safe_npz.MAX_MEMBER_BYTES)")
    total = sum(i.file_size for i in members.values())
    if total > MAX_TOTAL_BYTES:
        raise ValueError(f"{path}: members {sorted(members)} declare {total} bytes uncompressed, over the "
                         f"{MAX_TOTAL_BYTES} byte cap (jena_rnn.data.safe_npz.MAX_TOTAL_BYTES)")
    out = {}
    with zipfile.ZipFile(path) as zf:
        for name, info in members.items():
            try:
                out[name] = _parse_npy(_member_bytes(zf, info), wanted[name])
            except (ValueError, TypeError, EOFError, zlib.error, struct.error, OverflowError) as e:
                raise ValueError(f"{path}: member {info.filename}: {e}") from None
    return out
