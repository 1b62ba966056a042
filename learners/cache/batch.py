"""Transition batches: consecutive transitions of one actor stored column by column, one record.

An actor streams thousands of transitions a second; encoding, checking and storing each as its
own msgpack document costs microseconds apiece on both ends of the link. A batch record holds a
run of one actor's transitions (``first_seq`` .. ``first_seq + count - 1``, no gaps) with every
field as a column, so the learner decodes a handful of numpy arrays per batch, checks them with
whole-array operations, and stores the batch unchanged as one cache record (kind ``KIND_BATCH``).

A record is a 4-byte little-endian length, a msgpack head of that length, then a data section:
the head is ``[BATCH_VERSION, actor_id, first_seq, count, columns]``; the scalar fields are typed
arrays of ``count`` rows inside the head (``reward``, ``behavior_logp``, ``timestamp`` float64;
``terminated``, ``truncated`` bool; ``policy_version``, ``episode``, ``step`` int64). Every other
field is a column in one of three forms, a one-key map:

* ``{"a": [dtype, row_shape, offset, nbytes]}``: the rows stacked, stored raw in the data
  section at ``offset`` (every row an array of the same dtype and shape). Encoding copies each
  row once, straight into the record; decoding makes a view, no copy, so an image batch costs
  what moving its bytes costs;
* ``{"z": [codec, dtype, row_shape, offset, nbytes, raw_nbytes]}``: the same stacked rows,
  compressed (``codec`` ``"zstd"``, one frame of ``nbytes`` holding ``raw_nbytes``): what an
  encoder asked to compress (``compress="zstd"``) does with a column of camera-frame-sized
  ``uint8`` rows when that saves at least a tenth. Decoding decompresses (bounded by
  ``raw_nbytes``, which must be what the rows need) into an array of its own. A batch holding
  one is version 2, so an older reader names the newer format instead of failing on the form;
* ``{"d": {key: column}}``: every row a dict with the same keys, one column per key;
* ``{"l": [row, ...]}``: anything else, one value per row (the per-record codec's rules).
The stacked sections exactly fill the data section.

Reading a row back gives exactly the values that went in (arrays as row views of the stacked
array, Python scalars as Python scalars). Decoding trusts nothing: a wrong count, a column of
the wrong length, an unknown form or field raises :class:`RecordDecodeError` naming the record.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import numpy as np

from learners.cache.codec import (
    MAX_NDIM,
    DecodeError,
    EncodeError,
    dtype_from_name,
    dtype_name,
    pack_plain,
    packer,
    plain,
    reject_foreign,
    unpack_unchecked,
)
from learners.cache.compression import COMPRESS, ROW_BYTES, compress_rows, decompress
from learners.cache.errors import RecordDecodeError, SchemaVersionError
from learners.transition import Transition

BATCH_VERSION = 2
"""The newest batch format this rill reads; it writes 1 unless a column is compressed (2)."""
MAX_BATCH_ROWS = 1024
"""The most transitions an actor puts in one batch; a learner accepts at least this many."""
SCALARS: dict[str, np.dtype] = {
    "reward": np.dtype(np.float64),
    "behavior_logp": np.dtype(np.float64),
    "timestamp": np.dtype(np.float64),
    "terminated": np.dtype(np.bool_),
    "truncated": np.dtype(np.bool_),
    "policy_version": np.dtype(np.int64),
    "episode": np.dtype(np.int64),
    "step": np.dtype(np.int64),
}
COLUMNS = ("obs", "action", "next_obs", "next_action", "extras")
_FIELDS = frozenset(SCALARS) | frozenset(COLUMNS)
_PY = {np.dtype(np.float64): float, np.dtype(np.bool_): bool, np.dtype(np.int64): int}


# ---------------------------------------------------------------------------------------- encoding

_PREFIX = struct.Struct("<I")  # the msgpack head's length


class _Data:
    """The data section being assembled: row buffers, in order, and their total size."""

    def __init__(self, compress: str | None = None) -> None:
        self.parts: list[Any] = []
        self.size = 0
        self.compress = compress
        self.compressed = False  # whether a column went in compressed (the batch is then version 2)

    def add(self, rows: list[np.ndarray]) -> dict[str, list[Any]]:
        first = rows[0]
        name = dtype_name(first.dtype)
        offset = self.size
        if self.compress and first.dtype == np.uint8 and first.nbytes >= ROW_BYTES:
            packed = compress_rows(rows)
            if packed is not None:  # (noise-like frames are stored as they are)
                self.parts.append(packed)
                self.size += len(packed)
                self.compressed = True
                return {"z": [self.compress, name, list(first.shape), offset, len(packed),
                              first.nbytes * len(rows)]}
        if first.nbytes < 4096:  # small rows: one C-level join beats a buffer per row
            # (``concatenate`` along the first axis lays the rows out exactly as ``np.stack``
            # would, at a third of its cost: no per-row view is made in Python.)
            self.parts.append(memoryview(np.concatenate(rows) if first.ndim else np.stack(rows)).cast("B"))
        else:  # large rows (images): each copied once, straight into the record
            for row in rows:
                self.parts.append(memoryview(row).cast("B") if row.flags.c_contiguous else row.tobytes())
        self.size += first.nbytes * len(rows)
        return {"a": [name, list(first.shape), offset, first.nbytes * len(rows)]}


def _column(values: list[Any], pack: Any, data: _Data) -> dict[str, Any]:
    """The most compact exact form of one field's values (see the module docstring)."""
    first = values[0]
    if type(first) is np.ndarray and first.ndim and first.size:  # (a 0-d row would come back a scalar)
        dtype, shape = first.dtype, first.shape
        if all(type(v) is np.ndarray and v.dtype == dtype and v.shape == shape for v in values):
            return data.add(values)
    elif type(first) is dict and first:
        keys = first.keys()
        if all(type(v) is dict and v.keys() == keys for v in values) and all(type(k) is str for k in keys):
            return {"d": {k: _column([v[k] for v in values], pack, data) for k in keys}}
    return {"l": [plain(v, pack) for v in values]}


def encode_batch(transitions: Sequence[Transition], compress: str | None = None) -> bytes:
    """One batch record of ``transitions``: one actor's, with consecutive ``seq``; ``compress``
    (one of ``COMPRESS``) compresses the columns of camera-frame-sized ``uint8`` rows.

    Raises ``ValueError`` for an empty or non-consecutive run or an unknown codec, ``EncodeError``
    for values msgpack cannot hold.
    """
    if not transitions:
        raise ValueError("a transition batch needs at least one transition")
    if compress is not None and compress not in COMPRESS:
        raise ValueError(f"a transition batch compresses with one of {COMPRESS} or None, not {compress!r}")
    head = transitions[0]
    actor_id, first_seq = head.actor_id, int(head.seq)
    if not isinstance(actor_id, str):
        raise EncodeError(f"Transition.actor_id must be a str, got {type(actor_id).__name__}")
    for i, t in enumerate(transitions):
        if t.actor_id != actor_id or t.seq != first_seq + i:
            raise ValueError(f"a batch holds one actor's consecutive transitions: {actor_id}/{first_seq}+{i} "
                             f"is followed by {t.actor_id}/{t.seq}")
    pack = packer().pack
    data = _Data(compress)
    try:
        columns: dict[str, Any] = {}
        for name, dtype in SCALARS.items():
            columns[name] = plain(np.array([getattr(t, name) for t in transitions], dtype=dtype), pack)
        for name in COLUMNS:
            columns[name] = _column([getattr(t, name) for t in transitions], pack, data)
        doc = [2 if data.compressed else 1, actor_id, first_seq, len(transitions), columns]
    except (RecursionError, TypeError, ValueError, OverflowError) as exc:
        raise EncodeError(f"cannot encode transition batch {actor_id}/{first_seq}: {exc}") from exc
    head_bytes = pack_plain(doc)
    return b"".join([_PREFIX.pack(len(head_bytes)), head_bytes, *data.parts])


# ---------------------------------------------------------------------------------------- decoding

@dataclass
class TransitionBatch:
    """A decoded batch record: ``count`` transitions of ``actor_id`` from ``first_seq`` on."""

    actor_id: str
    first_seq: int
    count: int
    columns: dict[str, Any]  # scalar fields: arrays; others: {"a"|"d"|"l": ...} as stored

    @property
    def last_seq(self) -> int:
        return self.first_seq + self.count - 1

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[Transition]:
        c = self.columns
        rows = {name: _rows(c[name]) for name in COLUMNS}
        scalars = {name: c[name].tolist() for name in SCALARS}
        obs, action, next_obs, next_action, extras = (rows[n] for n in COLUMNS)
        reward, logp, stamp = scalars["reward"], scalars["behavior_logp"], scalars["timestamp"]
        term, trunc, version = scalars["terminated"], scalars["truncated"], scalars["policy_version"]
        episode, step = scalars["episode"], scalars["step"]
        actor_id, first = self.actor_id, self.first_seq
        for i in range(self.count):
            yield Transition(obs(i), action(i), reward[i], next_obs(i), term[i], trunc[i], actor_id,
                             first + i, episode[i], step[i], version[i], logp[i], next_action(i), stamp[i],
                             extras(i))

    def transition(self, i: int) -> Transition:
        """The ``i``-th transition (0-based)."""
        if not 0 <= i < self.count:
            raise IndexError(f"batch {self.actor_id}/{self.first_seq} has {self.count} transitions, "
                             f"not {i + 1}")
        c = self.columns
        values = {name: _rows(c[name])(i) for name in COLUMNS}
        values.update({name: _PY[SCALARS[name]](c[name][i]) for name in SCALARS})
        return Transition(actor_id=self.actor_id, seq=self.first_seq + i, **values)

    def nbytes(self) -> int:
        """Rough memory held by the decoded batch (for bounded decode caches)."""
        return 256 + sum(_column_nbytes(self.columns[n]) for n in (*SCALARS, *COLUMNS))


def _column_nbytes(column: Any) -> int:
    if isinstance(column, np.ndarray):
        return column.nbytes
    form, value = next(iter(column.items()))
    if form == "a":
        return value.nbytes
    if form == "d":
        return sum(_column_nbytes(c) for c in value.values())
    return 64 * len(value)


def _rows(column: dict[str, Any]):
    """A function of the row index that returns that row's value of ``column``."""
    form, value = next(iter(column.items()))
    if form == "a" or form == "l":
        return value.__getitem__
    getters = {k: _rows(c) for k, c in value.items()}
    return lambda i: {k: get(i) for k, get in getters.items()}


def _row_layout(name: Any, shape: Any, where: str) -> np.dtype:
    """The dtype a stacked column names, once it and its row shape are known to be valid."""
    try:
        dtype = dtype_from_name(name)
    except DecodeError as exc:
        raise RecordDecodeError(f"{where}: {exc}") from exc
    if type(shape) is not list or len(shape) > MAX_NDIM or not all(type(d) is int and d > 0 for d in shape):
        raise RecordDecodeError(f"{where}: invalid row shape {shape!r}")
    return dtype


class _Sections:
    """The data section of a record being decoded: hands out stacked columns as array views."""

    def __init__(self, buffer: Any, start: int, max_size: int) -> None:
        self.buffer, self.start, self.max_size = buffer, start, max_size
        self.decompressed = 0  # bytes the compressed columns decoded so far hold
        self.size = len(buffer) - start
        self.used = 0

    def array(self, spec: Any, count: int, where: str) -> np.ndarray:
        if type(spec) is not list or len(spec) != 4:
            raise RecordDecodeError(f"{where}: stacked column must be [dtype, row shape, offset, nbytes]")
        name, shape, offset, nbytes = spec
        dtype = _row_layout(name, shape, where)
        if type(offset) is not int or type(nbytes) is not int or offset < 0 or offset + nbytes > self.size:
            raise RecordDecodeError(f"{where}: section {offset!r}+{nbytes!r} lies outside the "
                                    f"{self.size}-byte data section")
        items = count * math.prod(shape)
        if items * dtype.itemsize != nbytes:
            raise RecordDecodeError(f"{where}: {count} rows of {dtype}{shape} need {items * dtype.itemsize} "
                                    f"bytes, the section has {nbytes}")
        self.used += nbytes
        array = np.frombuffer(self.buffer, dtype, items, self.start + offset)
        return array.reshape((count, *shape))

    def compressed(self, spec: Any, count: int, where: str, writable: bool) -> np.ndarray:
        """A ``"z"`` column's rows, decompressed into an array of their own."""
        if type(spec) is not list or len(spec) != 6:
            raise RecordDecodeError(f"{where}: compressed column must be [codec, dtype, row shape, offset, "
                                    "nbytes, raw nbytes]")
        codec, name, shape, offset, nbytes, raw = spec
        if type(nbytes) is not int or nbytes < 1:
            raise RecordDecodeError(f"{where}: invalid compressed size {nbytes!r}")
        packed = self.array(["uint8", [nbytes], offset, nbytes], 1, where)[0]  # (checks the section)
        dtype = _row_layout(name, shape, where)
        items = count * math.prod(shape)
        if type(raw) is not int or items * dtype.itemsize != raw:
            raise RecordDecodeError(f"{where}: {count} rows of {dtype}{shape} need {items * dtype.itemsize} "
                                    f"bytes, the compressed section says it holds {raw!r}")
        # What the whole batch would be uncompressed is bounded as a record is, before any of it
        # is decompressed: a few hundred bytes of zeros may say they are gigabytes.
        self.decompressed += raw
        if self.decompressed > self.max_size:
            raise RecordDecodeError(f"{where}: the compressed columns would decode to {self.decompressed} "
                                    f"bytes or more, over the limit of {self.max_size} bytes")
        out = decompress(codec, packed, raw, where)
        array = np.frombuffer(bytearray(out) if writable else out, dtype, items)
        return array.reshape((count, *shape))


def _load_column(column: Any, count: int, where: str, data: _Sections, writable: bool,
                 depth: int = 0) -> None:
    """Check ``column``'s form and length; stacked columns become arrays (in place: a compressed
    one becomes an ``"a"`` column of its rows)."""
    if type(column) is not dict or len(column) != 1:
        raise RecordDecodeError(f"{where}: a column must be a one-key map ('a', 'z', 'd' or 'l')")
    form, value = next(iter(column.items()))
    if form == "a":
        column["a"] = data.array(value, count, where)
    elif form == "z":
        column["a"] = data.compressed(value, count, where, writable)
        del column["z"]
    elif form == "l":
        if type(value) is not list or len(value) != count:
            raise RecordDecodeError(f"{where}: list column must hold {count} values")
    elif form == "d":
        if type(value) is not dict or not value or depth > 8:
            raise RecordDecodeError(f"{where}: dict column must map keys to columns")
        for key, sub in value.items():
            if type(key) is not str:
                raise RecordDecodeError(f"{where}: dict column keys must be str, got {key!r}")
            _load_column(sub, count, f"{where}[{key!r}]", data, writable, depth + 1)
    else:
        raise RecordDecodeError(f"{where}: unknown column form {form!r}")


def _split(payload: Any, where: str) -> int:
    """Where the msgpack head ends (and the data section starts) in ``payload``."""
    if len(payload) < _PREFIX.size:
        raise RecordDecodeError(f"{where}: {len(payload)} bytes is too short for a transition batch")
    end = _PREFIX.size + _PREFIX.unpack_from(payload)[0]
    if end > len(payload):
        raise RecordDecodeError(f"{where}: head of {end - _PREFIX.size} bytes runs past the "
                                f"{len(payload)}-byte record")
    return end


def batch_span(payload: bytes, where: str = "batch") -> tuple[str, int, int]:
    """``(actor_id, first_seq, last_seq)`` of a batch record, decoding only its head."""
    end = _split(payload, where)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=end)
    unpacker.feed(memoryview(payload)[_PREFIX.size:end])
    try:
        if unpacker.read_array_header() != 5:
            raise RecordDecodeError(f"{where}: not a transition batch (expected 5 items)")
        _check_version(unpacker.unpack(), where)
        actor_id, first_seq, count = unpacker.unpack(), unpacker.unpack(), unpacker.unpack()
    except RecordDecodeError:
        raise
    except Exception as exc:
        raise RecordDecodeError(f"{where}: malformed batch head ({exc})") from exc
    _check_head(actor_id, first_seq, count, where)
    return actor_id, first_seq, first_seq + count - 1


def _check_version(version: Any, where: str) -> None:
    if type(version) is not int or version < 1:
        raise RecordDecodeError(f"{where}: invalid batch version {version!r}")
    if version > BATCH_VERSION:
        raise SchemaVersionError(f"{where}: transition batch version {version} is newer than this rill "
                                 f"supports ({BATCH_VERSION}); upgrade rill to read it")


def _check_head(actor_id: Any, first_seq: Any, count: Any, where: str) -> None:
    if type(actor_id) is not str:
        raise RecordDecodeError(f"{where}: actor_id must be a str, got {type(actor_id).__name__}")
    if type(first_seq) is not int or first_seq < 0:
        raise RecordDecodeError(f"{where}: first_seq must be a non-negative int, got {first_seq!r}")
    if type(count) is not int or count < 1:
        raise RecordDecodeError(f"{where}: count must be a positive int, got {count!r}")


def decode_batch(payload: bytes | memoryview, *, max_size: int, where: str = "batch",
                 writable: bool = True) -> TransitionBatch:
    """The :class:`TransitionBatch` in ``payload``; :class:`RecordDecodeError` if malformed.
    Stacked columns are views of one writable copy of ``payload``, or, with ``writable=False``
    (for checking a batch), views of ``payload`` itself (read-only when it is). Compressed
    columns are arrays of their own, read-only with ``writable=False``; all of them together may
    hold at most ``max_size`` bytes."""
    if len(payload) > max_size:
        raise RecordDecodeError(f"{where}: batch of {len(payload)} bytes exceeds the limit of "
                                f"{max_size} bytes")
    end = _split(payload, where)
    try:
        doc = unpack_unchecked(memoryview(payload)[_PREFIX.size:end], max_size=max_size)
        # A batch is a few large arrays and some small lists: walking the document is cheaper
        # than scanning the (image-sized) bytes for a timestamp's byte pattern.
        reject_foreign(doc)
    except DecodeError as exc:
        raise RecordDecodeError(f"{where}: {exc}") from exc
    if type(doc) is not list or len(doc) != 5:
        raise RecordDecodeError(f"{where}: not a transition batch (expected a 5-item array)")
    version, actor_id, first_seq, count, columns = doc
    _check_version(version, where)
    _check_head(actor_id, first_seq, count, where)
    where = f"{where} ({actor_id}/{first_seq}..{first_seq + count - 1})"
    if type(columns) is not dict or columns.keys() != _FIELDS:
        keys = set(columns) if isinstance(columns, dict) else set()
        raise RecordDecodeError(f"{where}: unexpected columns {sorted(keys - _FIELDS, key=repr)} / "
                                f"missing columns {sorted(_FIELDS - keys)}")
    for name, dtype in SCALARS.items():
        value = columns[name]
        if type(value) is not np.ndarray or value.dtype != dtype or value.shape != (count,):
            raise RecordDecodeError(f"{where}: {name} must be {dtype}[{count}]")
    data = _Sections(bytearray(payload) if writable else payload, end, max_size)
    for name in COLUMNS:
        _load_column(columns[name], count, f"{where}: {name}", data, writable)
    if data.used != data.size:
        raise RecordDecodeError(f"{where}: the stacked columns cover {data.used} of the data section's "
                                f"{data.size} bytes")
    return TransitionBatch(actor_id, first_seq, count, columns)


__all__ = ["BATCH_VERSION", "COMPRESS", "MAX_BATCH_ROWS", "TransitionBatch", "batch_span", "decode_batch",
           "encode_batch"]
