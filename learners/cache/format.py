"""The record format inside a segment's LMDB environment, and the cache's format version.

Each segment is one LMDB environment; its main database holds the records:

* **key**: the record's offset, 8 bytes big-endian, so that LMDB's key order is offset order and
  every append lands on the right edge of the B-tree (``put(..., append=True)``);
* **value**: a 5-byte head, the record kind (u8) and a CRC-32C (u32, little-endian) over the key,
  the kind and the payload; then the payload. The key is inside the checksum, so a value can never
  be returned under another offset (a damaged branch page, a stale page found by salvage).

Offsets are record numbers, 0, 1, 2..., across segments: a segment holds ``[base, end)``.
"""

from __future__ import annotations

import struct

from crc32c import crc32c

FORMAT_VERSION = 2
"""Version 2: segments are LMDB environments. Version 1 was the hand-written segment log."""

KIND_BYTES = 0
"""An opaque payload, returned as ``bytes``."""
KIND_TRANSITION = 1
"""A msgpack-encoded :class:`learners.transition.Transition` (see ``records.py``)."""
KNOWN_KINDS = (KIND_BYTES, KIND_TRANSITION)

KEY = struct.Struct(">Q")
HEAD = struct.Struct("<BI")  # kind, crc32c
HEAD_SIZE = HEAD.size
RECORD_OVERHEAD = KEY.size + HEAD_SIZE  # stored bytes besides the payload (before LMDB's own)

_pack_head = HEAD.pack
_unpack_head = HEAD.unpack_from


def record_key(offset: int) -> bytes:
    return KEY.pack(offset)


def frame(key: bytes, kind: int, payload: bytes) -> bytes:
    """The stored value of a record: head, then payload."""
    return _pack_head(kind, crc32c(payload, crc32c(key, kind))) + payload


def check_value(key: bytes, value: bytes | memoryview) -> tuple[int, bytes] | str:
    """``(kind, payload)`` of a stored value whose checksum holds, or a string naming the problem."""
    if len(value) < HEAD_SIZE:
        return f"record value of {len(value)} bytes is shorter than its head"
    kind, crc = _unpack_head(value)
    payload = value[HEAD_SIZE:]
    if crc32c(payload, crc32c(key, kind)) != crc:
        return "checksum mismatch"
    if kind not in KNOWN_KINDS:
        return f"unknown record kind {kind}"
    return kind, bytes(payload)


def footprint(payload_bytes: int, page_size: int) -> int:
    """About how many bytes of the LMDB file a record of ``payload_bytes`` takes (for rolling
    segments before they fill): its share of a leaf page, or its overflow pages."""
    node = 8 + KEY.size + HEAD_SIZE + payload_bytes  # node header, key, value
    usable = page_size - 16  # page header
    if node > usable // 2:  # LMDB moves values this large to overflow pages
        pages = (16 + HEAD_SIZE + payload_bytes + page_size - 1) // page_size
        return pages * page_size + 8 + KEY.size + 8 + 2
    per_page = usable // (node + 2)  # + its 2-byte slot in the page's index
    return page_size // per_page
