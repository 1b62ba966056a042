"""The segmented, append-only log: recovery on open, group-committed appends, reads by offset.

Appends only copy the framed record into an in-memory buffer; a committer thread writes the
buffer and fdatasyncs it (one group commit), so a control loop never waits on the disk. A record
is *durable* once its group commit finished; ``wait_durable`` blocks until then.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path

from crc32c import crc32c

from learners.cache.commit import Chunk, GroupCommitter
from learners.cache.config import CacheConfig
from learners.cache.errors import (
    CacheClosedError,
    CacheCorruptError,
    CacheFormatError,
    CacheFullError,
    CacheLockedError,
    NoSuchRecordError,
    RecordTooLargeError,
)
from learners.cache.files import LOCK_NAME, check_meta, fsync_dir, write_meta
from learners.cache.format import (
    FRAME,
    FRAME_PREFIX,
    FRAME_SIZE,
    KIND_BYTES,
    SEGMENT_HEADER_SIZE,
    SYNC,
    index_name,
    parse_segment_name,
    segment_name,
)
from learners.cache.segment import (
    Segment,
    check_header,
    create_segment,
    open_sealed,
    recover_active,
)

log = logging.getLogger(__name__)

_yield_gil = time.sleep
_pack_frame = FRAME.pack
_pack_prefix = FRAME_PREFIX.pack
_prefix_crcs: dict[int, int] = {}  # CRC-32C of a frame's first 8 bytes, by (length, kind)


def _prefix_crc(kind: int, n: int) -> int:
    """The CRC-32C of a frame's sync/kind/length bytes: the seed of the record's checksum."""
    crc = crc32c(_pack_prefix(SYNC, kind, 0, n))
    if len(_prefix_crcs) >= 4096:  # records of many sizes: keep the memo small
        _prefix_crcs.clear()
    _prefix_crcs[n * 2 + kind] = crc
    return crc


class SegmentedLog(GroupCommitter):
    """The append-only log under a cache directory. Thread-safe; one writer process at a time."""

    def __init__(self, directory: str | os.PathLike[str], config: CacheConfig) -> None:
        self.directory = Path(directory)
        self.config = config
        self.writable = not config.read_only
        self._lock = threading.Lock()
        self._commit_cond = threading.Condition(self._lock)
        self._durable_cond = threading.Condition(self._lock)
        self._read_lock = threading.Lock()
        self._read_fds: dict[int, int] = {}
        self._segments: list[Segment] = []
        self._bases: list[int] = []
        self._lock_fd: int | None = None
        self._error: CacheFullError | None = None
        self._closed = False
        self._closing = False
        self._flush_requested = False
        self._pending = 0
        self._dir_sync_pending = False
        self._first_pending_at = 0.0
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._max_record = config.max_record_bytes
        self._segment_bytes = config.segment_bytes
        self._commit_bytes = config.commit_bytes
        self._fsync = config.durability == "fsync"
        self._durable_now = config.durability == "none"
        self._open()
        end = self._segments[-1].end if self._segments else 0
        self._durable_end = end
        self._visible_end = end
        self._unwritable = not self.writable
        self._committer: threading.Thread | None = None
        if self.writable:
            active = self._segments[-1]
            self._parts: list[bytes] = []
            self._chunks = [Chunk(active, self._parts)]
            self._committer = threading.Thread(
                target=self._run_committer,
                name=f"rill-cache-commit:{self.directory.name}",
                daemon=True,
            )
            self._committer.start()

    # ------------------------------------------------------------------ opening and recovery

    def _open(self) -> None:
        directory = self.directory
        if not directory.exists() or (directory.is_dir() and not any(directory.iterdir())):
            if not self.writable:
                raise CacheFormatError(f"{directory}: no replay cache here")
            directory.mkdir(parents=True, exist_ok=True)
            write_meta(directory)
        check_meta(directory)
        bases = sorted(
            b for b in (parse_segment_name(p.name) for p in directory.iterdir()) if b is not None
        )
        # Check every header before changing anything: a newer format must leave all untouched.
        problems = {b: check_header(directory / segment_name(b), b) for b in bases[:-1]}
        if bases:
            check_header(directory / segment_name(bases[-1]), bases[-1])
        if self.writable:
            self._take_lock()
        for base, problem in problems.items():
            if problem is not None:
                log.warning(
                    "segment %s: %s (its records are still read one by one)",
                    segment_name(base),
                    problem,
                )
        writable = self.writable
        for i, base in enumerate(bases):
            path = directory / segment_name(base)
            last = i == len(bases) - 1
            if not last or (directory / index_name(base)).exists():
                segment = open_sealed(path, base, writable=writable)
            else:
                segment = recover_active(path, base, writable=writable)
            if self._segments and segment.base < self._segments[-1].end:
                raise CacheCorruptError(
                    f"segment {segment.name} overlaps segment {self._segments[-1].name}"
                )
            self._append_segment(segment)
        if writable:
            if not self._segments or self._segments[-1].sealed:
                base = self._segments[-1].end if self._segments else 0
                self._append_segment(create_segment(directory / segment_name(base), base))
                fsync_dir(directory)
            active = self._segments[-1]
            active.fd = os.open(active.path, os.O_WRONLY)
            self._remove_orphan_indexes(bases)

    def _append_segment(self, segment: Segment) -> None:
        self._segments.append(segment)
        self._bases.append(segment.base)
        self._active = segment  # the last segment; appends go here

    def _remove_orphan_indexes(self, bases: list[int]) -> None:
        # An index whose segment is gone: retention was interrupted between the two unlinks.
        known = {index_name(b) for b in bases}
        for path in self.directory.glob("*.idx"):
            if path.name not in known:
                path.unlink()

    def _take_lock(self) -> None:
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise CacheLockedError(
                f"{self.directory}: open for writing by another process (pid {holder or '?'})"
            ) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    # ------------------------------------------------------------------ appending

    def append(self, payload: bytes | bytearray | memoryview, kind: int = KIND_BYTES) -> int:
        """Accept one record; return its offset. Never waits for the disk."""
        if type(payload) is not bytes:  # the committer writes it later: keep an immutable copy
            payload = bytes(payload)
        n = len(payload)
        if n > self._max_record:
            raise RecordTooLargeError(
                f"{self.directory}: record of {n} bytes exceeds max_record_bytes="
                f"{self._max_record}; nothing was written"
            )
        seed = _prefix_crcs.get(n * 2 + kind)
        if seed is None:
            seed = _prefix_crc(kind, n)
        head = _pack_frame(SYNC, kind, 0, n, crc32c(payload, seed))
        total = n + FRAME_SIZE
        with self._lock:
            if self._unwritable:
                self._raise_unwritable()
            segment = self._active
            pos = segment.size
            if pos + total > self._segment_bytes:
                segment = self._roll()
                pos = segment.size
            parts = self._parts
            parts.append(head)
            parts.append(payload)
            segment.positions.append(pos)
            segment.size = pos + total
            pending = self._pending
            self._pending = pending + total
            if pending == 0:
                self._first_pending_at = time.monotonic()
                self._commit_cond.notify()
                return segment.base + pos
            crossed = pending // self._commit_bytes != (pending + total) // self._commit_bytes
            if crossed:
                self._commit_cond.notify()
        if crossed:
            # Another group's worth is pending: let the committer have the GIL for a moment, or
            # a caller appending in a tight loop starves it for a whole switch interval (5 ms).
            _yield_gil(0)
        return segment.base + pos

    def append_many(self, payloads: list[bytes], kind: int = KIND_BYTES) -> list[int]:
        """Accept several records at once (one lock round trip); return their offsets.

        All-or-nothing for size: an over-limit record rejects the batch before anything is kept.
        """
        framed = []
        for payload in payloads:
            if type(payload) is not bytes:
                payload = bytes(payload)
            n = len(payload)
            if n > self._max_record:
                raise RecordTooLargeError(
                    f"{self.directory}: record of {n} bytes exceeds max_record_bytes="
                    f"{self._max_record}; nothing of this batch was written"
                )
            crc = crc32c(payload, _prefix_crc(kind, n))
            framed.append((_pack_frame(SYNC, kind, 0, n, crc), payload, n + FRAME_SIZE))
        offsets = []
        with self._lock:
            if self._unwritable:
                self._raise_unwritable()
            was_empty = self._pending == 0
            added = 0
            segment = self._active
            for head, payload, total in framed:
                pos = segment.size
                if pos + total > self._segment_bytes:
                    self._pending += added
                    added = 0
                    segment = self._roll()
                    pos = segment.size
                parts = self._parts
                parts.append(head)
                parts.append(payload)
                segment.positions.append(pos)
                segment.size = pos + total
                added += total
                offsets.append(segment.base + pos)
            self._pending += added
            if was_empty:
                self._first_pending_at = time.monotonic()
            crossed = self._pending >= self._commit_bytes
            if was_empty or crossed:
                self._commit_cond.notify()
        if crossed:
            _yield_gil(0)
        return offsets

    def _roll(self) -> Segment:
        """Start a new segment (lock held). The committer seals the old one after writing it."""
        old = self._segments[-1]
        old.sealing = True
        new = Segment(old.end, self.directory / segment_name(old.end))
        self._append_segment(new)
        self._parts = []  # the committer writes the header when it creates the file
        self._chunks.append(Chunk(new, self._parts))
        if self._pending == 0:
            self._first_pending_at = time.monotonic()
            self._commit_cond.notify()
        self._pending += SEGMENT_HEADER_SIZE
        return new

    def _raise_unwritable(self) -> None:
        if self._closed or self._closing:
            raise CacheClosedError(f"{self.directory}: the cache is closed")
        if not self.writable:
            raise CacheClosedError(f"{self.directory}: the cache is open read-only")
        assert self._error is not None
        raise CacheFullError(str(self._error), path=self._error.path, errno=self._error.errno)

    # ------------------------------------------------------------------ group commit

    def wait_durable(self, offset: int, timeout: float | None = None) -> bool:
        """True once the record at ``offset`` is durable; False if ``timeout`` passes first.

        Raises :class:`CacheFullError` while the OS refuses writes (the record is kept and
        retried; call again later).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._durable_now:
                return offset < self._active.end
            while self._durable_end <= offset:
                if self._error is not None:
                    raise CacheFullError(
                        str(self._error), path=self._error.path, errno=self._error.errno
                    )
                if self._closed:
                    return False
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._durable_cond.wait(remaining)
            return True

    def flush(self, timeout: float | None = None) -> bool:
        """Commit now what was appended so far, and wait until it is durable."""
        with self._lock:
            if not self.writable or self._closed:
                return True
            target = self._active.end
            self._flush_requested = True
            self._commit_cond.notify()
        return self.wait_durable(target - 1, timeout)

    @property
    def durable_offset(self) -> int:
        """Every record at an offset below this is durable."""
        if self._durable_now and self.writable:
            return self._active.end
        return self._durable_end

    @property
    def visible_offset(self) -> int:
        """Readers see the records below this offset (durable, and written to the OS)."""
        return self._visible_end

    def wait_for_record(self, offset: int, timeout: float | None) -> bool:
        """Wait until a record at or after ``offset`` is visible to readers (tailing)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._last_visible_record() < offset:
                remaining = None if deadline is None else deadline - time.monotonic()
                if self._closed or self._closing or (remaining is not None and remaining <= 0):
                    return False
                self._durable_cond.wait(remaining)
            return True

    def _last_visible_record(self) -> int:
        """The offset of the newest visible record, or -1 (lock held)."""
        visible = self._visible_end
        for segment in reversed(self._segments):
            count = segment.count_below(visible - segment.base)
            if count:
                return segment.base + segment.positions[count - 1]
        return -1

    # ------------------------------------------------------------------ reading

    def segments(self) -> list[Segment]:
        """A snapshot of the segment list, oldest first."""
        with self._lock:
            return list(self._segments)

    def segment_for(self, offset: int) -> Segment | None:
        with self._lock:
            i = bisect_right(self._bases, offset) - 1
            if i < 0:
                return None
            segment = self._segments[i]
            return segment if offset < segment.end else None

    def read(self, offset: int) -> tuple[int, bytes]:
        """``(kind, payload)`` of the record at ``offset``; checksum verified."""
        segment = self.segment_for(offset)
        if segment is None or offset >= self._visible_end:
            first = self._segments[0].base if self._segments else 0
            why = "removed by retention" if offset < first else "not (yet) a durable record"
            raise NoSuchRecordError(f"{self.directory}: no record at offset {offset} ({why})")
        pos = offset - segment.base
        positions = segment.positions
        i = segment.count_below(pos)
        if i == len(positions) or positions[i] != pos:
            if pos in segment.damage:
                d = segment.damage[pos]
                raise CacheCorruptError(f"segment {segment.name}: {d.problem} at offset {offset}")
            raise NoSuchRecordError(f"segment {segment.name}: no record starts at offset {offset}")
        stop = positions[i + 1] if i + 1 < len(positions) else segment.size
        data = self._pread(segment, stop - pos, pos)
        if len(data) < FRAME_SIZE:
            raise CacheCorruptError(f"segment {segment.name}: truncated record at offset {offset}")
        sync, kind, reserved, length, crc = FRAME.unpack_from(data)
        end = FRAME_SIZE + length
        if sync != SYNC or reserved != 0 or end > len(data):
            raise CacheCorruptError(
                f"segment {segment.name}: damaged frame header at offset {offset}"
            )
        payload = data[FRAME_SIZE:end]
        if crc32c(payload, crc32c(data[:8])) != crc:
            raise CacheCorruptError(f"segment {segment.name}: checksum mismatch at offset {offset}")
        return kind, payload

    def _pread(self, segment: Segment, size: int, pos: int) -> bytes:
        with self._read_lock:
            fd = self._read_fds.get(segment.base)
            if fd is None:
                try:
                    fd = os.open(segment.path, os.O_RDONLY)
                except FileNotFoundError as exc:
                    raise NoSuchRecordError(
                        f"segment {segment.name} was removed by retention"
                    ) from exc
                self._read_fds[segment.base] = fd
            return os.pread(fd, size, pos)

    def offsets(self, start: int = 0, stop: int | None = None) -> Iterator[int]:
        """Offsets of the visible records in ``[start, stop)``, in order."""
        for segment in self.segments():
            limit = min(self._visible_end if stop is None else stop, self._visible_end)
            if segment.end <= start:
                continue
            if segment.base >= limit:
                return
            positions = segment.positions
            base = segment.base
            i = segment.count_below(max(start - base, 0))
            end = segment.count_below(limit - base)
            for j in range(i, end):
                yield base + positions[j]

    # ------------------------------------------------------------------ retention and closing

    def delete_segment(self, segment: Segment) -> None:
        """Remove a sealed segment and its index (retention). Never the active one."""
        with self._lock:
            if not segment.sealed or segment is self._segments[-1]:
                raise ValueError(f"segment {segment.name} is not sealed")
            i = self._segments.index(segment)
            del self._segments[i]
            del self._bases[i]
        with self._read_lock:
            fd = self._read_fds.pop(segment.base, None)
            if fd is not None:
                os.close(fd)
        segment.path.unlink()
        segment.path.with_name(index_name(segment.base)).unlink(missing_ok=True)
        fsync_dir(self.directory)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Write and sync what is pending, stop the committer, release the directory."""
        with self._lock:
            if self._closed or self._closing:
                return
            self._closing = True
            self._unwritable = True
            self._commit_cond.notify()
        if self._committer is not None:
            self._committer.join()
        with self._lock:
            self._closed = True
            error = self._error
            self._durable_cond.notify_all()
        for segment in self._segments:
            if segment.fd is not None:
                os.close(segment.fd)
                segment.fd = None
        with self._read_lock:
            for fd in self._read_fds.values():
                os.close(fd)
            self._read_fds.clear()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        if error is not None:
            raise CacheFullError(
                f"{error}; records not yet durable at close were lost",
                path=error.path,
                errno=error.errno,
            )
