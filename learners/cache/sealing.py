"""How a segment is closed for writing: sealed when the committer rolls past it, closed clean at
the cache's close, or finished after a writer that died on this boot had sealed it.

Each writes a marker that lets a later open trust the segment without LMDB's structural check
(``trust.py``): ``SEALED`` (end, time, size and CRC-32C of the data file, written by a background
*sealer* thread, since reading the whole file would stall the committer) or ``CLOSED`` (the same,
for the active segment at a clean close). ``SegmentSealing`` is a part of ``Segment``
(``segment.py``), kept apart because it is about the segment's end of life, not its records.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from pathlib import Path

import lmdb

from learners.cache.blobs import BlobWriter
from learners.cache.files import CLOSED_MARKER, SEALED_MARKER, file_digest, write_marker

log = logging.getLogger(__name__)


class SegmentSealing:
    """Sealing and clean closing for ``Segment``, which provides the attributes declared here."""

    path: Path
    end: int
    sealed: bool
    sealed_at: float
    deleted: bool
    sealer: threading.Thread | None
    _lock: threading.Lock
    _env: lmdb.Environment | None
    _blob_writer: BlobWriter | None
    _trusted: bool

    name: str
    data_path: Path
    blob_path: Path

    def release(self) -> None:  # (Segment's)
        raise NotImplementedError

    def seal(self, *, sync: bool) -> None:
        """Seal it: no write follows. Its ``SEALED`` marker (after a sync of its files unless
        every commit was synced) is written by a background thread. Until the marker exists, a
        reopened cache trusts this segment only after LMDB's structural check."""
        self.sealed = True
        self.sealed_at = time.time()
        self._start_sealer(sync)

    def finish_crashed_seal(self, *, write_marker: bool) -> None:
        """Trust a segment its writer had sealed (the committer had moved on to the next one) but
        died on this boot before its sealer wrote the ``SEALED`` marker: the OS kept every page
        the writer wrote, as for the active segment (``trust``'s third rule). ``write_marker``
        (the process that now writes the cache): do that sealer's work (sync, digest, marker) in
        the background, so that later opens trust it by its marker."""
        self._trusted = True
        if write_marker:
            self._start_sealer(True)

    def wait_sealed(self) -> None:
        """Wait for the background sealing, if any."""
        if self.sealer is not None:
            self.sealer.join()

    def close_clean(self, *, sync: bool) -> None:
        """At a clean close of the active segment: sync it and record its digest (``CLOSED``),
        so that the next open trusts it without a structural check."""
        if self._env is None:
            return
        if sync:
            if self._blob_writer is not None:
                self._blob_writer.flush()
            self._env.sync(True)
        self.release()
        size, crc = file_digest(self.data_path)
        write_marker(
            self.path / CLOSED_MARKER,
            {"end": self.end, "closed_at": time.time(), "size": size, "crc32c": crc},
        )

    def _start_sealer(self, sync: bool) -> None:
        self.sealer = threading.Thread(
            target=self._write_sealed_marker, args=(sync,), name=f"rill-cache-seal:{self.name}", daemon=True
        )
        self.sealer.start()

    def _write_sealed_marker(self, sync: bool) -> None:
        try:
            if self.deleted:
                return
            with self._lock:
                writer, self._blob_writer = self._blob_writer, None
            if writer is not None:  # the committer has moved on: nothing writes it any more
                if sync:
                    writer.flush()
                writer.close()
            if sync:  # through the files, not the environment: that may be closed by now
                unsynced_blobs = writer is None and self.blob_path.exists()  # a crashed writer's
                for path in [self.data_path] + ([self.blob_path] if unsynced_blobs else []):
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fdatasync(fd)
                    finally:
                        os.close(fd)
            size, crc = file_digest(self.data_path)
            write_marker(
                self.path / SEALED_MARKER,
                {"end": self.end, "sealed_at": self.sealed_at, "size": size, "crc32c": crc},
            )
        except (OSError, lmdb.Error) as exc:
            log.warning("segment %s: could not write its SEALED marker: %s", self.name, exc)
