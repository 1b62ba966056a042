"""``CacheConfig``: every knob of the replay cache, validated where it is built."""

from __future__ import annotations

import os
from dataclasses import dataclass

DURABILITY_MODES = ("fsync", "os-buffered", "none")
IMAGE_CODECS = ("raw", "png")
DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")  # LMDB's page size
MIN_SEGMENT_BYTES = 16 * PAGE_SIZE
SEGMENT_RESERVE = 8 * PAGE_SIZE  # an empty segment's meta, root and spare pages


@dataclass
class CacheConfig:
    """How the replay cache writes, keeps and reads records.

    ``durability`` says when a record counts as durable (what :meth:`ReplayCache.wait_durable`
    waits for): ``fsync`` once its group's LMDB transaction committed and was synced (survives
    power loss); ``os-buffered`` once the transaction committed without a sync, its pages written
    to the OS (survives a crash of this process, not of the machine; segments are synced when
    sealed and at close); ``none`` at once. A group commit happens ``commit_interval_ms`` after the
    first pending append, or as soon as ``commit_bytes`` are pending, whichever comes first.
    ``segment_bytes`` bounds each segment's files (LMDB's map is twice that), and so what one
    damaged file can take with it and what retention frees at a time. A record whose payload is
    at least ``external_bytes`` is written to its segment's blob file with direct I/O and LMDB
    holds a reference to it (``blobs.py``: far less CPU per durable byte); None keeps every
    payload inside LMDB.
    """

    segment_bytes: int = 64 * 1024 * 1024
    max_record_bytes: int | None = None  # None: 16 MiB, or what fits a segment if less
    durability: str = "fsync"
    commit_interval_ms: float = 5.0
    commit_bytes: int = 1024 * 1024
    read_cache_bytes: int = 64 * 1024 * 1024
    image_codec: str = "raw"
    png_compress_level: int = 1
    retention_bytes: int | None = None
    retention_age_s: float | None = None
    read_only: bool = False
    external_bytes: int | None = 256 * 1024

    def __post_init__(self) -> None:
        _require_int("segment_bytes", self.segment_bytes, MIN_SEGMENT_BYTES, 2**40)
        room = self.segment_bytes - SEGMENT_RESERVE
        if self.max_record_bytes is None:
            self.max_record_bytes = min(DEFAULT_MAX_RECORD_BYTES, room)
        _require_int("max_record_bytes", self.max_record_bytes, 1, None)
        if self.max_record_bytes > room:
            raise ValueError(
                f"CacheConfig.max_record_bytes={self.max_record_bytes} does not fit a segment of "
                f"segment_bytes={self.segment_bytes} (at most {room})"
            )
        if self.durability not in DURABILITY_MODES:
            raise ValueError(
                f"CacheConfig.durability={self.durability!r}: expected one of {DURABILITY_MODES}"
            )
        if not isinstance(self.commit_interval_ms, (int, float)) or not (
            0 < self.commit_interval_ms <= 60_000
        ):
            raise ValueError(
                f"CacheConfig.commit_interval_ms={self.commit_interval_ms!r}: expected (0, 60000]"
            )
        _require_int("commit_bytes", self.commit_bytes, 1, None)
        _require_int("read_cache_bytes", self.read_cache_bytes, 0, None)
        if self.external_bytes is not None:
            _require_int("external_bytes", self.external_bytes, 1, None)
        if self.image_codec not in IMAGE_CODECS:
            raise ValueError(
                f"CacheConfig.image_codec={self.image_codec!r}: expected one of {IMAGE_CODECS}"
            )
        _require_int("png_compress_level", self.png_compress_level, 0, 9)
        if self.retention_bytes is not None:
            _require_int("retention_bytes", self.retention_bytes, 0, None)
        if self.retention_age_s is not None and (
            not isinstance(self.retention_age_s, (int, float)) or self.retention_age_s < 0
        ):
            raise ValueError(
                f"CacheConfig.retention_age_s={self.retention_age_s!r}: expected a number >= 0"
            )


def _require_int(name: str, value: object, low: int, high: int | None) -> None:
    if type(value) is not int or value < low or (high is not None and value > high):
        bound = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ValueError(f"CacheConfig.{name}={value!r}: expected an integer {bound}")
