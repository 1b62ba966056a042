"""The segmented log: a run of LMDB segments, appends that never wait for the disk, reads by offset.

An append only queues the record and hands back its offset (the next record number); the
committer thread (``commit.py``) writes queued records to the active segment in one LMDB write
transaction per group and syncs it. A record is *durable* once its transaction committed (and,
with ``durability="fsync"``, was synced); ``wait_durable`` blocks until then.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from bisect import bisect_right
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from crc32c import crc32c as _crc32c

from learners.cache.commit import GroupCommitter
from learners.cache.config import CacheConfig
from learners.cache.errors import (
    CacheClosedError,
    CacheFullError,
    NoSuchRecordError,
    RecordTooLargeError,
)
from learners.cache.files import DELETING_SUFFIX, fsync_dir
from learners.cache.format import KEY, KIND_BYTES, RECORD_OVERHEAD, TAIL, record_key
from learners.cache.open_segments import OpenSegmentBudget
from learners.cache.recovery import open_directory, release_lock
from learners.cache.segment import Segment

log = logging.getLogger(__name__)

_yield_gil = time.sleep
_pack_key = KEY.pack
_pack_tail = TAIL.pack
_record_key = record_key
MAX_OPEN_SEALED = 256  # sealed segments kept open for reading (file descriptors, mappings)
HAND_OVER_MASK = 255  # while LMDB commits, an appender offers the GIL every 256 appends


class SegmentedLog(GroupCommitter):
    """The log under a cache directory. Thread-safe; one writing process at a time."""

    def __init__(self, directory: str | os.PathLike[str], config: CacheConfig) -> None:
        self.directory = Path(directory)
        self.config = config
        self.writable = not config.read_only
        self._lock = threading.Lock()
        self._commit_cond = threading.Condition(self._lock)
        self._durable_cond = threading.Condition(self._lock)
        # (bases, segments), replaced whole on every change, never mutated: readers take it
        # without the lock.
        self._index: tuple[list[int], list[Segment]] = ([], [])
        self._lock_fd: int | None = None
        self._error: CacheFullError | None = None
        self._closed = False
        self._closing = False
        self._flush_requested = False
        self._queue: list[tuple[bytes, bytes]] = []  # (key, payload) to commit, in offset order
        self._pending = 0  # bytes queued
        self._notify_at = 0  # wake the committer when _pending reaches this (0: at the next one)
        self._first_pending_at = 0.0
        self._retry_at = 0.0
        self._retry_delay = 0.0
        self._reopen_active = False
        self._committing = False  # the committer is inside an LMDB commit (without the GIL)
        self._max_record = config.max_record_bytes
        self._commit_bytes = config.commit_bytes
        self._durable_now = config.durability == "none"
        self._synced_commits = config.durability == "fsync"
        map_size = 2 * config.segment_bytes + (8 << 20)
        # LMDB syncs data and meta page at each commit only in "fsync" mode; the other modes
        # sync when a segment is sealed and when the cache closes.
        self.write_options: dict[str, Any] = dict(
            map_size=map_size,
            subdir=True,
            sync=self._synced_commits,
            metasync=self._synced_commits,
            max_dbs=0,
        )
        self.read_options: dict[str, Any] = dict(map_size=map_size, subdir=True, max_dbs=0)
        self._open = OpenSegmentBudget(MAX_OPEN_SEALED)
        opened = open_directory(
            self.directory,
            writable=self.writable,
            write_options=self.write_options,
            read_options=self.read_options,
        )
        self._lock_fd = opened.lock_fd
        segments = opened.segments
        self._index = ([s.base for s in segments], segments)
        self._active = segments[-1] if segments else None
        end = segments[-1].end if segments else 0
        self._next = end
        self._durable_end = end
        self._visible_end = end
        self._unwritable = not self.writable
        self._committer: threading.Thread | None = None
        if self.writable:
            self._committer = threading.Thread(
                target=self._run_committer,
                name=f"rill-cache-commit:{self.directory.name}",
                daemon=True,
            )
            self._committer.start()

    def _add_segment(self, segment: Segment) -> None:
        """Append a segment and make it the active one (the lock held, or before any thread)."""
        bases, segments = self._index
        self._index = ([*bases, segment.base], [*segments, segment])
        self._active = segment

    # ------------------------------------------------------------------ appending

    def append(self, payload: bytes | bytearray | memoryview, kind: int = KIND_BYTES,
               owned: bool = False) -> int:
        """Accept one record; return its offset. Never waits for the disk.

        The record's key (offset, kind, CRC-32C) is made here, so that the committer only hands
        finished records to LMDB and the caller's work overlaps LMDB's sync. ``bytes`` are kept
        as they are (no copy); other buffers are copied once, unless ``owned`` (the caller hands
        over a buffer no one writes to again, such as a received ZeroMQ frame).
        """
        if type(payload) is not bytes and not owned:  # stored later: keep an immutable copy
            payload = bytes(payload)
        n = len(payload)
        self.check_size(n)
        payload_crc = _crc32c(payload)  # outside the lock: only offset and kind are added inside
        with self._lock:
            if self._unwritable:
                self._raise_unwritable()
            offset = self._next
            self._next = offset + 1
            # The key: offset, kind, CRC (format.record_key, inlined: this is the hot path).
            crc = _crc32c(_pack_tail(offset, kind), payload_crc)
            self._queue.append((_pack_key(offset, kind, crc), payload))
            pending = self._pending + n + RECORD_OVERHEAD
            self._pending = pending
            if pending < self._notify_at:
                hand_over = self._committing and not offset & HAND_OVER_MASK
            else:  # the first record of a group, or another group's worth: wake the committer
                if not self._notify_at:
                    self._first_pending_at = time.monotonic()
                self._notify_at = pending + self._commit_bytes
                self._commit_cond.notify()
                hand_over = pending >= self._commit_bytes
        if hand_over:
            # Let the committer have the GIL for a moment: when another group is due, and now
            # and then while LMDB syncs, so that the committer, once the sync returns, does not
            # wait a whole switch interval (5 ms) behind a caller appending in a tight loop.
            _yield_gil(0)
        return offset

    def check_size(self, n: int) -> None:
        """Raise ``RecordTooLargeError`` if a record of ``n`` bytes could not be appended."""
        if n > self._max_record:
            raise RecordTooLargeError(
                f"{self.directory}: record of {n} bytes exceeds max_record_bytes="
                f"{self._max_record}; nothing was written"
            )

    def append_many(self, payloads: list[bytes], kind: int = KIND_BYTES) -> list[int]:
        """Accept several records at once (one lock round trip); return their offsets.

        All-or-nothing for size: an over-limit record rejects the batch before anything is kept.
        """
        added = 0
        payloads = [p if type(p) is bytes else bytes(p) for p in payloads]  # kept until committed
        for payload in payloads:
            if len(payload) > self._max_record:
                raise RecordTooLargeError(
                    f"{self.directory}: record of {len(payload)} bytes exceeds max_record_bytes="
                    f"{self._max_record}; nothing of this batch was written"
                )
            added += len(payload) + RECORD_OVERHEAD
        with self._lock:
            if self._unwritable:
                self._raise_unwritable()
            first = self._next
            self._next = first + len(payloads)
            self._queue += [(_record_key(o, kind, p), p) for o, p in enumerate(payloads, first)]
            pending = self._pending + added
            self._pending = pending
            hand_over = self._committing  # (see append)
            if pending >= self._notify_at:
                if not self._notify_at:
                    self._first_pending_at = time.monotonic()
                self._notify_at = pending + self._commit_bytes
                self._commit_cond.notify()
                hand_over = hand_over or pending >= self._commit_bytes
        if hand_over:
            _yield_gil(0)
        return list(range(first, first + len(payloads)))

    def _raise_unwritable(self) -> None:
        if self._closed or self._closing:
            raise CacheClosedError(f"{self.directory}: the cache is closed")
        if not self.writable:
            raise CacheClosedError(f"{self.directory}: the cache is open read-only")
        assert self._error is not None
        raise CacheFullError(str(self._error), path=self._error.path, errno=self._error.errno)

    # ------------------------------------------------------------------ durability

    def wait_durable(self, offset: int, timeout: float | None = None) -> bool:
        """True once the record at ``offset`` is durable; False if ``timeout`` passes first.

        Raises :class:`CacheFullError` while the OS refuses writes (the record is kept and
        retried; call again later).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._durable_now:
                return offset < self._next
            while self._durable_end <= offset:
                if self._error is not None:
                    raise CacheFullError(str(self._error), path=self._error.path, errno=self._error.errno)
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
            target = self._next
            self._flush_requested = True
            self._commit_cond.notify()
            if self._durable_now:  # durable already; wait until readers see it too
                deadline = None if timeout is None else time.monotonic() + timeout
                while self._visible_end < target and not self._closed:
                    if self._error is not None:
                        raise CacheFullError(
                            str(self._error), path=self._error.path, errno=self._error.errno
                        )
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._durable_cond.wait(remaining)
                return True
        return target == 0 or self.wait_durable(target - 1, timeout)

    @property
    def write_error(self) -> CacheFullError | None:
        """While the OS refuses this cache's writes (disk full, quota, file size limit): why, as
        the error appends raise meanwhile; None while writes succeed. Records accepted before it
        are kept and retried, and appends are accepted again once a retried write succeeds."""
        return self._error

    @property
    def durable_offset(self) -> int:
        """Every record at an offset below this is durable."""
        if self._durable_now and self.writable:
            return self._next
        return self._durable_end

    @property
    def visible_offset(self) -> int:
        """Readers see the records below this offset (committed to LMDB)."""
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
        for segment in reversed(self._index[1]):
            count = segment.count(visible)
            if count:
                return segment.offset_at(count - 1)
        return -1

    # ------------------------------------------------------------------ reading

    def segments(self) -> list[Segment]:
        """A snapshot of the segment list, oldest first."""
        return list(self._index[1])

    def segment_for(self, offset: int) -> Segment | None:
        bases, segments = self._index
        i = bisect_right(bases, offset) - 1
        if i < 0:
            return None
        segment = segments[i]
        return segment if offset < segment.end else None

    def read(self, offset: int) -> tuple[int, bytes]:
        """``(kind, payload)`` of the record at ``offset``; checksum verified."""
        bases, segments = self._index
        i = bisect_right(bases, offset) - 1
        if i >= 0 and 0 <= offset < self._visible_end:
            segment = segments[i]
            if offset < segment.end:
                if segment.sealed and self._open.over(len(segments)):
                    self._open.touch(segment, segments)
                return segment.get(offset, self.read_options)
        first = bases[0] if bases else 0
        if offset < first:
            why = "removed by retention"
        elif offset >= self._visible_end:
            why = "not (yet) a durable record"
        else:
            why = "in the gap after a damaged segment"
        raise NoSuchRecordError(f"{self.directory}: no record at offset {offset} ({why})")

    def offsets(self, start: int = 0, stop: int | None = None) -> Iterator[int]:
        """Offsets of the visible records in ``[start, stop)``, in order."""
        for segment in self.segments():
            limit = self._visible_end if stop is None else min(stop, self._visible_end)
            if segment.end <= start:
                continue
            if segment.base >= limit:
                return
            if segment.sealed and not segment.salvaged:
                if self._open.over(len(self._index[1])):
                    self._open.touch(segment, self._index[1])
                segment.open_for_reading(self.read_options)  # a damaged one is salvaged now
            yield from segment.offsets(start, limit)

    # ------------------------------------------------------------------ retention and closing

    def delete_segment(self, segment: Segment) -> None:
        """Remove a sealed segment (retention). Never the active one."""
        if not self.writable:
            raise CacheClosedError(f"{self.directory}: the cache is open read-only")
        with self._lock:
            bases, segments = self._index
            if not segment.sealed or segment is segments[-1]:
                raise ValueError(f"segment {segment.name} is not sealed")
            i = segments.index(segment)
            self._index = (bases[:i] + bases[i + 1 :], segments[:i] + segments[i + 1 :])
        self._open.forget(segment)
        segment.wait_sealed()
        segment.deleted = True
        segment.release()
        doomed = segment.path.with_name(segment.name + DELETING_SUFFIX)
        segment.path.rename(doomed)  # atomic: a crash leaves it whole or marked for deletion
        fsync_dir(self.directory)
        shutil.rmtree(doomed)

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Commit and sync what is pending, stop the committer, release the directory."""
        with self._lock:
            if self._closed or self._closing:
                return
            self._closing = True
            self._unwritable = True
            self._commit_cond.notify()
        if self._committer is not None:
            self._committer.join()
        for segment in self.segments():
            segment.wait_sealed()
        with self._lock:
            self._closed = True
            error = self._error
            self._durable_cond.notify_all()
        try:
            if self.writable and self._active is not None and self._active.is_open:
                self._active.close_clean(sync=not self._synced_commits)
        finally:
            for segment in self._index[1]:
                segment.release()
            if self._lock_fd is not None:
                release_lock(self._lock_fd)
                self._lock_fd = None
        if error is not None:
            raise CacheFullError(
                f"{error}; records not yet durable at close were lost",
                path=error.path,
                errno=error.errno,
            )
