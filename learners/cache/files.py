"""The cache directory's names and small files, each written atomically and checksummed.

Every small-file write is atomic: write a temp file, fsync it, rename it over the target, fsync
the directory. A reader sees the old file or the new one, never a mix; a damaged one fails its
CRC-32C and is treated as missing.
"""

from __future__ import annotations

import fcntl
import json
import os
import struct
import time
from pathlib import Path
from typing import Any

import msgpack
from crc32c import crc32c

from learners.cache.errors import CacheFormatError
from learners.cache.format import FORMAT_VERSION

META_NAME = "CACHE"
META_MAGIC = "rill-replay-cache"
LOCK_NAME = "LOCK"
CONSUMERS_DIR = "consumers"
SEGMENT_SUFFIX = ".lmdb"
NEW_SUFFIX = ".new"  # a segment being created; removed on open if a crash left it
DELETING_SUFFIX = ".deleting"  # a segment being removed by retention
DATA_NAME = "data.mdb"
SEGMENT_MARKER = "SEGMENT"  # format version and base, written when the segment is created
SEALED_MARKER = "SEALED"  # end, seal time, size and CRC-32C of data.mdb once sealed
CLOSED_MARKER = "CLOSED"  # size and CRC-32C of data.mdb at the last clean close (active only)
_CRC = struct.Struct("<I")


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def with_crc(payload: bytes) -> bytes:
    return payload + _CRC.pack(crc32c(payload))


def strip_crc(data: bytes) -> bytes | None:
    """The payload of a ``with_crc`` blob, or None when the checksum does not match."""
    if len(data) < _CRC.size:
        return None
    payload, (crc,) = data[: -_CRC.size], _CRC.unpack(data[-_CRC.size :])
    return payload if crc32c(payload) == crc else None


def segment_name(base: int) -> str:
    return f"{base:020d}{SEGMENT_SUFFIX}"


def parse_segment_name(name: str) -> int | None:
    """The base offset encoded in a segment directory name, or None if it is not one."""
    stem = name[: -len(SEGMENT_SUFFIX)]
    if name.endswith(SEGMENT_SUFFIX) and len(stem) == 20 and stem.isdigit():
        return int(stem)
    return None


def write_marker(path: Path, doc: dict[str, Any]) -> None:
    atomic_write(path, with_crc(msgpack.packb(doc, use_bin_type=True)))


def read_marker(path: Path) -> dict[str, Any] | None:
    """The document in a marker file, or None if it is missing or damaged."""
    try:
        payload = strip_crc(path.read_bytes())
        if payload is None:
            return None
        doc = msgpack.unpackb(payload, raw=False, strict_map_key=True)
    except (OSError, ValueError, msgpack.UnpackException):
        return None
    return doc if isinstance(doc, dict) else None


def file_digest(path: Path, chunk: int = 1 << 20) -> tuple[int, int]:
    """``(size, CRC-32C)`` of a file, read in chunks."""
    crc = 0
    size = 0
    with open(path, "rb", buffering=0) as f:
        buffer = bytearray(chunk)
        view = memoryview(buffer)
        while True:
            n = f.readinto(buffer)
            if not n:
                return size, crc
            crc = crc32c(view[:n], crc)
            size += n


def write_meta(directory: Path) -> None:
    meta = {
        "magic": META_MAGIC,
        "format_version": FORMAT_VERSION,
        "storage": "lmdb",
        "created_at": time.time(),
    }
    atomic_write(directory / META_NAME, json.dumps(meta).encode() + b"\n")


def check_meta(directory: Path) -> None:
    """Raise :class:`CacheFormatError` unless ``directory`` holds a cache this rill can read."""
    path = directory / META_NAME
    if not directory.is_dir():
        raise CacheFormatError(f"{directory}: not a directory")
    if not path.exists():
        raise CacheFormatError(f"{directory}: not a rill replay cache (no {META_NAME} file)")
    try:
        meta = json.loads(path.read_bytes())
        magic, version = meta["magic"], meta["format_version"]
    except (ValueError, KeyError, TypeError) as exc:
        raise CacheFormatError(f"{path}: unreadable cache metadata ({exc})") from exc
    if magic != META_MAGIC:
        raise CacheFormatError(f"{path}: not a rill replay cache (magic {magic!r})")
    if type(version) is not int or version > FORMAT_VERSION:
        raise CacheFormatError(
            f"{path}: cache format version {version!r} is newer than this rill supports "
            f"({FORMAT_VERSION}); upgrade rill to open it"
        )
    if version < FORMAT_VERSION:
        raise CacheFormatError(
            f"{path}: cache format version {version} (the hand-written segment log) is no longer "
            f"read by this rill (format {FORMAT_VERSION}, LMDB segments); export it with the rill "
            "that wrote it (`rill cache export`)"
        )


def writer_alive(directory: Path) -> bool:
    """True while some process holds the cache at ``directory`` open for writing (its LOCK)."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the shared lock
    return False


def boot_id() -> str | None:
    """This boot of the machine (Linux), or None where the kernel does not say."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip() or None
    except OSError:
        return None


def crashed_writer(directory: Path) -> tuple[int, str] | None:
    """``(pid, boot id)`` of a writer that held the cache and never closed it, from its LOCK file
    (a clean close empties it); None if there is none or it cannot be told."""
    try:
        words = (directory / LOCK_NAME).read_text().split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(words) != 2 or not words[0].isdigit():
        return None
    return int(words[0]), words[1]
