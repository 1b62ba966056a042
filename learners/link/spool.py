"""The actor's local spool: a replay cache holding every transition until the learner has it."""

from __future__ import annotations

import logging
from pathlib import Path

from learners.cache import CacheConfig, CacheCorruptError, ReplayCache
from learners.cache.retention import RetentionResult, apply_retention

#: Acknowledged history an actor keeps on its own disk by default (the learner holds it all).
KEEP_BYTES = 256 * 1024 * 1024
SEGMENT_BYTES = 16 * 1024 * 1024

log = logging.getLogger(__name__)


def open_spool(path: Path, actor_id: str, durability: str, *, keep_bytes: int | None = KEEP_BYTES,
               segment_bytes: int = SEGMENT_BYTES) -> tuple[ReplayCache, list[tuple[int, int, int]], int]:
    """Open (or create) the spool; return it, the ``(first_seq, last_seq, offset)`` records still
    to send, and the highest sequence number it holds (0 if none), after which the next
    transition continues.

    The scan starts at the last acknowledged record (the ``acked`` consumer committed just past
    it), so the highest sequence number is known even when everything was acknowledged.
    ``keep_bytes`` bounds the spool by dropping its oldest acknowledged segments (``trim_spool``);
    None keeps everything.
    """
    config = CacheConfig(durability=durability, segment_bytes=segment_bytes, retention_bytes=keep_bytes)
    spool = ReplayCache(path, config)
    acked = spool.consumer("acked")
    start = max(acked.committed - 1, 0)
    pending: list[tuple[int, int, int]] = []
    last_seq = 0
    for offset in spool.log.offsets(start):
        try:
            span = spool.read_span(offset)
        except CacheCorruptError as e:
            log.error("spool %s: %s; its transitions are lost", path, e)
            continue
        if span is None:
            continue
        owner, first, last = span
        if owner != actor_id:
            raise ValueError(f"spool {path} belongs to actor {owner!r}, not {actor_id!r}")
        if offset >= acked.committed:
            pending.append((first, last, offset))
        last_seq = max(last_seq, last)
    return spool, pending, last_seq


def trim_spool(spool: ReplayCache) -> RetentionResult:
    """Delete the oldest acknowledged segments past the spool's ``keep_bytes``. Never a record
    not yet acknowledged, and never the segment holding the last acknowledged one: a reopened
    spool reads its last sequence number there."""
    acked = spool.consumers().get("acked", 0)
    return apply_retention(spool.log, spool.config, {"acked": max(acked - 1, 0)})
