"""One segment: an LMDB environment holding the records ``[base, end)``, and how it is trusted.

A segment file is handed to LMDB only when it is known intact (``trust.py``); otherwise the
segment is *salvaged* (``salvage.py``): its intact records are found without LMDB and read from
the file directly; the others are reported lost. Either way every record's own CRC-32C is
checked on every read, so a flipped payload byte is reported and never returned.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from bisect import bisect_left
from pathlib import Path
from typing import Any

import lmdb
from crc32c import crc32c as _crc32c

from learners.cache import envs, trust
from learners.cache.blobs import BLOB_NAME, BlobWriter, read_blob
from learners.cache.errors import CacheCorruptError, NoSuchRecordError
from learners.cache.files import (
    CLOSED_MARKER,
    DATA_NAME,
    NEW_SUFFIX,
    SEALED_MARKER,
    SEGMENT_MARKER,
    fsync_dir,
    read_marker,
    write_marker,
)
from learners.cache.format import (
    EXTERNAL,
    KEY,
    KEY_SIZE,
    KNOWN_KINDS,
    SEGMENT_FORMAT_VERSION,
    TAIL,
    external_key,
    offset_of,
    seek_key,
)
from learners.cache.salvage import Salvage, read_salvaged, scan
from learners.cache.sealing import SegmentSealing

log = logging.getLogger(__name__)

_seek_key = seek_key
_unpack_key = KEY.unpack
_pack_tail = TAIL.pack


class Segment(SegmentSealing):
    """A segment of the cache: records ``[base, end)`` in the LMDB environment at ``path``.

    ``end`` grows while the segment is active (the committer publishes each commit). Reads are
    thread-safe; writes come from the committer only; sealing and closing are ``sealing.py``'s.
    The environment is opened lazily, after the trust check (``trust.py``), so opening a cache
    reads no sealed segment's file.
    """

    def __init__(self, path: Path, base: int, end: int, *, sealed: bool, sealed_at: float = 0.0):
        self.path = path
        self.base = base
        self.end = end
        self.sealed = sealed
        self.sealed_at = sealed_at
        self.damage: str | None = None  # the structural problem that made it salvaged
        self.used = 0  # bytes of its LMDB file in use (the active segment's, for rolling)
        self.page_size = os.sysconf("SC_PAGE_SIZE")
        self.deleted = False
        self._lock = threading.Lock()
        self._env: lmdb.Environment | None = None
        self._env_key = ""
        self._live = False  # another process writes it: read transactions are not kept
        self._txn: lmdb.Transaction | None = None
        self._cursor: lmdb.Cursor | None = None  # on _txn, kept for reads
        self._salvage: Salvage | None = None
        self._salvaged: list[int] = []  # sorted offsets of the salvaged records
        self._fd: int | None = None
        self._trusted = False  # passed the trust check in this process: reopening skips it
        self.sealer: threading.Thread | None = None
        self.external = False  # the committer may move large payloads to the blob file (format 3)
        self._blob_writer: BlobWriter | None = None
        self._blob_fd: int | None = None  # for reading external records
        self._blob_sync = True

    def __repr__(self) -> str:
        state = "salvaged" if self._salvage else "sealed" if self.sealed else "active"
        return f"Segment({self.name}, [{self.base}, {self.end}), {state})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def data_path(self) -> Path:
        return self.path / DATA_NAME

    @property
    def blob_path(self) -> Path:
        return self.path / BLOB_NAME

    @property
    def salvaged(self) -> bool:
        return self._salvage is not None

    def size(self) -> int:
        """Bytes of its LMDB data file (0 once deleted)."""
        try:
            return self.data_path.stat().st_size
        except OSError:
            return 0

    # ------------------------------------------------------------------ trust and opening

    def open_writable(self, options: dict[str, Any]) -> None:
        """Open the environment for the committer (the active segment, already trusted)."""
        with self._lock:
            self._env_key, self._env = envs.acquire(self.path, writable=True, **options)
            self._trusted = True
            marker = read_marker(self.path / SEGMENT_MARKER) or {}
            version = marker.get("format_version")
            self.external = type(version) is int and version >= 3  # a format-2 segment stays so
            self._blob_sync = bool(options.get("sync", True))
            self._refresh_locked()

    def open_for_reading(self, options: dict[str, Any], *, live: bool = False) -> None:
        """Open it read-only if it passes the trust check, else salvage it. Idempotent."""
        with self._lock:
            self._open_for_reading_locked(options, live)

    def _open_for_reading_locked(self, options: dict[str, Any], live: bool) -> None:
        if self._env is not None or self._salvage is not None:
            return
        if self.deleted:
            raise NoSuchRecordError(f"segment {self.name} was removed by retention")
        if not self.sealed and trust.never_committed(self):  # created just before a crash
            self._salvage = Salvage()
            return
        if not self._trusted and not live:
            problem = trust.check(self, SEALED_MARKER if self.sealed else CLOSED_MARKER)
            if problem is not None:
                self._salvage_locked(problem)
                return
            self._trusted = True
        self._env_key, self._env = envs.acquire(
            self.path, writable=False, lock=live, **options
        )
        self._live = live
        if not self.sealed:
            self._refresh_locked()

    def _refresh_locked(self) -> None:
        """Read ``end`` and ``used`` of the (active) environment."""
        assert self._env is not None
        with self._env.begin() as txn:
            cursor = txn.cursor()
            self.end = offset_of(cursor.key()) + 1 if cursor.last() else self.base
        self.page_size = self._env.stat()["psize"]
        self.used = (self._env.info()["last_pgno"] + 1) * self.page_size + self._blob_size()

    def _blob_size(self) -> int:
        if self._blob_writer is not None:
            return self._blob_writer.end
        try:
            return self.blob_path.stat().st_size
        except OSError:
            return 0

    def salvage(self, problem: str) -> None:
        with self._lock:
            self._salvage_locked(problem)

    def _salvage_locked(self, problem: str) -> None:
        self.damage = problem
        found = scan(self.data_path, self.base, self.blob_payload)
        self._salvage = found
        self._salvaged = sorted(found.records)
        self._fd = os.open(self.data_path, os.O_RDONLY) if found.records else None
        if self._salvaged and self._salvaged[-1] >= self.end:
            self.end = self._salvaged[-1] + 1
        # An active segment's end is not recorded anywhere: how many it lost is unknown.
        lost = f"{max(self.end - self.base - len(self._salvaged), 0)}" if self.sealed else "an unknown number"
        log.warning(
            "segment %s: LMDB structure damaged (%s); salvaged %d record(s) without LMDB, "
            "%s lost, %d with conflicting copies",
            self.name,
            problem,
            len(self._salvaged),
            lost,
            len(found.conflicts),
        )

    def offset_bound(self) -> int:
        """An offset above every record this (salvaged) file can hold: its pages could hold at
        most one record per 23 bytes (its 2-byte slot, 8-byte node header and 13-byte key)."""
        pages = max(self._salvage.last_page + 1 if self._salvage else 0, self.size() // self.page_size)
        return max(self.end, self.base + pages * self.page_size // 23 + 1)

    # ------------------------------------------------------------------ reading

    def count(self, visible: int) -> int:
        """How many records below ``visible`` it holds (as far as known before opening it)."""
        if self._salvage is not None:
            return bisect_left(self._salvaged, visible)
        return max(min(self.end, visible) - self.base, 0)

    def offset_at(self, i: int) -> int:
        return self._salvaged[i] if self._salvage is not None else self.base + i

    def offsets(self, start: int, stop: int) -> range | list[int]:
        """The offsets of its records in ``[start, stop)``."""
        if self._salvage is not None:
            return self._salvaged[bisect_left(self._salvaged, start) : bisect_left(self._salvaged, stop)]
        return range(max(start, self.base), min(stop, self.end))

    def get(self, offset: int, options: dict[str, Any]) -> tuple[int, bytes]:
        """``(kind, payload)`` of the record at ``offset``, checksum verified."""
        key = _seek_key(offset)
        with self._lock:
            cursor = self._cursor
            if cursor is not None:  # the common case: a kept snapshot
                result = _find(cursor, key, offset, self.blob_payload)
            else:
                if self._env is None and self._salvage is None:
                    self._open_for_reading_locked(options, False)
                if self._salvage is not None:
                    result = self._get_salvaged(offset, key)
                else:
                    result = self._get_lmdb(offset, key)
        if isinstance(result, str):
            raise CacheCorruptError(f"segment {self.name}: {result} at offset {offset}")
        return result

    def _get_lmdb(self, offset: int, key: bytes) -> tuple[int, bytes] | str:
        env = self._env
        if env is None:
            raise NoSuchRecordError(f"segment {self.name} was removed by retention")
        if self._live:  # keep no snapshot open in another process's file
            with env.begin(buffers=True) as txn:
                return _find(txn.cursor(), key, offset, self.blob_payload)
        self._txn = env.begin(buffers=True)
        self._cursor = self._txn.cursor()
        return _find(self._cursor, key, offset, self.blob_payload)

    def _get_salvaged(self, offset: int, key: bytes) -> tuple[int, bytes] | str:
        assert self._salvage is not None
        if offset in self._salvage.conflicts:
            return "two different intact copies (a stale page); neither is trusted"
        where = self._salvage.records.get(offset)
        if where is None:
            return f"record lost with the damaged LMDB structure ({self.damage})"
        assert self._fd is not None
        return read_salvaged(self._fd, *where, blobs=self.blob_payload)

    def blob_payload(self, ref: bytes | memoryview) -> bytes | str:
        """An external record's payload (``blobs.read_blob``), or what is wrong."""
        if self._blob_fd is None:
            try:
                self._blob_fd = os.open(self.blob_path, os.O_RDONLY)
            except FileNotFoundError:
                return f"external record, but the segment has no {BLOB_NAME}"
        return read_blob(self._blob_fd, ref)

    def drop_snapshot(self) -> None:
        """End the kept read transaction, so that the writer can reuse the pages it pins."""
        with self._lock:
            self._drop_snapshot_locked()

    def _drop_snapshot_locked(self) -> None:
        self._cursor = None
        if self._txn is not None:
            self._txn.abort()
            self._txn = None

    # ------------------------------------------------------------------ writing (committer)

    def put(self, items: list[tuple[bytes, bytes]], estimate: int, limit: int,
            external_bytes: int | None = None) -> None:
        """Append ``(key, value)`` items in one write transaction, synced per the environment's
        flags when it commits; payloads of at least ``external_bytes`` go to the blob file first.
        Raises ``lmdb.Error`` or ``OSError`` (nothing of it is then stored).

        ``used`` grows by ``estimate``; LMDB's own page count is read only once that passes
        ``limit`` (each call into LMDB gives up the GIL, and getting it back from a busy appender
        takes time)."""
        env = self._env
        assert env is not None
        if external_bytes is not None and self.external:
            items = self._externalize(items, external_bytes)
        txn = env.begin(write=True)
        try:
            _consumed, added = txn.cursor().putmulti(items, append=True)
            if added != len(items):
                raise lmdb.KeyExistsError(f"{self.name}: offsets out of order ({added} of {len(items)})")
            txn.commit()
        except BaseException:
            txn.abort()
            raise
        self.drop_snapshot()
        self.used += estimate
        if self.used >= limit:
            self.used = (env.info()["last_pgno"] + 1) * self.page_size + self._blob_size()

    def _externalize(self, items: list[tuple[bytes, bytes]], at_least: int) -> list[tuple[bytes, bytes]]:
        """Write the large payloads among ``items`` to the blob file (durably, if commits are
        synced) and return the items LMDB is to store: those records as flagged references."""
        large = [i for i, (_key, value) in enumerate(items) if len(value) >= at_least]
        if not large:
            return items
        if self._blob_writer is None:
            self._blob_writer = BlobWriter(self.blob_path, sync=self._blob_sync)
            if self._blob_writer.end == 0:
                fsync_dir(self.path)  # the file's name is durable before a reference to it
        refs = self._blob_writer.write([items[i][1] for i in large])
        items = list(items)
        for i, ref in zip(large, refs):
            items[i] = (external_key(items[i][0]), ref)
        return items

    def release(self) -> None:
        """Close what it holds open (it reopens on the next read unless deleted)."""
        with self._lock:
            self._drop_snapshot_locked()
            if self._env is not None:
                self._env = None
                envs.release(self._env_key)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None
            if self._blob_fd is not None:
                os.close(self._blob_fd)
                self._blob_fd = None
            writer, self._blob_writer = self._blob_writer, None
            if writer is not None:
                writer.close()
            self._salvage = None  # a later read salvages it again
            self._salvaged = []

    @property
    def is_open(self) -> bool:
        return self._env is not None


def _find(cursor: lmdb.Cursor, key: bytes, offset: int, blobs: Any) -> tuple[int, bytes] | str:
    """The record at ``offset`` (``key`` is its 8-byte prefix), checked, or the problem; an
    external record's payload is read with ``blobs``. The read path of sampling:
    format.check_record, inlined."""
    try:
        if not cursor.set_range(key):
            return "record missing"
        found, value = cursor.item()
    except lmdb.Error as exc:
        return f"LMDB error ({exc})"
    if found[:8] != key:
        return "record missing"
    if len(found) != KEY_SIZE:
        return f"key of {len(found)} bytes, not {KEY_SIZE}"
    _offset, kind, crc = _unpack_key(found)
    if kind & EXTERNAL:
        value = blobs(value)
        if type(value) is str:
            return value
        kind &= ~EXTERNAL
        if _crc32c(_pack_tail(_offset, kind), _crc32c(value)) != crc:
            return "checksum mismatch"
    elif _crc32c(found[:9], _crc32c(value)) != crc:  # payload, then offset and kind
        return "checksum mismatch"
    if kind not in KNOWN_KINDS:
        return f"unknown record kind {kind}"
    return kind, bytes(value)


def create_segment(path: Path, base: int, options: dict[str, Any]) -> Segment:
    """Create an empty segment durably (its directory appears complete or not at all) and open
    it for writing. A segment left complete by an earlier, failed attempt is reused."""
    if (path / SEGMENT_MARKER).exists():
        segment = Segment(path, base, base, sealed=False)
        segment.open_writable(options)
        return segment
    staging = path.with_name(path.name + NEW_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write_marker(
        staging / SEGMENT_MARKER,
        {"format_version": SEGMENT_FORMAT_VERSION, "base": base, "created_at": time.time()},
    )
    staging.rename(path)
    fsync_dir(path.parent)
    segment = Segment(path, base, base, sealed=False)
    segment.open_writable(options)
    fsync_dir(path)  # data.mdb and lock.mdb exist for good before records go in
    return segment
