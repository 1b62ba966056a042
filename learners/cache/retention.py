"""Retention: drop the oldest sealed segments past a size or age limit, never unconsumed data.

A segment is one LMDB environment, so deleting it returns its disk space at once (a single LMDB
file never shrinks).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from learners.cache.config import CacheConfig
from learners.cache.log import SegmentedLog
from learners.cache.segment import Segment

log = logging.getLogger(__name__)


@dataclass
class RetentionResult:
    """What one retention pass did: the segments it deleted, and what stopped it, if anything."""

    deleted: list[str] = field(default_factory=list)
    freed_bytes: int = 0
    blocked_by: str | None = None  # the consumer that has not passed the next expired segment


def expired(segment: Segment, total_bytes: int, config: CacheConfig, now: float) -> bool:
    over_size = config.retention_bytes is not None and total_bytes > config.retention_bytes
    too_old = (
        config.retention_age_s is not None and now - segment.sealed_at > config.retention_age_s
    )
    return over_size or too_old


def apply_retention(
    log_: SegmentedLog, config: CacheConfig, consumers: dict[str, int], *, force: bool = False
) -> RetentionResult:
    """Delete expired sealed segments, oldest first. Stops at the first one that a registered
    consumer (``name -> committed position``) has not passed, unless ``force``. The active
    segment is never deleted, so the log stays one contiguous run of offsets."""
    result = RetentionResult()
    segments = log_.segments()
    sizes = {s.base: s.size() for s in segments}
    total = sum(sizes.values())
    now = time.time()
    for segment in segments[:-1]:
        if not segment.sealed or not expired(segment, total, config, now):
            break
        last = segment.end - 1  # its last offset (lost or not: a consumer must have passed it)
        behind = sorted(name for name, pos in consumers.items() if pos <= last)
        if behind and not force:
            result.blocked_by = behind[0]
            log.info(
                "retention keeps segment %s: consumer %r has not passed it", segment.name, behind[0]
            )
            break
        if behind:
            log.warning(
                "retention forced: deleting segment %s before consumer(s) %s read it",
                segment.name,
                ", ".join(behind),
            )
        log_.delete_segment(segment)
        total -= sizes[segment.base]
        result.deleted.append(segment.name)
        result.freed_bytes += sizes[segment.base]
    return result
