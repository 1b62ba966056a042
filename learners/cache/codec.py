"""A strict, numpy-aware msgpack codec: the replay cache's records (which the link carries as they are).

numpy arrays travel as msgpack ext type 1 holding ``[dtype, shape, raw bytes]``; numpy scalars
become plain Python numbers. Decoding trusts nothing: a wrong size, an object or structured dtype,
a shape that does not match the bytes, an unknown ext type or a malformed document raises
:class:`DecodeError` with a message that names the problem. Never pickle.

Speed matters here (one record per control tick on the actor, 50k+ records/s into the learner),
so encoding converts arrays to ext types itself and packs with a reused per-thread ``Packer``
(no ``default=`` callback), and decoding caches validated dtypes. The bytes are exactly those of
``msgpack.packb(obj, default=..., use_bin_type=True)`` with arrays as above.
"""

from __future__ import annotations

import math
import re
import threading
from typing import Any

import msgpack
import numpy as np

EXT_NDARRAY = 1
"""msgpack ext type code of a numpy array."""

MAX_NDIM = 32
_ALLOWED_KINDS = frozenset("biufc")  # bool, int, uint, float, complex: plain bytes, nothing else
_MAX_CACHED_DTYPES = 256


class CodecError(ValueError):
    """Base of the codec's errors."""


class EncodeError(CodecError):
    """An object that the codec cannot represent (object arrays, sets, custom classes...)."""


class DecodeError(CodecError):
    """Bytes that are not a well-formed document of this codec."""


# ---------------------------------------------------------------------------------------- encoding

_local = threading.local()
_ExtType = msgpack.ExtType
_new_tuple = tuple.__new__
_encode_dtypes: dict[np.dtype, str] = {}  # allowed dtype -> its ``.str``


def packer() -> msgpack.Packer:
    """This thread's reusable packer (``use_bin_type``, ``autoreset``): a Packer is not
    thread-safe, and building one per call costs more than the packing."""
    try:
        return _local.packer
    except AttributeError:
        _local.packer = msgpack.Packer(use_bin_type=True, autoreset=True)
        return _local.packer


def _dtype_str(dtype: np.dtype) -> str:
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None:
        raise EncodeError(
            f"cannot encode numpy array of dtype {dtype} (bool/int/float/complex only)"
        )
    if len(_encode_dtypes) < _MAX_CACHED_DTYPES:
        _encode_dtypes[dtype] = dtype.str
    return dtype.str


def array_ext(array: np.ndarray, pack: Any) -> msgpack.ExtType:
    """``array`` as ext type 1 ``[dtype.str, shape, C-order bytes]``, packed with ``pack``."""
    name = dtype_name(array.dtype)
    # A C-contiguous array is packed from its own memory (no intermediate bytes object).
    data = memoryview(array).cast("B") if array.flags.c_contiguous and array.size else array.tobytes()
    # tuple.__new__ skips ExtType.__new__'s Python-level argument checks: ours are known good.
    return _new_tuple(_ExtType, (EXT_NDARRAY, pack([name, list(array.shape), data])))


_PLAIN_TYPES = frozenset({str, bytes, int, float, bool, type(None)})


def plain(obj: Any, pack: Any) -> Any:
    """``obj`` with every numpy array replaced by its ext type and numpy scalars by Python
    numbers, ready for a Packer without ``default=``. Raises :class:`EncodeError` for what
    msgpack's own ``default`` path would have refused."""
    kind = type(obj)
    if kind in _PLAIN_TYPES:
        return obj
    if kind is np.ndarray:
        return array_ext(obj, pack)
    if kind is dict:
        return {plain(k, pack): plain(v, pack) for k, v in obj.items()}
    if kind is list or kind is tuple:
        return [plain(v, pack) for v in obj]
    return _plain_other(obj, pack)


def _plain_other(obj: Any, pack: Any) -> Any:
    # Subclasses, in msgpack's own order of checks (strict_types=False).
    if isinstance(obj, (bool, int, float, bytes, bytearray, memoryview, str)):
        return obj
    if isinstance(obj, dict):
        return {plain(k, pack): plain(v, pack) for k, v in obj.items()}
    if isinstance(obj, (_ExtType, msgpack.Timestamp)):
        return obj
    if isinstance(obj, (list, tuple)):
        return [plain(v, pack) for v in obj]
    if isinstance(obj, np.ndarray):
        return array_ext(obj, pack)
    if isinstance(obj, np.generic):
        if obj.dtype.kind not in _ALLOWED_KINDS:
            raise EncodeError(f"cannot encode numpy scalar of dtype {obj.dtype}")
        return obj.item()
    raise EncodeError(f"cannot encode object of type {type(obj).__name__}")


def dtype_name(dtype: np.dtype) -> str:
    """``dtype.str`` of an encodable dtype; :class:`EncodeError` for object or structured ones."""
    name = _encode_dtypes.get(dtype)
    return name if name is not None else _dtype_str(dtype)


def pack_plain(obj: Any) -> bytes:
    """Pack a document already made of msgpack types only (see :func:`plain`)."""
    try:
        return packer().pack(obj)
    except (TypeError, ValueError, OverflowError) as exc:
        _local.__dict__.pop("packer", None)  # a failed pack may leave the buffer half-written
        raise EncodeError(f"cannot encode object: {exc}") from exc


def packb(obj: Any) -> bytes:
    """Encode ``obj`` (dicts, lists, str, bytes, numbers, bools, None, numpy arrays) to bytes."""
    try:
        doc = plain(obj, packer().pack)
    except RecursionError as exc:
        raise EncodeError(f"cannot encode object: {exc}") from exc
    return pack_plain(doc)


# ---------------------------------------------------------------------------------------- decoding

_unpackb = msgpack.unpackb
_decode_dtypes: dict[str, np.dtype] = {}  # dtype string -> allowed dtype
_frombuffer = np.frombuffer
# msgpack decodes ext type -1 (timestamp) itself, never through ext_hook. Any encoding of it
# (fixext 1-16, ext 8/16/32) has a 0xff type byte right after one of these headers; only then is
# the document walked. The literal 0xff first lets the regex engine skip ahead quickly.
_MAYBE_TIMESTAMP = re.compile(
    rb"\xff(?:(?<=[\xd4-\xd8]\xff)|(?<=\xc7[\x00-\xff]\xff)|(?<=\xc8[\x00-\xff]{2}\xff)"
    rb"|(?<=\xc9[\x00-\xff]{4}\xff))"
)


def _decode_dtype(name: str) -> np.dtype:
    try:
        dtype = np.dtype(name)
    except Exception as exc:  # not only TypeError/ValueError: "<i02,f4" raises SyntaxError
        raise DecodeError(f"numpy array has an unknown dtype {name!r}") from exc
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None:
        raise DecodeError(f"numpy array dtype {name!r} is not allowed (object or structured)")
    if len(_decode_dtypes) < _MAX_CACHED_DTYPES:
        _decode_dtypes[name] = dtype
    return dtype


def dtype_from_name(name: Any) -> np.dtype:
    """The dtype a decoded ``name`` stands for; :class:`DecodeError` unless an allowed one."""
    if type(name) is not str:
        raise DecodeError(f"numpy dtype must be a str, got {type(name).__name__}")
    dtype = _decode_dtypes.get(name)
    return dtype if dtype is not None else _decode_dtype(name)


def _unpack_array(data: bytes) -> np.ndarray:
    try:
        parts = _unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise DecodeError(f"malformed numpy array header: {exc}") from exc
    if type(parts) is not list or len(parts) != 3:
        raise DecodeError("malformed numpy array: expected [dtype, shape, bytes]")
    name, shape, raw = parts
    if type(name) is not str or type(shape) is not list or type(raw) is not bytes:
        raise DecodeError("malformed numpy array: expected [str dtype, list shape, bytes data]")
    dtype = _decode_dtypes.get(name)
    if dtype is None:
        dtype = _decode_dtype(name)
    if len(shape) == 1:  # the common case, without the generic loop
        count = shape[0]
        if type(count) is not int or count < 0:
            raise DecodeError(f"numpy array has an invalid shape {shape!r}")
    else:
        if len(shape) > MAX_NDIM or not all(type(d) is int and d >= 0 for d in shape):
            raise DecodeError(f"numpy array has an invalid shape {shape!r}")
        count = math.prod(shape)
    if count * dtype.itemsize != len(raw):
        raise DecodeError(
            f"numpy array of shape {tuple(shape)} and dtype {dtype} needs "
            f"{count * dtype.itemsize} bytes, got {len(raw)}"
        )
    array = _frombuffer(bytearray(raw), dtype)  # writable, and owns its memory (one copy)
    return array if len(shape) == 1 else array.reshape(shape)


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_NDARRAY:
        return _unpack_array(data)
    raise DecodeError(f"unknown msgpack ext type {code}")


def reject_foreign(obj: Any) -> None:
    """Raise :class:`DecodeError` if ``obj`` holds a msgpack timestamp or a raw ext type."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, (msgpack.Timestamp, msgpack.ExtType)):
            raise DecodeError("unknown msgpack ext type -1 (timestamp)")


def unpack_unchecked(data: bytes | bytearray | memoryview, *, max_size: int) -> Any:
    """Like :func:`unpackb`, but the caller checks for msgpack timestamps (ext type -1) in the
    parts it does not type-check itself (see :func:`reject_foreign`)."""
    if len(data) > max_size:
        raise DecodeError(f"document of {len(data)} bytes exceeds the limit of {max_size} bytes")
    try:
        return _unpackb(data, raw=False, use_list=True, strict_map_key=True, ext_hook=_ext_hook)
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the document") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise DecodeError(f"malformed msgpack: {exc}") from exc


def may_hold_timestamp(data: bytes | bytearray | memoryview) -> bool:
    """False when ``data`` cannot hold a msgpack timestamp (a quick byte-pattern test)."""
    return _MAYBE_TIMESTAMP.search(data) is not None


def unpackb(data: bytes | bytearray | memoryview, *, max_size: int) -> Any:
    """Decode one document of at most ``max_size`` bytes; :class:`DecodeError` if malformed."""
    obj = unpack_unchecked(data, max_size=max_size)
    if may_hold_timestamp(data):
        reject_foreign(obj)
    return obj
