"""The persistent, crash-safe replay cache (docs/design.md, "Contracts"; docs/cache.md)."""

from __future__ import annotations

from learners.cache.cache import CacheStats, Episode, ReplayCache
from learners.cache.config import CacheConfig
from learners.cache.consumer import Consumer
from learners.cache.errors import (
    CacheClosedError,
    CacheCorruptError,
    CacheError,
    CacheFormatError,
    CacheFullError,
    CacheLockedError,
    NoSuchRecordError,
    RecordDecodeError,
    RecordTooLargeError,
    SchemaVersionError,
)
from learners.cache.records import SCHEMA_VERSION
from learners.cache.retention import RetentionResult

__all__ = [
    "SCHEMA_VERSION",
    "CacheClosedError",
    "CacheConfig",
    "CacheCorruptError",
    "CacheError",
    "CacheFormatError",
    "CacheFullError",
    "CacheLockedError",
    "CacheStats",
    "Consumer",
    "Episode",
    "NoSuchRecordError",
    "RecordDecodeError",
    "RecordTooLargeError",
    "ReplayCache",
    "RetentionResult",
    "SchemaVersionError",
]
