"""The record format inside a segment's LMDB environment, and the cache's format version.

Each segment is one LMDB environment; its main database holds the records:

* **key** (13 bytes): the record's offset (u64 big-endian), its kind (u8) and a CRC-32C (u32
  big-endian) over the payload followed by the offset and the kind (the key's first 9 bytes).
  The offset comes first, so LMDB's key order is offset order, every append lands on the right
  edge of the B-tree (``put(..., append=True)``), and a read finds a record with
  ``set_range(offset)``. The payload's CRC can be computed before the offset is known;
* **value**: the payload, unchanged: LMDB copies the caller's bytes once, nothing is concatenated;
  or, for an *external* record (kind flag ``EXTERNAL``, payloads of ``CacheConfig.external_bytes``
  or more), a 16-byte reference into the segment's blob file (``blobs.py``).

The offset is inside the checksum, so a payload can never be returned under another offset (a
damaged key, a stale page found by salvage). Offsets are record numbers, 0, 1, 2..., across
segments: a segment holds ``[base, end)``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from crc32c import crc32c

FORMAT_VERSION = 2
"""The cache's format (its ``CACHE`` file). Version 2: segments are LMDB environments. Version 1
was the hand-written segment log."""
SEGMENT_FORMAT_VERSION = 3
"""A segment's format (its ``SEGMENT`` marker). Version 3 segments may hold external records
(payloads in a blob file); version 2 ones hold every payload in LMDB. This rill reads both."""

KIND_BYTES = 0
"""An opaque payload, returned as ``bytes``."""
KIND_TRANSITION = 1
"""A msgpack-encoded :class:`learners.transition.Transition` (see ``records.py``)."""
KIND_BATCH = 2
"""Consecutive transitions of one actor, column by column (see ``batch.py``)."""
KNOWN_KINDS = (KIND_BYTES, KIND_TRANSITION, KIND_BATCH)
EXTERNAL = 0x80
"""Flag on a record's kind in its key: its payload is in the segment's blob file (``blobs.py``)
and LMDB holds a reference to it. The key's CRC covers the payload, the offset and the kind
*without* the flag, so the committer can move a record out of LMDB without checksumming it
again; a flipped flag is still caught (a payload read as a reference has the wrong length, a
reference checked as a payload fails the CRC)."""

OFFSET = struct.Struct(">Q")
TAIL = struct.Struct(">QB")  # offset, kind: what the checksum covers after the payload
KEY = struct.Struct(">QBI")  # offset, kind, crc32c
KEY_SIZE = KEY.size
RECORD_OVERHEAD = KEY_SIZE  # stored bytes besides the payload (before LMDB's own)

_pack_offset = OFFSET.pack
_pack_tail = TAIL.pack
_pack_key = KEY.pack
_unpack_key = KEY.unpack


def record_crc(offset: int, kind: int, payload_crc: int) -> int:
    """The record's checksum, from the CRC-32C of its payload (computed beforehand)."""
    return crc32c(_pack_tail(offset, kind), payload_crc)


def record_key(offset: int, kind: int, payload: bytes | memoryview) -> bytes:
    """The key under which ``payload`` is stored at ``offset``."""
    return _pack_key(offset, kind, crc32c(_pack_tail(offset, kind), crc32c(payload)))


def seek_key(offset: int) -> bytes:
    """The prefix that ``set_range`` positions on: the record at ``offset`` or the next one."""
    return _pack_offset(offset)


def offset_of(key: bytes | memoryview) -> int:
    return OFFSET.unpack_from(key)[0]


def record_problem(key: bytes | memoryview, value: bytes | memoryview,
                   blobs: Callable[[bytes | memoryview], bytes | str] | None = None) -> str | None:
    """What is wrong with a stored record (key and value), or None if its checksum holds.
    ``blobs`` reads an external record's payload from its reference (``blobs.read_blob``)."""
    checked = check_record(key, value, blobs)
    return checked if isinstance(checked, str) else None


def check_record(key: bytes | memoryview, value: bytes | memoryview,
                 blobs: Callable[[bytes | memoryview], bytes | str] | None = None,
                 ) -> tuple[int, int, bytes] | str:
    """``(offset, kind, payload)`` of a stored record whose checksum holds, or the problem. An
    external record's payload is read with ``blobs`` from the reference that ``value`` is; its
    kind is returned without the ``EXTERNAL`` flag."""
    if len(key) != KEY_SIZE:
        return f"key of {len(key)} bytes, not {KEY_SIZE}"
    offset, kind, crc = _unpack_key(key)
    if kind & EXTERNAL:
        if blobs is None:
            return "external record, and no blob file to read it from"
        value = blobs(value)
        if isinstance(value, str):
            return value
        kind &= ~EXTERNAL
    if crc32c(_pack_tail(offset, kind), crc32c(value)) != crc:
        return "checksum mismatch"
    if kind not in KNOWN_KINDS:
        return f"unknown record kind {kind}"
    return offset, kind, bytes(value)


def footprint(payload_bytes: int, page_size: int) -> int:
    """About how many bytes of the LMDB file a record of ``payload_bytes`` takes (for rolling
    segments before they fill): its share of a leaf page, or its overflow pages."""
    node = 8 + KEY_SIZE + payload_bytes  # node header, key, value
    usable = page_size - 16  # page header
    if node > usable // 2:  # LMDB moves values this large to overflow pages
        pages = (16 + payload_bytes + page_size - 1) // page_size
        return pages * page_size + 8 + KEY_SIZE + 8 + 2
    per_page = usable // (node + 2)  # + its 2-byte slot in the page's index
    return page_size // per_page


def external_key(key: bytes) -> bytes:
    """``key`` with the ``EXTERNAL`` flag set (its CRC is unchanged: it does not cover the flag)."""
    return key[:8] + bytes((key[8] | EXTERNAL,)) + key[9:]
