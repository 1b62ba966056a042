"""The actor's local spool: a replay cache holding every transition until the learner has it."""

from __future__ import annotations

from pathlib import Path

from learners.cache import CacheConfig, ReplayCache
from learners.cache.records import record_head


def open_spool(path: Path, actor_id: str, durability: str) -> tuple[ReplayCache, list[tuple[int, int]], int]:
    """Open (or create) the spool; return it, the ``(seq, offset)`` records still to send, and the
    highest sequence number it holds (0 if none), from which the next transition continues."""
    spool = ReplayCache(path, CacheConfig(durability=durability, segment_bytes=16 * 1024 * 1024))
    pending: list[tuple[int, int]] = []
    last_seq = 0
    acked = spool.consumer("acked")
    for offset, payload in spool.iter_records(acked.committed, raw=True):
        owner, seq, _, _ = record_head(payload)
        if owner != actor_id:
            raise ValueError(f"spool {path} belongs to actor {owner!r}, not {actor_id!r}")
        pending.append((seq, offset))
        last_seq = max(last_seq, seq)
    if not pending:
        last = spool.stats().durable_offset - 1
        if last >= 0:
            try:
                last_seq = record_head(spool.read_raw(last))[1]
            except Exception:  # the last record is unreadable: fall back to the consumer's view
                last_seq = 0
    return spool, pending, last_seq
