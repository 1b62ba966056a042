"""Crash-safe file operations and the cache directory's small metadata files.

Every metadata write is atomic: write a temp file, fsync it, rename it over the target, fsync
the directory. A reader sees the old file or the new one, never a mix.
"""

from __future__ import annotations

import json
import os
import struct
import sys
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path

import msgpack
from crc32c import crc32c

from learners.cache.errors import CacheFormatError
from learners.cache.format import FORMAT_VERSION, Damage

META_NAME = "CACHE"
META_MAGIC = "rill-replay-cache"
LOCK_NAME = "LOCK"
CONSUMERS_DIR = "consumers"
_INDEX_MAGIC = "rill-segment-index"
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


def write_meta(directory: Path) -> None:
    meta = {"magic": META_MAGIC, "format_version": FORMAT_VERSION, "created_at": time.time()}
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


@dataclass
class SegmentIndex:
    """The persisted index of a sealed segment: where its records start, and known damage."""

    base: int
    size: int
    positions: array
    damage: list[Damage] = field(default_factory=list)
    sealed_at: float = 0.0


def write_index(path: Path, index: SegmentIndex) -> None:
    positions = array("I", index.positions)
    if sys.byteorder == "big":  # the file is little-endian everywhere
        positions.byteswap()
    doc = {
        "magic": _INDEX_MAGIC,
        "format_version": FORMAT_VERSION,
        "base": index.base,
        "size": index.size,
        "positions": positions.tobytes(),
        "damage": [[d.position, d.length, d.problem] for d in index.damage],
        "sealed_at": index.sealed_at,
    }
    atomic_write(path, with_crc(msgpack.packb(doc, use_bin_type=True)))


def read_index(path: Path, base: int, size: int) -> SegmentIndex | None:
    """The index at ``path`` if it is intact and describes a segment of ``base`` and ``size``."""
    try:
        payload = strip_crc(path.read_bytes())
        if payload is None:
            return None
        doc = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        if doc.get("magic") != _INDEX_MAGIC or doc.get("format_version") != FORMAT_VERSION:
            return None
        if doc["base"] != base or doc["size"] != size:
            return None
        positions = array("I")
        positions.frombytes(doc["positions"])
        if sys.byteorder == "big":
            positions.byteswap()
        damage = [Damage(int(p), int(n), str(why)) for p, n, why in doc["damage"]]
        return SegmentIndex(base, size, positions, damage, float(doc["sealed_at"]))
    except (OSError, ValueError, KeyError, TypeError, msgpack.UnpackException):
        return None
