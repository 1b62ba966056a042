"""The writer a power-loss test records (run under the ``writelog`` shim, see test_cache_powerloss.py).

``python workload.py cache DIR ACKS SEED GROUPS DURABILITY``: appends records to a ``ReplayCache``
at ``DIR`` in groups (DURABILITY is "fsync" unless a test shows the checker failing; 64 KiB
segments, so that it rolls, seals and creates segments), acknowledges records the way the learner
does (``wait_durable``, or ``durable_offset`` as the server's ack loop reads it), commits a
consumer now and then, and closes and reopens the cache once. Every acknowledgement is a line
written to ``ACKS`` *after* the cache said durable, so in the shim's log it follows every write
and sync it depended on:

    A <offset>    every record at or below <offset> was acknowledged
    C <position>  consumer "learner" committed <position> (commit() returned)

``python workload.py spool DIR ACKS SEED GROUPS fsync``: the same for an actor's ``ActorSpool``:

    S <first> <last> <offset>   the batch was offered to the link (take_unsent: durable)
    K <position>                the "acked" consumer's commit (commit_acked) returned

Record ``i`` is ``payload(SEED, i)``, so a checker knows every record's bytes from its offset.
"""

from __future__ import annotations

import os
import random
import sys
import time
from pathlib import Path

import numpy as np

SEGMENT_BYTES = 64 * 1024
ACTOR = "actor-1"
ACKED = "acked"  # the spool's consumer (learners.link.spool.ACKED)


def payload(seed: int, offset: int) -> bytes:
    """Record ``offset`` of writer ``seed``: mostly small (several to a page), now and then a few
    pages long (LMDB overflow pages, written as one multi-sector run)."""
    rng = random.Random(seed * 1_000_003 + offset)
    n = rng.randint(3000, 9000) if rng.random() < 0.1 else rng.randint(20, 1500)
    return f"{seed}:{offset}|".encode() + rng.randbytes(n)


def transitions(actor_id: str, first_seq: int, count: int, seed: int):
    from learners.transition import Transition

    rng = np.random.default_rng(seed * 7919 + first_seq)
    return [
        Transition(
            obs=rng.standard_normal(8).astype(np.float32),
            action=int(rng.integers(4)),
            reward=float(rng.standard_normal()),
            next_obs=rng.standard_normal(8).astype(np.float32),
            terminated=False,
            truncated=False,
            actor_id=actor_id,
            seq=first_seq + i,
        )
        for i in range(count)
    ]


def run_cache(directory: Path, acks: int, seed: int, groups: int, durability: str) -> None:
    from learners.cache import CacheConfig, ReplayCache

    # external_bytes: the few-pages records go to the segments' blob files (direct I/O).
    config = CacheConfig(segment_bytes=SEGMENT_BYTES, commit_interval_ms=1.0, durability=durability,
                         external_bytes=3000)
    rng = random.Random(seed)
    cache = ReplayCache(directory, config)
    learner = cache.consumer("learner")
    next_offset = 0
    acked = -1
    for group in range(groups):
        if group == groups // 2:  # a clean close and reopen half way: CLOSED marker, LOCK emptied
            cache.close()
            cache = ReplayCache(directory, config)
            learner = cache.consumer("learner")
        n = rng.randint(1, 12)
        records = [payload(seed, next_offset + i) for i in range(n)]
        if rng.random() < 0.5:
            offsets = cache.append_many(records)
        else:
            offsets = [cache.append(r) for r in records]
        assert offsets == list(range(next_offset, next_offset + n)), (offsets, next_offset)
        next_offset += n
        how = rng.random()
        if how < 0.5:  # as an appender that waits for its own record
            assert cache.wait_durable(offsets[-1], timeout=30)
            newly = offsets[-1]
        elif how < 0.8:  # as the learner's server: whatever durable_offset says, without waiting
            newly = cache.durable_offset - 1
        else:  # as the server once the group commit caught up
            deadline = time.monotonic() + 30
            while cache.durable_offset <= offsets[-1]:
                assert time.monotonic() < deadline
                time.sleep(0.0002)
            newly = cache.durable_offset - 1
        if newly > acked:
            acked = newly
            os.write(acks, f"A {acked}\n".encode())
        if acked >= 0 and rng.random() < 0.08:
            learner.commit(rng.randint(max(learner.committed - 1, 0), acked))
            os.write(acks, f"C {learner.committed}\n".encode())
    cache.close()


def run_spool(directory: Path, acks: int, seed: int, groups: int, durability: str) -> None:
    from learners.link.spool import ACKED as SPOOL_ACKED
    from learners.link.spool import ActorSpool

    assert SPOOL_ACKED == ACKED
    rng = random.Random(seed)
    spool = ActorSpool(directory, ACTOR, durability, keep_bytes=None, segment_bytes=SEGMENT_BYTES)
    offered: list[tuple[int, int]] = []
    for _group in range(groups):
        count = rng.randint(1, 40)
        first = spool.next_seq()
        for _ in range(count - 1):
            spool.next_seq()
        spool.append(transitions(ACTOR, first, count, seed))
        deadline = time.monotonic() + 30
        while True:  # the link's side: offered once durable
            taken = spool.take_unsent(window=10_000)
            if taken is not None:
                first_seq, last_seq = taken.first_seq, taken.last_seq
                offset = next(o for f, _l, o in spool.pending() if f == first_seq)
                os.write(acks, f"S {first_seq} {last_seq} {offset}\n".encode())
                offered.append((last_seq, offset))
                continue
            if spool.unsent_count == 0 or time.monotonic() > deadline or rng.random() < 0.3:
                break
            time.sleep(0.0002)
        if offered and rng.random() < 0.2:  # the learner acknowledged some of what was offered
            last_seq, _offset = offered[rng.randrange(len(offered))]
            spool.acked(last_seq)
            spool.commit_acked()
            if spool.acked_offset >= 0:  # committed now, or by an earlier call
                os.write(acks, f"K {spool.acked_offset + 1}\n".encode())
    spool.close()


def main() -> None:
    mode, directory, ack_path, seed, groups, durability = sys.argv[1:7]
    acks = os.open(ack_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    run = run_cache if mode == "cache" else run_spool
    run(Path(directory), acks, int(seed), int(groups), durability)
    os.close(acks)


if __name__ == "__main__":
    main()
