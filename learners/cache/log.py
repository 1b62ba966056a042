"""The segmented, append-only log: recovery on open, group-committed appends, reads by offset.

Appends only copy the framed record into an in-memory buffer; a committer thread writes the
buffer and fdatasyncs it (one group commit), so a control loop never waits on the disk. A record
is *durable* once its group commit finished; ``wait_durable`` blocks until then.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import threading
import time
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from itertools import accumulate
from pathlib import Path

from crc32c import crc32c

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
from learners.cache.files import LOCK_NAME, check_meta, fsync_dir, write_index, write_meta
from learners.cache.format import (
    FRAME,
    FRAME_PREFIX,
    FRAME_SIZE,
    KIND_BYTES,
    SEGMENT_HEADER_SIZE,
    SYNC,
    index_name,
    pack_segment_header,
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

_MAX_RETRY_S = 1.0
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


_IOV_MAX = 1024  # buffers per pwritev call (Linux IOV_MAX)


class _Chunk:
    """Buffers accepted for one segment, not yet handed to the OS, in order.

    Appends add a frame header and the caller's payload object (never copied here); the
    committer hands them to the kernel with ``pwritev``.
    """

    __slots__ = ("finished", "next_part", "parts", "rest", "rest_end", "segment")

    def __init__(self, segment: Segment, parts: list[bytes]) -> None:
        self.segment = segment
        self.parts = parts  # frame header, payload, frame header, payload...
        self.next_part = 0  # parts before this one are written
        self.rest: bytes | None = None  # the unwritten end of a short write
        self.rest_end = 0  # the part index after the slice that ``rest`` belongs to
        self.finished = False

    def unwritten(self) -> int:
        return sum(map(len, self.parts[self.next_part :]))


class SegmentedLog:
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
            self._chunks = [_Chunk(active, self._parts)]
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
        self._chunks.append(_Chunk(new, self._parts))
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

    def _run_committer(self) -> None:
        interval = self.config.commit_interval_ms / 1000.0
        while True:
            with self._lock:
                while True:
                    if self._pending == 0 and not self._flush_requested and self._error is None:
                        if self._closing:
                            return
                        self._commit_cond.wait()
                        continue
                    now = time.monotonic()
                    if self._error is not None and not self._closing and now < self._retry_at:
                        self._commit_cond.wait(self._retry_at - now)
                        continue
                    due = self._first_pending_at + interval
                    if (
                        self._pending >= self._commit_bytes
                        or now >= due
                        or self._closing
                        or self._flush_requested
                        or self._error is not None
                    ):
                        break
                    self._commit_cond.wait(due - now)
                chunks = self._chunks
                self._parts = []
                self._chunks = [_Chunk(self._active, self._parts)]
                target = self._active.end
                self._pending = 0
                self._flush_requested = False
                closing = self._closing
            try:
                self._write_chunks(chunks)
            except OSError as exc:
                if self._on_write_error(chunks, exc) and closing:
                    return
                continue
            with self._lock:
                self._visible_end = target
                self._durable_end = target
                if self._error is not None:
                    log.warning("%s: writes succeed again; %s", self.directory, "error cleared")
                self._error = None
                self._retry_delay = 0.0
                self._unwritable = self._closed or self._closing
                self._durable_cond.notify_all()

    def _write_chunks(self, chunks: list[_Chunk]) -> None:
        """Write the chunks in order, syncing (and publishing as durable) about every
        ``commit_bytes``: one huge write and sync is slower than a steady series of them."""
        last = len(chunks) - 1
        for i, chunk in enumerate(chunks):
            if chunk.finished:
                continue
            segment = chunk.segment
            if segment.fd is None:
                segment.fd = os.open(segment.path, os.O_WRONLY | os.O_CREAT, 0o644)
                self._dir_sync_pending = True
            if segment.written < SEGMENT_HEADER_SIZE:  # a new segment starts with its header
                header = pack_segment_header(segment.base)[segment.written :]
                segment.written += os.pwrite(segment.fd, header, segment.written)
                if segment.written < SEGMENT_HEADER_SIZE:
                    raise OSError(errno.EIO, "short write of a segment header", str(segment.path))
            parts = chunk.parts
            unsynced = 0
            while chunk.next_part < len(parts):
                unsynced += self._write_slice(chunk)
                if unsynced >= self._commit_bytes and chunk.next_part < len(parts):
                    self._publish(segment)  # more to come: make this much durable now
                    unsynced = 0
            if segment.sealing and i < last and chunks[i + 1].segment is not segment:
                self._seal(segment)
            chunk.finished = True
        active = chunks[-1].segment
        if self._fsync:
            os.fdatasync(active.fd)
        if self._dir_sync_pending:  # a new segment's name must be durable before its records
            fsync_dir(self.directory)
            self._dir_sync_pending = False

    def _write_slice(self, chunk: _Chunk) -> int:
        """Write the next run of whole records of ``chunk`` (one ``pwritev``), finishing a short
        write, so that it ends on a record boundary. Returns the bytes written."""
        segment = chunk.segment
        parts = chunk.parts
        first = chunk.next_part
        before = segment.written
        if chunk.rest is None:
            # Whole records (an even count of parts) adding up to about commit_bytes.
            ends = list(accumulate(map(len, parts[first : first + _IOV_MAX])))
            count = min(bisect_left(ends, self._commit_bytes) + 1, len(ends))
            count += count & 1
            batch = parts[first : first + count]
            size = ends[count - 1]
            n = os.pwritev(segment.fd, batch, segment.written)
            segment.written += n
            chunk.rest_end = first + count
            if n < size:
                chunk.rest = b"".join(batch)[n:]
        while chunk.rest:
            n = os.pwrite(segment.fd, chunk.rest, segment.written)
            if n == 0:
                raise OSError(errno.EIO, "write made no progress", str(segment.path))
            segment.written += n
            chunk.rest = chunk.rest[n:]
        chunk.rest = None
        chunk.next_part = chunk.rest_end
        return segment.written - before

    def _publish(self, segment: Segment) -> None:
        """Sync what is written of ``segment`` (at a record boundary) and mark it durable."""
        if self._fsync:
            os.fdatasync(segment.fd)
        if self._dir_sync_pending:
            fsync_dir(self.directory)
            self._dir_sync_pending = False
        end = segment.base + segment.written
        with self._lock:
            if end > self._durable_end:
                self._durable_end = end
                self._visible_end = end
                self._durable_cond.notify_all()

    def _seal(self, segment: Segment) -> None:
        if self._fsync:
            os.fdatasync(segment.fd)
        os.close(segment.fd)
        segment.fd = None
        segment.sealed_at = time.time()
        segment.sealed = True
        try:
            write_index(self.directory / index_name(segment.base), segment.index())
        except OSError as exc:  # the index only speeds up opening; a scan rebuilds it
            log.warning("segment %s: could not write its index: %s", segment.name, exc)

    def _on_write_error(self, chunks: list[_Chunk], exc: OSError) -> bool:
        """Keep the unwritten bytes for a retry, refuse new appends until one succeeds."""
        remaining = [c for c in chunks if not c.finished]
        path = remaining[0].segment.path if remaining else self.directory
        reason = {
            errno.ENOSPC: "disk full",
            errno.EFBIG: "file size limit reached",
            errno.EDQUOT: "disk quota exceeded",
        }.get(exc.errno, exc.strerror or str(exc))
        message = (
            f"{path}: write failed ({reason}, errno {exc.errno}); durable records are "
            "intact, pending records are kept and retried, new appends are refused"
        )
        with self._lock:
            first = self._error is None
            self._error = CacheFullError(message, path=str(path), errno=exc.errno)
            self._unwritable = True
            self._chunks = remaining + self._chunks
            self._pending += sum(c.unwritten() for c in remaining)
            self._retry_delay = min(max(self._retry_delay * 2, 0.01), _MAX_RETRY_S)
            self._retry_at = time.monotonic() + self._retry_delay
            self._durable_cond.notify_all()
            gave_up = self._closing
        if first or gave_up:
            log.error("%s%s", message, "; giving up at close" if gave_up else "")
        return gave_up

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
