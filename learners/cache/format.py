"""The on-disk format: segment headers, record frames, and scanning a segment's bytes.

A segment file ``<base offset, 20 digits>.log`` starts with a 32-byte header (magic, format
version, base offset, header CRC) followed by records. Each record is a 12-byte frame header
(sync marker, kind, length, CRC-32C over the frame header and payload) and its payload. A record's
global offset is ``segment base + position in the file``, so offsets increase across segments and
"durable up to offset X" has one meaning for the whole log.
"""

from __future__ import annotations

import struct
from array import array
from dataclasses import dataclass, field

from crc32c import crc32c

FORMAT_VERSION = 1
SEGMENT_MAGIC = b"RILLLOG\x00"
SEGMENT_SUFFIX = ".log"
INDEX_SUFFIX = ".idx"

_SEGMENT_HEADER = struct.Struct("<8sHHIQI4x")  # magic, version, flags, header size, base, crc
SEGMENT_HEADER_SIZE = _SEGMENT_HEADER.size

FRAME = struct.Struct("<HBBII")  # sync, kind, reserved, payload length, crc32
FRAME_PREFIX = struct.Struct("<HBBI")
FRAME_SIZE = FRAME.size
SYNC = 0xCA52
SYNC_BYTES = struct.pack("<H", SYNC)

KIND_BYTES = 0
"""An opaque payload, returned as ``bytes``."""
KIND_TRANSITION = 1
"""A msgpack-encoded :class:`learners.transition.Transition` (see ``records.py``)."""
KNOWN_KINDS = (KIND_BYTES, KIND_TRANSITION)


class SegmentHeaderError(ValueError):
    """A segment header that is short, has the wrong magic, or fails its checksum."""


class NewerFormatError(ValueError):
    """A segment header written by a newer format version."""


def segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


def index_name(base: int) -> str:
    return f"{base:020d}{INDEX_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The base offset encoded in a segment file name, or None if it is not one."""
    stem = name[: -len(SEGMENT_SUFFIX)]
    if name.endswith(SEGMENT_SUFFIX) and len(stem) == 20 and stem.isdigit():
        return int(stem)
    return None


def pack_segment_header(base: int) -> bytes:
    head = _SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0, SEGMENT_HEADER_SIZE, base, 0)
    crc = crc32c(head[:24])
    return _SEGMENT_HEADER.pack(SEGMENT_MAGIC, FORMAT_VERSION, 0, SEGMENT_HEADER_SIZE, base, crc)


def unpack_segment_header(data: bytes) -> int:
    """Check a segment header; return its base offset."""
    if len(data) < SEGMENT_HEADER_SIZE:
        raise SegmentHeaderError(f"segment header is {len(data)} bytes, expected 32")
    magic, version, _flags, size, base, crc = _SEGMENT_HEADER.unpack_from(data)
    if magic != SEGMENT_MAGIC:
        raise SegmentHeaderError(f"bad segment magic {magic!r}")
    if crc32c(data[:24]) != crc:
        raise SegmentHeaderError("segment header checksum mismatch")
    if version > FORMAT_VERSION:
        raise NewerFormatError(
            f"segment format version {version} is newer than this rill supports ({FORMAT_VERSION})"
        )
    if size != SEGMENT_HEADER_SIZE:
        raise SegmentHeaderError(f"segment header size {size}, expected {SEGMENT_HEADER_SIZE}")
    return base


def frame(kind: int, payload: bytes) -> bytes:
    """The 12-byte frame header for ``payload``."""
    n = len(payload)
    crc = crc32c(payload, crc32c(FRAME_PREFIX.pack(SYNC, kind, 0, n)))
    return FRAME.pack(SYNC, kind, 0, n, crc)


def check_frame(data: bytes | memoryview, pos: int) -> tuple[int, int] | str:
    """``(kind, payload length)`` of a valid record at ``pos``, or a string naming the problem."""
    end = len(data)
    if end - pos < FRAME_SIZE:
        return f"truncated frame header ({end - pos} of {FRAME_SIZE} bytes)"
    sync, kind, reserved, length, crc = FRAME.unpack_from(data, pos)
    if sync != SYNC:
        return "bad sync marker"
    if kind not in KNOWN_KINDS or reserved != 0:
        return f"unknown record kind {kind}"
    if pos + FRAME_SIZE + length > end:
        return f"record of {length} bytes extends past the end of the segment"
    body = data[pos + FRAME_SIZE : pos + FRAME_SIZE + length]
    if crc32c(body, crc32c(data[pos : pos + 8])) != crc:
        return "checksum mismatch"
    return kind, length


@dataclass
class Damage:
    """A stretch of a segment that holds no valid record."""

    position: int
    length: int
    problem: str


@dataclass
class ScanResult:
    """What scanning a segment's bytes found.

    ``positions`` are the record start positions; ``damage`` the corrupt stretches between valid
    records (kept: records after them are intact); ``tail`` the damaged stretch at the end with no
    valid record after it (a torn write when it is the active segment), ``valid_end`` its start.
    """

    positions: array = field(default_factory=lambda: array("I"))
    damage: list[Damage] = field(default_factory=list)
    tail: Damage | None = None
    valid_end: int = 0


def scan(data: bytes | memoryview, start: int = SEGMENT_HEADER_SIZE) -> ScanResult:
    """Walk every record frame from ``start``, checking each checksum, resynchronizing on damage."""
    result = ScanResult()
    positions = result.positions
    end = len(data)
    unpack = FRAME.unpack_from
    crc32 = crc32c
    pos = start
    while pos < end:
        # Fast path inlined: this loop runs once per record when opening the active segment.
        if end - pos >= FRAME_SIZE:
            sync, kind, reserved, length, crc = unpack(data, pos)
            stop = pos + FRAME_SIZE + length
            if (
                sync == SYNC
                and stop <= end
                and reserved == 0
                and kind in KNOWN_KINDS
                and crc32(data[pos + FRAME_SIZE : stop], crc32(data[pos : pos + 8])) == crc
            ):
                positions.append(pos)
                pos = stop
                continue
        problem = check_frame(data, pos)
        assert isinstance(problem, str)
        resume = find_next_frame(data, pos + 1)
        if resume is None:
            result.tail = Damage(pos, end - pos, problem)
            result.valid_end = pos
            return result
        result.damage.append(Damage(pos, resume - pos, problem))
        pos = resume
    result.valid_end = pos
    return result


def find_next_frame(data: bytes | memoryview, pos: int) -> int | None:
    """The position of the next valid record frame at or after ``pos``, or None."""
    raw = data if isinstance(data, bytes) else bytes(data)
    while True:
        pos = raw.find(SYNC_BYTES, pos)
        if pos < 0:
            return None
        if not isinstance(check_frame(raw, pos), str):
            return pos
        pos += 1


def count_torn_records(data: bytes | memoryview, pos: int) -> int:
    """How many (partial) records a torn tail starting at ``pos`` held, following length fields."""
    count = 0
    end = len(data)
    while pos < end:
        count += 1
        if end - pos < FRAME_SIZE:
            break
        sync, _kind, _reserved, length, _crc = FRAME.unpack_from(data, pos)
        if sync != SYNC:
            break
        pos += FRAME_SIZE + length
    return count
