"""Weights in the safetensors format, written with one copy and read with none.

The bytes are a standard safetensors file (an 8-byte little-endian header length, a JSON header
naming each tensor's dtype, shape and data offsets, padded to 8 bytes, then the tensors' bytes),
so ``safetensors.torch.load`` reads what :func:`encode` writes and :func:`decode` reads what the
library writes (``tests/learners/link/test_tensors.py``). On a 10M-parameter network the library's
``save`` took 43-54 ms here and its ``load`` (of the bytes a frame must first be copied into)
27-48 ms, against about 21 ms for :func:`encode` (one copy) and nothing for :func:`decode` (views
of the received frame): ``python -m bench.link``, weights codec table.
Decoding trusts nothing: a header that is not one, an unknown dtype, offsets outside the data,
overlapping or leaving gaps raise :class:`TensorsFormatError` naming the problem.
"""

from __future__ import annotations

import json
import math
import struct
import warnings
from typing import Any

import torch

MAX_HEADER = 100 * 1024 * 1024  # the library's own limit
MAX_DIMS, MAX_DIM = 64, 2**48  # past these a "shape" cannot describe bytes anyone sent
_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
    "BOOL": torch.bool,
}
_NAMES = {v: k for k, v in _DTYPES.items()}


class TensorsFormatError(ValueError):
    """Bytes that are not a well-formed safetensors payload."""


def encode(state: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """``state`` as safetensors bytes; the tensors are copied once, into the result.

    Larger items first, then by name (the library's order), so every tensor starts aligned to its
    item size when the buffer is."""
    order = sorted(state, key=lambda k: (-state[k].element_size(), k))
    header: dict[str, Any] = {"__metadata__": dict(metadata)} if metadata else {}
    views, offset = [], 0
    for name in order:
        t = state[name].detach()
        if t.dtype not in _NAMES:
            raise TensorsFormatError(f"tensor {name!r}: dtype {t.dtype} has no safetensors name here")
        t = t.cpu().contiguous()
        size = t.numel() * t.element_size()
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + size]}
        if size:
            views.append(memoryview(t.reshape(-1).view(torch.uint8).numpy()))
        offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return b"".join([struct.pack("<Q", len(raw)), raw, *views])


def decode(buffer: Any) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """``(tensors, metadata)`` from safetensors bytes (any buffer: bytes, a ZeroMQ frame's memory).

    The tensors are read-only views of ``buffer`` (kept alive by them): copy before writing."""
    view = memoryview(buffer).cast("B")
    if len(view) < 8:
        raise TensorsFormatError(f"{len(view)} bytes: too short for a safetensors header")
    (n,) = struct.unpack_from("<Q", view, 0)
    if n > MAX_HEADER or 8 + n > len(view):
        raise TensorsFormatError(f"header length {n} does not fit the {len(view)} bytes received")
    try:
        header = json.loads(bytes(view[8 : 8 + n]))
    except (ValueError, RecursionError) as e:  # (bad UTF-8, bad JSON, a number past int's limit)
        raise TensorsFormatError(f"header is not JSON ({type(e).__name__}: {str(e)[:200]})") from e
    if not isinstance(header, dict):
        raise TensorsFormatError("header is not a JSON object")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise TensorsFormatError("__metadata__ must map strings to strings")
    data = view[8 + n :]
    spans, tensors = [], {}
    for name, info in header.items():
        try:
            name.encode("utf-8")
        except UnicodeEncodeError as e:
            raise TensorsFormatError(f"tensor name {name!r} is not valid UTF-8") from e
        dtype, shape, begin, end = _entry(name, info, len(data))
        spans.append((begin, end, name))
        if begin == end:
            try:
                tensors[name] = torch.empty(shape, dtype=dtype)
            except (RuntimeError, TypeError, ValueError) as e:  # e.g. strides past int64
                raise TensorsFormatError(f"tensor {name!r}: shape {str(shape)[:200]} ({e})") from e
            continue
        with warnings.catch_warnings():  # a read-only buffer: the views are documented read-only
            warnings.simplefilter("ignore", UserWarning)
            flat = torch.frombuffer(data, dtype=torch.uint8, count=end - begin, offset=begin)
        if flat.data_ptr() % flat.new_empty((), dtype=dtype).element_size():
            flat = flat.clone()  # not aligned for its dtype (a header not padded to 8): a copy is
        tensors[name] = flat.view(dtype).reshape(shape)
    position = 0
    for begin, end, name in sorted(spans):
        if begin != position:
            what = "overlaps the one before" if begin < position else f"leaves a gap at byte {position}"
            raise TensorsFormatError(f"tensor {name!r}: data {what}")
        position = end
    if position != len(data):
        raise TensorsFormatError(f"{len(data) - position} bytes after the last tensor's data")
    return tensors, metadata


def _entry(name: str, info: Any, data_len: int) -> tuple[torch.dtype, list[int], int, int]:
    if not isinstance(info, dict):
        raise TensorsFormatError(f"tensor {name!r}: entry is not an object")
    name_of_dtype = info.get("dtype")
    dtype = _DTYPES.get(name_of_dtype) if isinstance(name_of_dtype, str) else None
    if dtype is None:
        raise TensorsFormatError(f"tensor {name!r}: unknown dtype {str(name_of_dtype)[:50]!r}")
    shape, offsets = info.get("shape"), info.get("data_offsets")
    if (not isinstance(shape, list) or len(shape) > MAX_DIMS
            or not all(type(d) is int and 0 <= d <= MAX_DIM for d in shape)):
        raise TensorsFormatError(f"tensor {name!r}: shape {str(shape)[:200]} is not a list of sizes")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(type(o) is int for o in offsets)
            or not 0 <= offsets[0] <= offsets[1] <= data_len):
        raise TensorsFormatError(f"tensor {name!r}: data_offsets {offsets!r} outside the {data_len} "
                                 "data bytes")
    itemsize = torch.empty((), dtype=dtype).element_size()
    if offsets[1] - offsets[0] != math.prod(shape) * itemsize:
        raise TensorsFormatError(f"tensor {name!r}: {offsets[1] - offsets[0]} bytes for shape {shape} "
                                 f"of {info['dtype']}")
    return dtype, shape, offsets[0], offsets[1]


def all_finite(t: torch.Tensor) -> bool:
    """Whether every value of ``t`` is finite; a sum first (NaN and infinities survive it), the
    element-wise test only when the sum is not finite (it may overflow on finite values)."""
    if not (t.is_floating_point() or t.is_complex()) or t.numel() == 0:
        return True
    if bool(torch.isfinite(t.sum())):
        return True
    return bool(torch.isfinite(t).all())
