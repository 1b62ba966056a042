"""Group commit: the thread that writes queued records to LMDB, rolls segments, handles failures.

Mixed into :class:`learners.cache.log.SegmentedLog`, whose lock, queue and segments it uses. A
group is every record queued ``commit_interval_ms`` after the first one, or ``commit_bytes`` of
them, whichever comes first; a backlog is written in transactions of about ``commit_bytes``, each
published as durable when it commits, so a burst never waits for one huge sync.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
import threading
import time
from operator import itemgetter
from pathlib import Path
from typing import Any

import lmdb

from learners.cache.blobs import REF_SIZE, aligned
from learners.cache.config import CacheConfig
from learners.cache.errors import CacheFullError
from learners.cache.files import segment_name
from learners.cache.format import RECORD_OVERHEAD, footprint, offset_of
from learners.cache.segment import Segment, create_segment

log = logging.getLogger(__name__)

_MAX_RETRY_S = 1.0
_REFUSALS = {
    errno.ENOSPC: "disk full",
    errno.EFBIG: "file size limit reached",
    errno.EDQUOT: "disk quota exceeded",
}


def record_cost(length: int, page: int, external_bytes: int | None) -> int:
    """About how many bytes of a segment a record of ``length`` payload bytes takes: in LMDB's
    file, or, if it goes to the blob file (at least ``external_bytes``), its reference there and
    its padded payload."""
    if external_bytes is not None and length >= external_bytes:
        return footprint(REF_SIZE, page) + aligned(length)
    return footprint(length, page)


class _WriteFailed(Exception):
    def __init__(self, done: int, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.done = done  # records of the batch that were committed before the failure
        self.cause = cause


def os_error_number(exc: BaseException) -> int | None:
    """The errno behind an OSError or an LMDB error (py-lmdb gives only the message)."""
    if isinstance(exc, OSError):
        return exc.errno
    if isinstance(exc, lmdb.DiskError):
        return errno.ENOSPC
    text = str(exc)
    for number in (*_REFUSALS, errno.EIO, errno.EROFS, errno.EACCES):
        if text.endswith(os.strerror(number)):
            return number
    return None


def probe_write(data_path: Path, page: int) -> int | None:
    """Why a write past the end of ``data_path`` fails, as an errno, or None if it does not.

    LMDB reports a short write as EIO, and a short write is how the kernel says "disk full"
    (the next write would say ENOSPC) or "file size limit" (EFBIG): one page written where LMDB
    was writing, into a scratch file beside it, tells which.
    """
    try:
        offset = data_path.stat().st_size
    except OSError as exc:
        return exc.errno
    limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    if limit != resource.RLIM_INFINITY and offset + page > limit:
        return errno.EFBIG  # writing there would raise SIGXFSZ, which kills by default
    probe = data_path.with_name(".write-probe")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.pwrite(fd, bytes(page), offset)  # sparse below: needs one block, like LMDB's write
        finally:
            os.close(fd)
            probe.unlink(missing_ok=True)
    except OSError as exc:
        return exc.errno
    return None


class GroupCommitter:
    """The committer thread's side of the log (see ``SegmentedLog``)."""

    directory: Path
    config: CacheConfig
    write_options: dict[str, Any]
    _lock: threading.Lock
    _commit_cond: threading.Condition
    _durable_cond: threading.Condition
    _index: tuple[list[int], list[Segment]]
    _active: Segment
    _queue: list[tuple[bytes, bytes]]
    _error: CacheFullError | None
    _committing: bool
    _notify_at: int
    _costs: dict[int, int]  # set by _reset_costs, on the first write
    _costs_page: tuple[int, int | None] = (0, None)

    def _run_committer(self) -> None:
        interval = self.config.commit_interval_ms / 1000.0
        while True:
            with self._lock:
                while True:
                    if not self._queue and not self._flush_requested and self._error is None:
                        if self._closing:
                            return
                        # Timed: a wake-up missed by an append then costs one interval, never a stall
                        # of the last records until some later append (seen: final acks never sent).
                        self._commit_cond.wait(interval)
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
                records = self._queue
                self._queue = []
                self._pending = 0
                self._notify_at = 0
                self._flush_requested = False
                closing = self._closing
            try:
                self._write(records)
            except _WriteFailed as failed:
                if self._on_write_error(records[failed.done :], failed.cause) and closing:
                    return
                continue
            with self._lock:
                if self._error is not None:
                    log.warning("%s: writes succeed again; appends are accepted", self.directory)
                self._error = None
                self._retry_delay = 0.0
                self._unwritable = self._closed or self._closing
                self._durable_cond.notify_all()

    def _write(self, records: list[tuple[bytes, bytes]]) -> None:
        """Commit ``records`` (keyed, in offset order) in transactions of about ``commit_bytes``,
        rolling to a new segment before one would pass ``segment_bytes``."""
        done = 0
        try:
            if self._reopen_active:
                self._active.release()
                self._active.open_writable(self.write_options)
                self._reopen_active = False
            n = len(records)
            limit = self.config.segment_bytes
            cap = n  # records per transaction; halved if one overflows even an empty segment
            # A batch is split into transactions of about commit_bytes, but never leaves a small
            # rest behind: every transaction costs LMDB's syncs, however few records it holds.
            left = sum(map(len, map(itemgetter(1), records))) + n * RECORD_OVERHEAD
            while done < n:
                segment = self._active
                page = segment.page_size
                room = limit - segment.used  # used: what LMDB reports after the last commit
                empty = segment.end == segment.base
                stop, size, queued = done, 0, 0
                external = self.config.external_bytes if segment.external else None
                shape = (page, external)  # what a record's cost depends on
                costs = self._costs if shape == self._costs_page else self._reset_costs(shape)
                while stop < n and stop - done < cap:
                    length = len(records[stop][1])
                    cost = costs.get(length)  # its bytes in the LMDB file, for the segment's room
                    if cost is None:
                        if len(costs) > 4096:  # many sizes: keep the memo small
                            costs.clear()
                        cost = costs[length] = record_cost(length, page, external)
                    if size + cost > room and (stop > done or not empty):
                        break  # the segment is full
                    if queued >= self._commit_bytes and left - queued >= self._commit_bytes // 2:
                        break  # a group's worth (as appends count it), and enough left for another
                    size += cost
                    queued += length + RECORD_OVERHEAD
                    stop += 1
                if stop == done:
                    self._roll(offset_of(records[done][0]))
                    continue
                try:
                    self._committing = True
                    segment.put(records[done:stop], size, limit * 7 // 8, external)
                except lmdb.MapFullError:
                    # Fuller than estimated (the map is 2 x segment_bytes + 8 MiB): the rest
                    # goes to a new segment, or into smaller transactions in an empty one.
                    if not empty:
                        self._roll(offset_of(records[done][0]))
                    elif stop - done > 1:
                        cap = (stop - done) // 2
                    else:
                        raise
                    continue
                finally:
                    self._committing = False
                done = stop
                left -= queued
                self._publish(segment, offset_of(records[stop - 1][0]) + 1)
        except (OSError, lmdb.Error) as exc:
            raise _WriteFailed(done, exc) from exc

    def _reset_costs(self, shape: tuple[int, int | None]) -> dict[int, int]:
        """A fresh memo of ``record_cost`` by payload size (a stream repeats sizes)."""
        self._costs, self._costs_page = {}, shape
        return self._costs

    def _publish(self, segment: Segment, end: int) -> None:
        segment.end = end
        with self._lock:
            self._durable_end = end
            self._visible_end = end
            self._durable_cond.notify_all()

    def _roll(self, base: int) -> None:
        """Seal the active segment and start the next one at offset ``base``."""
        old = self._active
        if not old.sealed:
            old.seal(sync=not self._synced_commits)
        new = create_segment(self.directory / segment_name(base), base, self.write_options)
        with self._lock:
            self._add_segment(new)  # type: ignore[attr-defined]  (SegmentedLog's)
        log.debug("sealed segment %s, started %s", old.name, new.name)

    def _on_write_error(self, remaining: list[tuple[bytes, bytes]], exc: BaseException) -> bool:
        """Keep the unwritten records for a retry, refuse new appends until one succeeds."""
        number = os_error_number(exc)
        # The file that refused: the blob file names itself (``BlobWriter``); LMDB's errors do not.
        path = Path(exc.filename) if isinstance(exc, OSError) and exc.filename else self._active.data_path
        if number == errno.EIO and not isinstance(exc, OSError):
            number = probe_write(path, self._active.page_size) or number
        reason = _REFUSALS.get(number) if number is not None else None
        reason = reason or (os.strerror(number) if number is not None else f"{type(exc).__name__}: {exc}")
        message = (
            f"{path}: write failed ({reason}, errno {number}); durable records are intact, pending "
            "records are kept and retried, new appends are refused"
        )
        if isinstance(exc, lmdb.PanicError):  # LMDB gave up on the environment: reopen it
            self._reopen_active = True
        with self._lock:
            first_failure = self._error is None
            self._error = CacheFullError(message, path=str(path), errno=number)
            self._unwritable = True
            self._queue = remaining + self._queue
            self._pending += sum(len(key) + len(value) for key, value in remaining)
            self._notify_at = 0
            self._retry_delay = min(max(self._retry_delay * 2, 0.01), _MAX_RETRY_S)
            self._retry_at = time.monotonic() + self._retry_delay
            self._durable_cond.notify_all()
            gave_up = self._closing
        if first_failure or gave_up:
            log.error("%s%s", message, "; giving up at close" if gave_up else "")
        return gave_up
