"""Group commit: the thread that writes queued records and syncs them, and its error handling.

Mixed into :class:`learners.cache.log.SegmentedLog`, whose lock, queues and segments it uses.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from bisect import bisect_left
from itertools import accumulate
from pathlib import Path

from learners.cache.config import CacheConfig
from learners.cache.errors import CacheFullError
from learners.cache.files import fsync_dir, write_index
from learners.cache.format import SEGMENT_HEADER_SIZE, index_name, pack_segment_header
from learners.cache.segment import Segment

log = logging.getLogger(__name__)

_MAX_RETRY_S = 1.0

_IOV_MAX = 1024  # buffers per pwritev call (Linux IOV_MAX)


class Chunk:
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


class GroupCommitter:
    """The committer thread's side of the log (see ``SegmentedLog``)."""

    directory: Path
    config: CacheConfig
    _lock: threading.Lock
    _commit_cond: threading.Condition
    _durable_cond: threading.Condition
    _chunks: list[Chunk]
    _parts: list[bytes]
    _active: Segment
    _error: CacheFullError | None

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
                self._chunks = [Chunk(self._active, self._parts)]
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

    def _write_chunks(self, chunks: list[Chunk]) -> None:
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

    def _write_slice(self, chunk: Chunk) -> int:
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

    def _on_write_error(self, chunks: list[Chunk], exc: OSError) -> bool:
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
