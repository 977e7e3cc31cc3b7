"""sketch-rnn stroke-3 archives (``.npz``), read without trusting pickle.

A sketch-rnn data set (e.g. the Quick, Draw! ``cat.npz``) is ``np.savez`` of up
to three 1-D *object* arrays, ``train`` / ``valid`` / ``test``, each element an
int16 ``(N, 3)`` array of rows ``[dx, dy, pen_lift]``. Each sequence becomes
one :class:`~vrnn.ink.Ink` via :meth:`Ink.from_offsets` (starting at the
origin, a new stroke after every ``pen_lift``), with ``label`` = the file's
stem (``"cat"``; ``None`` for unnamed bytes) and ``meta = {"split", "index"}``.
Numeric ``(K, N, 3)`` / ``(N, 3)`` members and object arrays of numbers shaped
``(K, N, 3)`` (what ``np.array`` makes of equal-length sequences) are read too.

numpy stores object arrays as a pickle, and unpickling runs whatever the
pickle names. So this module never calls ``np.load``: it reads the zip members
itself (declared uncompressed sizes are checked against ``Limits.max_bytes``
before anything is inflated) and unpickles with :class:`RestrictedUnpickler`,
whose ``find_class`` admits only the names numpy's own array pickles use -
``numpy[._]core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``
and ``numpy[._]core.multiarray.scalar`` - and maps them to inert stand-ins that
merely record what they are given. Any other global (``os.system``,
``builtins.eval``, ...) is refused with ``InkFormatError`` before anything is
called. The recorded states are then checked (numeric dtypes only, byte
counts matching shapes, sizes within the limits) and turned into arrays with
``np.frombuffer``; numpy never sees an untrusted pickle state.
"""

from __future__ import annotations

import io
import math
import pickle
import re
import warnings
import zipfile
from pathlib import PurePath

import numpy as np

from vrnn.ink import Ink, InkFormatError

from ._common import Source, snippet

SPLITS = ("train", "valid", "test")
_MAX_MEMBERS = 64
_MAX_HEADER = 10_000  # bytes of .npy header (numpy's own default)
_DTYPE_SPEC = re.compile(r"[<>|=]?(?:[iuf][1248]|O[48]?)")


# ------------------------------------------------------ restricted unpickling
class _NdarrayToken:
    """Stands for ``numpy.ndarray`` in a pickle; only ever an argument, never called."""

    __slots__ = ()


class _DtypeStub:
    """A whitelisted dtype named by a pickle; ``__setstate__`` only records the byte order."""

    __slots__ = ("dtype",)

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype

    def __setstate__(self, state: object) -> None:
        if not isinstance(state, tuple) or len(state) < 2 or state[1] not in ("<", ">", "|", "="):
            raise pickle.UnpicklingError("unexpected dtype state")
        if any(part is not None for part in state[2:5]):  # subarray, names, fields
            raise pickle.UnpicklingError("structured dtypes are refused")
        if state[1] in "<>" and self.dtype.itemsize > 1 and self.dtype.kind != "O":
            self.dtype = self.dtype.newbyteorder(state[1])


class _ArrayStub:
    """What an ndarray pickle builds here: its ``__setstate__`` argument, kept unchecked for later."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = None

    def __setstate__(self, state: object) -> None:
        self.state = state


class _Reconstruct:
    """Stands for ``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')``."""

    __slots__ = ()

    def __call__(self, subtype: object, shape: object, typecode: object) -> _ArrayStub:
        if not isinstance(subtype, _NdarrayToken):
            raise pickle.UnpicklingError("_reconstruct of something other than numpy.ndarray")
        return _ArrayStub()


class _MakeDtype:
    """Stands for ``numpy.dtype(spec, align, copy)`` with ``spec`` a plain numeric or object code."""

    __slots__ = ()

    def __call__(self, spec: object, align: object = False, copy: object = False) -> _DtypeStub:
        if not isinstance(spec, str) or not _DTYPE_SPEC.fullmatch(spec):
            raise pickle.UnpicklingError(f"dtype {snippet(spec)} is refused (numeric or object only)")
        return _DtypeStub(np.dtype(spec))


class _MakeScalar:
    """Stands for ``numpy.core.multiarray.scalar(dtype, raw_bytes)`` of a numeric dtype."""

    __slots__ = ()

    def __call__(self, dtype: object, raw: object = None) -> np.generic:
        if not isinstance(dtype, _DtypeStub) or dtype.dtype.kind not in "iuf":
            raise pickle.UnpicklingError("scalar of a non-numeric dtype")
        if isinstance(raw, str):  # Python 2 pickles, read with encoding="latin1"
            raw = raw.encode("latin-1")
        if not isinstance(raw, bytes) or len(raw) != dtype.dtype.itemsize:
            raise pickle.UnpicklingError("scalar bytes do not match its dtype")
        return np.frombuffer(raw, dtype=dtype.dtype)[0]


_RECONSTRUCT, _DTYPE, _SCALAR, _NDARRAY = _Reconstruct(), _MakeDtype(), _MakeScalar(), _NdarrayToken()
_ADMITTED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy.core.multiarray", "scalar"): _SCALAR,
    ("numpy._core.multiarray", "scalar"): _SCALAR,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTYPE,
}


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle named a global outside the numeric-array whitelist."""


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles numpy array pickles into inert stubs; every other global is refused, uncalled.

    The stand-ins have no ``__dict__`` and no settable slots, so a pickle's
    ``BUILD`` cannot change them between loads. This is the pure-Python
    unpickler on purpose: CPython's C one keeps its memo in an array that a
    single ``LONG_BINPUT 2**30`` grows (and zero-fills) to gigabytes, which is
    a memory and time bomb; the Python one keeps a dict.
    """

    def find_class(self, module: str, name: str):
        try:
            return _ADMITTED[(module, name)]
        except (KeyError, TypeError):
            raise RefusedGlobal(f"pickled global {snippet(module)}.{snippet(name)} is refused") from None

    def persistent_load(self, pid: object):
        raise pickle.UnpicklingError("persistent references are refused")


def restricted_unpickle(payload: bytes) -> object:
    """Unpickle ``payload`` with :class:`RestrictedUnpickler` (Python 2 strings as latin-1)."""
    return RestrictedUnpickler(io.BytesIO(payload), encoding="latin1").load()


# ------------------------------------------------------------- stub checks
def _state(obj: object, src: Source, where: str) -> tuple[tuple[int, ...], np.dtype, bool, object]:
    """``(shape, dtype, fortran, raw)`` of an array stub, every part type-checked."""
    if not isinstance(obj, _ArrayStub):
        kind = "numpy scalar" if isinstance(obj, np.generic) else type(obj).__name__
        raise src.error(where, f"a pickled {kind}, not a numeric array")
    state = obj.state
    if isinstance(state, tuple) and len(state) == 5:
        state = state[1:]  # leading pickle-state version
    if not isinstance(state, tuple) or len(state) != 4:
        raise src.error(where, "malformed pickled array state")
    shape, dtype, fortran, raw = state
    if (
        not isinstance(shape, tuple)
        or len(shape) > 3
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise src.error(where, f"bad array shape {snippet(shape)}")
    if not isinstance(dtype, _DtypeStub):
        raise src.error(where, "pickled array without a numpy dtype")
    return shape, dtype.dtype, bool(fortran), raw


def _numeric_array(obj: object, src: Source, where: str) -> np.ndarray:
    """A numeric ndarray from an array stub, built with ``np.frombuffer`` after the size checks."""
    shape, dtype, fortran, raw = _state(obj, src, where)
    if dtype.kind not in "iuf":
        raise src.error(where, f"array of dtype {dtype}, not numbers")
    count = math.prod(shape)
    if isinstance(raw, str):
        raw = raw.encode("latin-1")
    if not isinstance(raw, (bytes, bytearray)) or len(raw) != count * dtype.itemsize:
        raise src.error(where, "array data does not match its shape and dtype")
    return np.frombuffer(raw, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def _object_sequences(obj: object, header_shape: tuple, src: Source, where: str) -> list[np.ndarray]:
    """Sequences from the unpickled top-level object array of an ``.npy`` member."""
    shape, dtype, _, elements = _state(obj, src, where)
    if dtype.kind != "O":
        return _numeric_sequences(_numeric_array(obj, src, where), src, where)
    if shape != header_shape:
        raise src.error(where, f"pickled shape {shape} differs from the header's {header_shape}")
    if not isinstance(elements, list) or len(elements) != math.prod(shape):
        raise src.error(where, "object array data does not match its shape")
    if len(shape) == 1:
        if len(elements) > src.limits.max_inks:
            raise src.error(where, f"more than {src.limits.max_inks:,} sequences (Limits.max_inks)")
        return [_numeric_array(element, src, f"{where}[{i}]") for i, element in enumerate(elements)]
    if len(shape) == 3 and shape[2] == 3:
        numbers = (int, float, np.integer, np.floating)
        if not all(isinstance(e, numbers) and not isinstance(e, bool) for e in elements):
            raise src.error(where, "object array of shape (K, N, 3) holding something other than numbers")
        return list(np.array(elements, dtype=np.float64).reshape(shape))
    raise src.error(where, f"object array of shape {shape}; want (K,) of (N, 3) arrays")


def _numeric_sequences(array: np.ndarray, src: Source, where: str) -> list[np.ndarray]:
    if array.ndim == 3 and array.shape[2] == 3:
        return list(array)
    if array.ndim == 2 and array.shape[1] == 3:
        return [array]
    raise src.error(where, f"numeric array of shape {array.shape}; want (K, N, 3) or (N, 3)")


# ------------------------------------------------------------------ reading
def _npy_sequences(raw: bytes, src: Source, where: str) -> list[np.ndarray]:
    """The stroke-3 sequences stored in one ``.npy`` member."""
    stream = io.BytesIO(raw)
    try:
        with warnings.catch_warnings():
            # numpy warns about Python 2 headers (old sketch-rnn files) and junk literals; neither matters
            warnings.simplefilter("ignore")
            version = np.lib.format.read_magic(stream)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream, max_header_size=_MAX_HEADER)
            elif version == (2, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream, max_header_size=_MAX_HEADER)
            else:
                raise ValueError(f"unsupported .npy version {version}")
    except Exception as exc:  # noqa: BLE001 - numpy's header parser raises many types on junk
        raise src.error(where, f"bad .npy header: {type(exc).__name__}: {exc}") from None
    payload = raw[stream.tell() :]
    if dtype.hasobject:
        if dtype != np.dtype(object):
            raise src.error(where, f"dtype {dtype} mixes objects into records")
        try:
            obj = restricted_unpickle(payload)
        except InkFormatError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of an untrusted pickle is a format error
            raise src.error(where, f"refused pickle: {type(exc).__name__}: {exc}") from None
        return _object_sequences(obj, tuple(shape), src, where)
    if dtype.kind not in "iuf" or dtype.fields is not None or dtype.subdtype is not None:
        raise src.error(where, f"dtype {dtype} is not numeric")
    count = math.prod(shape)
    if len(payload) != count * dtype.itemsize:
        raise src.error(where, f"data is {len(payload)} bytes, header says {count * dtype.itemsize}")
    array = np.frombuffer(payload, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")
    return _numeric_sequences(array, src, where)


def _member_bytes(archive: zipfile.ZipFile, info: zipfile.ZipInfo, src: Source) -> bytes:
    """A member's bytes, never more than its (already checked) declared size."""
    try:
        with archive.open(info) as member:
            raw = member.read(info.file_size + 1)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, NotImplementedError, OSError, EOFError) as exc:
        raise src.error(info.filename, f"cannot unpack zip member: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - zlib/bz2/lzma errors on corrupt streams
        raise src.error(info.filename, f"corrupt zip member: {type(exc).__name__}: {exc}") from None
    if len(raw) != info.file_size:
        raise src.error(info.filename, "member size differs from the zip directory")
    return raw


def read_npz(data: bytes, src: Source) -> list[Ink]:
    """Parse a sketch-rnn ``.npz`` archive (see the module docstring)."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError, OSError, EOFError) as exc:
        raise src.error("zip", f"not a valid .npz (zip) archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > _MAX_MEMBERS:
            raise src.error("zip", f"{len(infos)} members; an .npz of train/valid/test has at most {_MAX_MEMBERS}")
        expanded = sum(info.file_size for info in infos)
        if expanded > src.limits.max_bytes:
            raise src.error(
                "zip",
                f"members expand to {expanded:,} bytes, over the limit of {src.limits.max_bytes:,} (Limits.max_bytes)",
            )
        members = {info.filename: info for info in infos}
        splits = [split for split in SPLITS if f"{split}.npy" in members]
        if not splits:
            names = ", ".join(snippet(n, 30) for n in list(members)[:8])
            raise src.error("zip", f"no train.npy / valid.npy / test.npy member (has {names or 'nothing'})")
        name = PurePath(src.name)
        label = name.stem if name.suffix.lower() == ".npz" else None
        inks = []
        for split in splits:
            raw = _member_bytes(archive, members[f"{split}.npy"], src)
            for index, sequence in enumerate(_npy_sequences(raw, src, f"{split}.npy")):
                inks.append(_sequence_ink(sequence, src, f"{split}[{index}]", label, {"split": split, "index": index}))
    return inks


def _sequence_ink(sequence: np.ndarray, src: Source, where: str, label: str | None, meta: dict) -> Ink:
    if sequence.ndim != 2 or sequence.shape[1] != 3:
        raise src.error(where, f"want an (N, 3) stroke-3 array, got shape {sequence.shape}")
    if len(sequence) == 0:
        raise src.error(where, "empty sequence")
    src.add_points(len(sequence), where)
    src.add_ink(where)
    try:
        return Ink.from_offsets(sequence.astype(np.float64), label=label, meta=meta)
    except InkFormatError as exc:
        raise src.error(where, str(exc)) from None
