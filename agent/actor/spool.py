"""The actor's local spool: a replay cache holding every transition until the learner has it."""

from __future__ import annotations

from pathlib import Path

from learners.cache import CacheConfig, ReplayCache
from learners.cache.records import record_head


def open_spool(path: Path, actor_id: str, durability: str) -> tuple[ReplayCache, list[tuple[int, int]], int]:
    """Open (or create) the spool; return it, the ``(seq, offset)`` records still to send, and the
    highest sequence number it holds (0 if none), after which the next transition continues.

    The scan starts at the last acknowledged record (the ``acked`` consumer committed just past
    it), so the highest sequence number is known even when everything was acknowledged.
    """
    spool = ReplayCache(path, CacheConfig(durability=durability, segment_bytes=16 * 1024 * 1024))
    acked = spool.consumer("acked")
    start = max(acked.committed - 1, 0)
    pending: list[tuple[int, int]] = []
    last_seq = 0
    for offset, payload in spool.iter_records(start, raw=True):
        owner, seq, _, _ = record_head(payload)
        if owner != actor_id:
            raise ValueError(f"spool {path} belongs to actor {owner!r}, not {actor_id!r}")
        if offset >= acked.committed:
            pending.append((seq, offset))
        last_seq = max(last_seq, seq)
    return spool, pending, last_seq
