"""One segment file of the log, as the log keeps it in memory, and opening one from disk."""

from __future__ import annotations

import logging
import os
from array import array
from bisect import bisect_left
from dataclasses import dataclass, field
from pathlib import Path

from learners.cache.errors import CacheFormatError
from learners.cache.files import SegmentIndex, read_index, write_index
from learners.cache.format import (
    SEGMENT_HEADER_SIZE,
    Damage,
    NewerFormatError,
    SegmentHeaderError,
    count_torn_records,
    index_name,
    pack_segment_header,
    scan,
    segment_name,
    unpack_segment_header,
)

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Segment:
    """A segment: ``positions`` of its records and ``size``, the bytes it holds (or will hold,
    counting bytes accepted but not yet written, for the active segment)."""

    base: int
    path: Path
    positions: array = field(default_factory=lambda: array("I"))
    size: int = SEGMENT_HEADER_SIZE
    sealed: bool = False
    sealing: bool = False
    sealed_at: float = 0.0
    damage: dict[int, Damage] = field(default_factory=dict)
    fd: int | None = None  # write descriptor, active segment only
    written: int = 0  # bytes handed to the OS

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def end(self) -> int:
        """The global offset just past this segment."""
        return self.base + self.size

    def count_below(self, position: int) -> int:
        """How many records start before ``position``."""
        return bisect_left(self.positions, position)

    def index(self) -> SegmentIndex:
        damage = sorted(self.damage.values(), key=lambda d: d.position)
        return SegmentIndex(self.base, self.size, self.positions, damage, self.sealed_at)


def read_header(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(SEGMENT_HEADER_SIZE)


def check_header(path: Path, base: int) -> str | None:
    """None if the header of the segment at ``path`` is intact, else the problem.

    Raises :class:`CacheFormatError` for a segment of a newer format: that is not damage.
    """
    try:
        found = unpack_segment_header(read_header(path))
    except NewerFormatError as exc:
        raise CacheFormatError(f"segment {path.name}: {exc}") from exc
    except SegmentHeaderError as exc:
        return str(exc)
    if found != base:
        return f"header base offset {found} does not match the file name"
    return None


def open_sealed(path: Path, base: int, *, writable: bool) -> Segment:
    """A sealed segment from its persisted index, or by scanning it when the index is unusable."""
    size = path.stat().st_size
    index = read_index(path.with_name(index_name(base)), base, size)
    if index is not None:
        damage = {d.position: d for d in index.damage}
        return Segment(base, path, index.positions, size, True, False, index.sealed_at, damage)
    log.warning("segment %s: index missing or stale; rebuilding it by a full scan", path.name)
    data = path.read_bytes()
    result = scan(data)
    damage = {d.position: d for d in result.damage}
    if result.tail is not None:
        damage[result.tail.position] = result.tail
    for d in damage.values():
        log.warning(
            "segment %s: %s at offset %d (%d bytes unreadable, skipped)",
            path.name,
            d.problem,
            base + d.position,
            d.length,
        )
    segment = Segment(base, path, result.positions, size, True, False, path.stat().st_mtime, damage)
    if writable:
        try:
            write_index(path.with_name(index_name(base)), segment.index())
        except OSError as exc:
            log.warning("segment %s: could not write its index: %s", path.name, exc)
    return segment


def recover_active(path: Path, base: int, *, writable: bool) -> Segment:
    """Open the last segment: scan it, and (when writable) truncate a torn tail and repair its
    header so appends can continue. Damage followed by valid records is kept as damage: those
    later records were written after it and are intact."""
    data = path.read_bytes()
    problem = check_header(path, base)
    if problem is not None:
        log.warning(
            "segment %s: %s; %s",
            path.name,
            problem,
            "rewriting the header" if writable else "reading records after it",
        )
        if writable:
            _rewrite_header(path, base)
    result = scan(data, SEGMENT_HEADER_SIZE)
    size = max(result.valid_end, SEGMENT_HEADER_SIZE)
    for d in result.damage:
        log.warning(
            "segment %s: %s at offset %d (%d bytes unreadable, skipped)",
            path.name,
            d.problem,
            base + d.position,
            d.length,
        )
    if result.tail is not None:
        dropped = len(data) - result.valid_end
        records = count_torn_records(data, result.valid_end)
        if writable:
            _truncate(path, result.valid_end)
            log.warning(
                "segment %s: %s at offset %d; truncated %d bytes (%d torn record%s)",
                path.name,
                result.tail.problem,
                base + result.valid_end,
                dropped,
                records,
                "" if records == 1 else "s",
            )
        else:
            log.info(
                "segment %s: ignoring a torn tail of %d bytes at offset %d (read-only)",
                path.name,
                dropped,
                base + result.valid_end,
            )
    damage = {d.position: d for d in result.damage}
    segment = Segment(base, path, result.positions, size, damage=damage)
    segment.written = size
    return segment


def create_segment(path: Path, base: int) -> Segment:
    """Create an empty segment file holding only its header, durably."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, pack_segment_header(base))
        os.fsync(fd)
    finally:
        os.close(fd)
    segment = Segment(base, path)
    segment.written = SEGMENT_HEADER_SIZE
    return segment


def _rewrite_header(path: Path, base: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, pack_segment_header(base), 0)
        os.fsync(fd)
    finally:
        os.close(fd)


def _truncate(path: Path, size: int) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


__all__ = [
    "Segment",
    "check_header",
    "create_segment",
    "open_sealed",
    "recover_active",
    "segment_name",
]
