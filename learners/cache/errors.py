"""The replay cache's exceptions: each names the file, segment or offset and the problem."""

from __future__ import annotations


class CacheError(Exception):
    """Base of every replay-cache error."""


class CacheFormatError(CacheError):
    """The directory is not a rill cache, or it was written by a newer format version."""


class CacheCorruptError(CacheError):
    """A record or file failed its checksum or structure check."""


class CacheLockedError(CacheError):
    """Another process holds the cache open for writing."""


class CacheClosedError(CacheError):
    """The cache was used after ``close()``, or a write was attempted on a read-only cache."""


class CacheFullError(CacheError):
    """The OS refused a write (ENOSPC, EFBIG, EDQUOT...); accepted records are kept and retried."""

    def __init__(self, message: str, *, path: str, errno: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.errno = errno


class RecordTooLargeError(CacheError):
    """A record over ``CacheConfig.max_record_bytes``; raised before anything is written."""


class RecordDecodeError(CacheError):
    """A stored record's payload is not a well-formed transition."""


class SchemaVersionError(RecordDecodeError):
    """A record written by a newer schema than this rill understands."""


class NoSuchRecordError(CacheError, LookupError):
    """No record starts at this offset (never written, removed by retention, not yet durable)."""
