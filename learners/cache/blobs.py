"""A segment's blob file: large payloads stored outside LMDB, in one append-only file.

Why: a durable write through the page cache (LMDB's ``write`` + ``fdatasync``) costs this
project's 2-core VMs about 2 ms of kernel CPU per MB, twice per transition on one machine
(the actor's spool, the learner's cache), which held image-sized transitions to a third of
raw ZeroMQ's rate. The same bytes written with ``O_DIRECT | O_DSYNC`` cost a twentieth of that
CPU (``dd`` of 800 MiB in 4 MiB blocks: 1.77 s of system time through the page cache and
``fdatasync``, 0.09 s direct; see docs/cache.md). So a record whose payload is at least
``CacheConfig.external_bytes`` (256 KiB) is written here, and LMDB keeps only a reference to
it; the record's key and CRC-32C stay in LMDB and cover the payload itself, so a reference to
the wrong bytes, a torn write or a flipped byte fails the record's checksum like any other
damage.

Layout: ``<segment>/blobs.dat``. Each payload starts at a multiple of ``ALIGN`` and is padded up
to the next one (direct I/O needs aligned offsets, lengths and buffers); nothing else is in the
file. A payload is written, and synced when the cache syncs commits, *before* the LMDB
transaction that references it commits, so a committed reference always points at durable bytes;
what a crash leaves past the last reference is unreferenced padding, skipped by the next write.
Where the file system refuses ``O_DIRECT`` (tmpfs), writes go through the page cache and are
synced with ``fdatasync``.
"""

from __future__ import annotations

import errno
import mmap
import os
import struct
from pathlib import Path

BLOB_NAME = "blobs.dat"
ALIGN = 4096
REF = struct.Struct(">QQ")  # position in the blob file, payload length
REF_SIZE = REF.size


def aligned(n: int) -> int:
    return -(-n // ALIGN) * ALIGN


class BlobWriter:
    """The committer's end of a segment's blob file: ``write`` stores payloads and returns their
    references; with ``sync`` they are durable when it returns."""

    def __init__(self, path: Path, *, sync: bool, direct: bool = True) -> None:
        self.path = path
        self.sync = sync
        flags = os.O_WRONLY | os.O_CREAT
        self.direct = False
        fd = -1
        if direct and hasattr(os, "O_DIRECT"):  # direct even unsynced: spares the page cache's copy
            try:
                fd = os.open(path, flags | os.O_DIRECT | (os.O_DSYNC if sync else 0), 0o644)
                self.direct = True
            except OSError as exc:
                if exc.errno != errno.EINVAL:  # EINVAL: this file system has no direct I/O
                    raise
        if fd < 0:
            fd = os.open(path, flags, 0o644)
        self._fd = fd
        # After a crash the file may end in a torn, unreferenced write: start past it.
        self.end = aligned(os.fstat(fd).st_size)
        self._buffer: mmap.mmap | None = None  # page-aligned, as direct I/O needs

    def write(self, payloads: list[bytes]) -> list[bytes]:
        """Append ``payloads`` in one write; return each one's reference (``REF``-packed)."""
        total = sum(aligned(len(p)) for p in payloads)
        if self._buffer is None or len(self._buffer) < total:
            if self._buffer is not None:
                self._buffer.close()
            self._buffer = mmap.mmap(-1, max(total, 4 * 1024 * 1024))
        buffer = self._buffer
        refs = []
        at = 0
        for payload in payloads:
            n = len(payload)
            buffer[at : at + n] = payload
            padded = aligned(n)
            if padded > n:  # zero the padding: no stale bytes of an earlier group go to disk
                buffer[at + n : at + padded] = bytes(padded - n)
            refs.append(REF.pack(self.end + at, n))
            at += padded
        view = memoryview(buffer)[:total]
        try:
            written = 0
            while written < total:  # a short write (e.g. a signal) continues where it stopped
                written += os.pwrite(self._fd, view[written:], self.end + written)
            if self.sync and not self.direct:
                os.fdatasync(self._fd)
        except OSError as exc:  # name this file: the cache's error says which file refused
            if exc.filename is None:
                raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
            raise
        finally:
            view.release()
        self.end += total
        return refs

    def flush(self) -> None:
        """Make every write so far durable (a segment sealed or closed without synced commits)."""
        os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._buffer is not None:
            self._buffer.close()
            self._buffer = None


def read_blob(fd: int, ref: bytes | memoryview) -> bytes | str:
    """The payload a reference points at, or what is wrong with the reference (the record's
    checksum, checked by the caller, decides whether the bytes are the right ones)."""
    if len(ref) != REF_SIZE:
        return f"external record with a reference of {len(ref)} bytes, not {REF_SIZE}"
    position, n = REF.unpack(ref)
    size = os.fstat(fd).st_size
    if position + n > size:  # (checked first: a damaged length must not allocate terabytes)
        return f"external record's payload cut short in {BLOB_NAME} ({max(size - position, 0)} of {n} bytes)"
    data = os.pread(fd, n, position)
    if len(data) != n:
        return f"external record's payload cut short in {BLOB_NAME} ({len(data)} of {n} bytes)"
    return data
