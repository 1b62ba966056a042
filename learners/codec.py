"""A strict, numpy-aware msgpack codec shared by the replay cache and the wire protocol.

numpy arrays travel as msgpack ext type 1 holding ``[dtype, shape, raw bytes]``; numpy scalars
become plain Python numbers. Decoding trusts nothing: a wrong size, an object or structured dtype,
a shape that does not match the bytes, an unknown ext type or a malformed document raises
:class:`DecodeError` with a message that names the problem. Never pickle.
"""

from __future__ import annotations

import math
from typing import Any

import msgpack
import numpy as np

EXT_NDARRAY = 1
"""msgpack ext type code of a numpy array."""

MAX_NDIM = 32
_ALLOWED_KINDS = frozenset("biufc")  # bool, int, uint, float, complex: plain bytes, nothing else


class CodecError(ValueError):
    """Base of the codec's errors."""


class EncodeError(CodecError):
    """An object that the codec cannot represent (object arrays, sets, custom classes...)."""


class DecodeError(CodecError):
    """Bytes that are not a well-formed document of this codec."""


def _encode_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return msgpack.ExtType(EXT_NDARRAY, _pack_array(obj))
    if isinstance(obj, np.generic):
        if obj.dtype.kind not in _ALLOWED_KINDS:
            raise EncodeError(f"cannot encode numpy scalar of dtype {obj.dtype}")
        return obj.item()
    raise EncodeError(f"cannot encode object of type {type(obj).__name__}")


def _pack_array(array: np.ndarray) -> bytes:
    dtype = array.dtype
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None:
        raise EncodeError(
            f"cannot encode numpy array of dtype {dtype} (bool/int/float/complex only)"
        )
    data = np.ascontiguousarray(array).tobytes()
    return msgpack.packb([dtype.str, list(array.shape), data], use_bin_type=True)


def packb(obj: Any) -> bytes:
    """Encode ``obj`` (dicts, lists, str, bytes, numbers, bools, None, numpy arrays) to bytes."""
    try:
        return msgpack.packb(obj, default=_encode_default, use_bin_type=True)
    except EncodeError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode object: {exc}") from exc


def _unpack_array(data: bytes) -> np.ndarray:
    try:
        parts = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
    except Exception as exc:
        raise DecodeError(f"malformed numpy array header: {exc}") from exc
    if not (isinstance(parts, list) and len(parts) == 3):
        raise DecodeError("malformed numpy array: expected [dtype, shape, bytes]")
    dtype_str, shape, raw = parts
    if not isinstance(dtype_str, str) or not isinstance(shape, list) or not isinstance(raw, bytes):
        raise DecodeError("malformed numpy array: expected [str dtype, list shape, bytes data]")
    try:
        dtype = np.dtype(dtype_str)
    except (TypeError, ValueError) as exc:
        raise DecodeError(f"numpy array has an unknown dtype {dtype_str!r}") from exc
    if dtype.kind not in _ALLOWED_KINDS or dtype.fields is not None:
        raise DecodeError(f"numpy array dtype {dtype_str!r} is not allowed (object or structured)")
    if len(shape) > MAX_NDIM or not all(type(d) is int and d >= 0 for d in shape):
        raise DecodeError(f"numpy array has an invalid shape {shape!r}")
    expected = math.prod(shape) * dtype.itemsize
    if expected != len(raw):
        raise DecodeError(
            f"numpy array of shape {tuple(shape)} and dtype {dtype} needs {expected} bytes, "
            f"got {len(raw)}"
        )
    return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


def _ext_hook(code: int, data: bytes) -> Any:
    if code == EXT_NDARRAY:
        return _unpack_array(data)
    raise DecodeError(f"unknown msgpack ext type {code}")


def _reject_foreign(obj: Any) -> None:
    # msgpack decodes its timestamp ext (-1) without calling ext_hook; we accept no such thing.
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, (msgpack.Timestamp, msgpack.ExtType)):
            raise DecodeError("unknown msgpack ext type -1 (timestamp)")


def unpackb(data: bytes | bytearray | memoryview, *, max_size: int) -> Any:
    """Decode one document of at most ``max_size`` bytes; :class:`DecodeError` if malformed."""
    if len(data) > max_size:
        raise DecodeError(f"document of {len(data)} bytes exceeds the limit of {max_size} bytes")
    try:
        obj = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True, ext_hook=_ext_hook
        )
    except DecodeError:
        raise
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the document") from exc
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as exc:
        raise DecodeError(f"malformed msgpack: {exc}") from exc
    _reject_foreign(obj)
    return obj
