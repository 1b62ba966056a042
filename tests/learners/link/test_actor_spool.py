"""A reopened spool knows its last sequence number, whether or not everything was acknowledged."""

from __future__ import annotations

import numpy as np
import pytest

from learners.cache.batch import encode_batch
from learners.cache.format import KIND_BATCH, KIND_TRANSITION
from learners.cache.records import encode_transition
from learners.link.spool import open_spool, trim_spool
from learners.transition import Transition


def _append(spool, seqs, actor="a", kind=KIND_BATCH):
    """One record per transition: a batch of one, or (``KIND_TRANSITION``) the per-transition
    record of protocol version 1."""
    offsets = []
    for seq in seqs:
        t = Transition(
            np.zeros(3, np.float32),
            np.zeros(1, np.float32),
            0.0,
            np.zeros(3, np.float32),
            False,
            False,
            actor_id=actor,
            seq=seq,
        )
        payload = encode_batch([t]) if kind == KIND_BATCH else encode_transition(t)
        offsets.append(spool.log.append(payload, kind))
    spool.flush()
    return offsets


@pytest.mark.parametrize("acked_upto", [0, 3, 5])
def test_last_seq_survives_reopening(tmp_path, acked_upto):
    spool, pending, last = open_spool(tmp_path / "spool", "a", "fsync")
    assert (pending, last) == ([], 0)
    offsets = _append(spool, range(1, 6))
    if acked_upto:
        spool.consumer("acked").commit(offsets[acked_upto - 1])
    spool.close()
    spool, pending, last = open_spool(tmp_path / "spool", "a", "fsync")
    assert last == 5
    assert [(first, last) for first, last, _ in pending] == [(s, s) for s in range(acked_upto + 1, 6)]
    spool.close()


def test_pending_batches_carry_their_sequence_ranges(tmp_path):
    spool, _, _ = open_spool(tmp_path / "spool", "a", "fsync")
    rows = [Transition(np.zeros(3, np.float32), np.zeros(1, np.float32), 0.0, np.zeros(3, np.float32),
                       False, False, actor_id="a", seq=seq) for seq in range(1, 11)]
    spool.log.append(encode_batch(rows[:4]), KIND_BATCH)
    spool.log.append(encode_batch(rows[4:]), KIND_BATCH)
    _append(spool, [11], kind=KIND_TRANSITION)  # a record spooled by a protocol-1 actor
    spool.close()
    spool, pending, last = open_spool(tmp_path / "spool", "a", "fsync")
    assert last == 11 and [(f, t) for f, t, _ in pending] == [(1, 4), (5, 10), (11, 11)]
    spool.close()


def test_a_spool_of_another_actor_is_refused(tmp_path):
    spool, _, _ = open_spool(tmp_path / "spool", "a", "fsync")
    _append(spool, [1])
    spool.close()
    with pytest.raises(ValueError, match="belongs to actor 'a'"):
        open_spool(tmp_path / "spool", "b", "fsync")


def test_trimming_drops_only_acknowledged_segments_and_keeps_the_last_sequence_number(tmp_path):
    small = {"keep_bytes": 256 * 1024, "segment_bytes": 64 * 1024}
    spool, _, _ = open_spool(tmp_path / "spool", "a", "fsync", **small)
    offsets = _append(spool, range(1, 6001))
    segments_before = len(spool.log.segments())
    assert segments_before > 8, segments_before
    spool.consumer("acked").commit(offsets[3999])  # seq 1..4000 acknowledged
    trimmed = trim_spool(spool)
    assert trimmed.deleted and trimmed.blocked_by == "acked"  # stopped at the last acked record
    first_kept = spool.log.segments()[0].base
    assert 0 < first_kept <= offsets[3999]  # the last acknowledged record is still there
    assert [first for first, _ in open_spool_pending(spool)] == list(range(4001, 6001))
    spool.close()

    # Everything acknowledged, then trimmed: a reopened spool still continues after seq 6000.
    spool, pending, last = open_spool(tmp_path / "spool", "a", "fsync", **small)
    spool.consumer("acked").commit(offsets[-1])
    trim_spool(spool)
    spool.close()
    spool, pending, last = open_spool(tmp_path / "spool", "a", "fsync", **small)
    assert (pending, last) == ([], 6000)
    assert len(spool.log.segments()) < segments_before
    spool.close()


def test_keep_bytes_none_keeps_everything(tmp_path):
    spool, _, _ = open_spool(tmp_path / "spool", "a", "fsync", keep_bytes=None, segment_bytes=64 * 1024)
    offsets = _append(spool, range(1, 3001))
    spool.consumer("acked").commit(offsets[-1])
    assert not trim_spool(spool).deleted and spool.log.segments()[0].base == 0
    spool.close()


def open_spool_pending(spool) -> list[tuple[int, int]]:
    """``(first_seq, offset)`` of the records a link would still send: those past the
    acknowledged position."""
    start = spool.consumer("acked").committed
    return [(spool.read_span(o)[1], o) for o in spool.log.offsets(start)]
