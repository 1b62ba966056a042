"""The actor's spool: a reopened spool knows its last sequence number, whether or not everything
was acknowledged; it never hands one out twice; it offers the link durable records in order, and
forgets and trims only what the learner acknowledged."""

from __future__ import annotations

import numpy as np
import pytest

from learners.cache.batch import decode_batch
from learners.cache.format import KIND_BATCH, KIND_TRANSITION
from learners.link.spool import ActorSpool
from learners.transition import Transition


def _t(seq: int, actor: str = "a") -> Transition:
    return Transition(np.zeros(3, np.float32), np.zeros(1, np.float32), 0.0, np.zeros(3, np.float32), False,
                      False, actor_id=actor, seq=seq)


def _append(spool: ActorSpool, seqs, actor="a", kind=KIND_BATCH) -> list[int]:
    """One record per transition: a batch of one, or (``KIND_TRANSITION``) the per-transition
    record of protocol version 1 (written straight to the cache, as such an actor did)."""
    offsets = []
    for seq in seqs:
        t = _t(seq, actor)
        offsets.append(spool.append([t]) if kind == KIND_BATCH else spool.cache.append(t))
    spool.flush()
    return offsets


@pytest.mark.parametrize("acked_upto", [0, 3, 5])
def test_last_seq_survives_reopening(tmp_path, acked_upto):
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    assert (spool.pending(), spool.last_seq) == ([], 0)
    _append(spool, range(1, 6))
    if acked_upto:
        spool.acked(acked_upto)
        spool.commit_acked()
    spool.close()
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    assert spool.last_seq == 5 and spool.next_seq() == 6
    assert [(first, last) for first, last, _ in spool.pending()] == [(s, s) for s in range(acked_upto + 1, 6)]
    spool.close()


def test_pending_batches_carry_their_sequence_ranges(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    rows = [_t(seq) for seq in range(1, 11)]
    spool.append(rows[:4])
    spool.append(rows[4:])
    _append(spool, [11], kind=KIND_TRANSITION)  # a record spooled by a protocol-1 actor
    spool.close()
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    assert spool.last_seq == 11 and [(f, t) for f, t, _ in spool.pending()] == [(1, 4), (5, 10), (11, 11)]
    taken = [spool.take_unsent(window=1000) for _ in range(3)]
    assert [(first, last, len(decode_batch(frame, max_size=1 << 20))) for first, last, frame, _ in taken] == [
        (1, 4, 4), (5, 10, 6), (11, 11, 1)]  # the protocol-1 record goes out as a batch of one
    spool.close()


def test_a_spool_of_another_actor_is_refused(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    _append(spool, [1])
    spool.close()
    with pytest.raises(ValueError, match="belongs to actor 'a'"):
        ActorSpool(tmp_path / "spool", "b", "fsync")


def test_sequence_numbers_are_never_handed_out_twice(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    _append(spool, range(1, 6))
    assert spool.next_seq() == 6
    spool.raise_floor(100)  # e.g. a floor saved with the actor's state
    spool.raise_floor(50)
    assert spool.next_seq() == 101 and spool.last_seq == 100
    spool.learner_holds(500)  # the learner holds more of us than this spool did (a lost spool)
    assert spool.next_seq() == 501 and spool.acked_seq == 500 and spool.pending() == []
    spool.close()


def test_the_link_gets_durable_records_in_order_within_its_window(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    for first in (1, 5, 9):
        spool.append([_t(s) for s in range(first, first + 4)])
    spool.flush()
    assert spool.backlog == 12 and spool.unsent_count == 3
    assert spool.take_unsent(window=6)[:2] == (1, 4)
    assert spool.take_unsent(window=6)[:2] == (5, 8)
    assert spool.take_unsent(window=6) is None  # 8 transitions in flight: the window is full
    spool.put_back()  # (5, 8) could not be sent
    assert spool.take_unsent(window=6)[:2] == (5, 8)
    spool.acked(4)
    assert spool.backlog == 8 and spool.acked_seq == 4
    spool.resend_unacked()  # the connection was lost: (5, 8) is unsent again, before (9, 12)
    assert [(f, t) for f, t, _ in spool.pending()] == [(5, 8), (9, 12)] and spool.unsent_count == 2
    spool.acked(12)
    assert spool.backlog == 0 and spool.take_unsent(window=6) is None
    spool.close()


def test_trimming_drops_only_acknowledged_segments_and_keeps_the_last_sequence_number(tmp_path):
    small = {"keep_bytes": 256 * 1024, "segment_bytes": 64 * 1024}
    spool = ActorSpool(tmp_path / "spool", "a", "fsync", **small)
    offsets = _append(spool, range(1, 6001))
    segments_before = spool.cache.stats().segments
    assert segments_before > 8, segments_before
    spool.acked(4000)  # seq 1..4000 acknowledged
    trimmed = spool.commit_acked()  # the first commit trims at once (later ones every TRIM_EVERY_S)
    assert trimmed.deleted and trimmed.blocked_by == "acked"  # stopped at the last acked record
    first_kept = spool.cache.stats().first_offset
    assert 0 < first_kept <= offsets[3999]  # the last acknowledged record is still there
    assert [first for first, _ in open_spool_pending(spool)] == list(range(4001, 6001))
    spool.close()

    # Everything acknowledged, then trimmed: a reopened spool still continues after seq 6000.
    spool = ActorSpool(tmp_path / "spool", "a", "fsync", **small)
    spool.acked(6000)
    spool.commit_acked()
    spool.close()
    spool = ActorSpool(tmp_path / "spool", "a", "fsync", **small)
    assert (spool.pending(), spool.last_seq) == ([], 6000)
    assert spool.cache.stats().segments < segments_before
    spool.close()


def test_keep_bytes_none_keeps_everything(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "fsync", keep_bytes=None, segment_bytes=64 * 1024)
    _append(spool, range(1, 3001))
    spool.acked(3000)
    assert spool.commit_acked() is None  # committed, and no bound to trim to
    assert not spool.trim().deleted and spool.cache.stats().first_offset == 0
    spool.close()


def open_spool_pending(spool: ActorSpool) -> list[tuple[int, int]]:
    """``(first_seq, offset)`` of the records on disk that a link would still send: those past
    the acknowledged position."""
    start = spool.cache.consumer("acked").committed
    return [(spool.cache.read_span(o)[1], o) for o in spool.cache.offsets(start)]


def test_the_durable_floor_is_what_the_disk_holds_not_what_was_handed_out(tmp_path):
    """A restart continues after the last *durable* sequence number: numbers handed out but never
    spooled (a batch still open when the process died) would otherwise leave a gap the learner
    waits on forever."""
    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    for seq in range(1, 6):
        assert spool.next_seq() == seq
    spool.append([_t(s) for s in range(1, 6)])
    spool.flush()
    assert [spool.next_seq(), spool.next_seq()] == [6, 7]  # numbered, never spooled
    assert (spool.seq, spool.durable_seq()) == (7, 5)
    spool.acked(5)
    assert spool.durable_seq() == 5
    spool.close()
    reopened = ActorSpool(tmp_path / "spool", "a", "fsync")
    reopened.raise_floor(5)  # what the actor saved with its state
    assert reopened.durable_seq() == 5 and reopened.next_seq() == 6
    reopened.close()


def _image_rows(first: int, n: int) -> list[Transition]:
    rng = np.random.default_rng(first)
    return [Transition(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), np.zeros(1, np.float32), float(s),
                       rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), False, False, actor_id="a", seq=s)
            for s in range(first, first + n)]


def test_unsent_records_past_memory_bytes_wait_on_disk_and_go_out_unchanged(tmp_path):
    """An actor whose link is down keeps spooling: its memory holds at most ``memory_bytes`` of
    unsent records, the rest are read back from disk, byte for byte, when their turn comes."""
    from learners.cache.batch import encode_batch

    batches = [_image_rows(first, 4) for first in range(1, 41, 4)]  # 10 records of ~24.6 kB
    size = len(encode_batch(batches[0]))
    spool = ActorSpool(tmp_path / "spool", "a", "fsync", memory_bytes=3 * size)
    for rows in batches:
        spool.append(rows)
        assert spool.held_bytes <= 3 * size
    spool.flush()
    assert spool.held_bytes == 3 * size  # the first three; seven wait on disk
    taken = [spool.take_unsent(window=1000) for _ in batches]
    assert spool.held_bytes == 0 and spool.take_unsent(window=1000) is None
    assert [out.payload for out in taken] == [encode_batch(rows) for rows in batches]
    spool.resend_unacked()  # the connection was lost: every record is read back from disk
    again = [spool.take_unsent(window=1000) for _ in batches]
    assert [out.payload for out in again] == [out.payload for out in taken]
    spool.put_back(again[-1][2])  # the last could not be sent: its bytes are held again
    assert spool.held_bytes == size and spool.take_unsent(window=1000)[2] == again[-1][2]
    spool.acked(40)
    assert spool.backlog == 0 and spool.held_bytes == 0
    spool.close()
    with pytest.raises(ValueError, match="memory_bytes"):
        ActorSpool(tmp_path / "other", "a", "fsync", memory_bytes=-1)


def test_window_bytes_bounds_what_is_in_flight_but_one_record_always_goes(tmp_path):
    from learners.cache.batch import encode_batch

    spool = ActorSpool(tmp_path / "spool", "a", "fsync")
    batches = [_image_rows(first, 4) for first in range(1, 17, 4)]
    size = len(encode_batch(batches[0]))
    for rows in batches:
        spool.append(rows)
    spool.flush()
    assert spool.take_unsent(window=1000, window_bytes=size // 2)[:2] == (1, 4)  # one always goes
    assert spool.take_unsent(window=1000, window_bytes=size // 2) is None
    assert spool.take_unsent(window=1000, window_bytes=2 * size)[:2] == (5, 8)
    assert spool.take_unsent(window=1000, window_bytes=2 * size) is None  # two records' bytes in flight
    spool.acked(4)
    assert spool.take_unsent(window=1000, window_bytes=2 * size)[:2] == (9, 12)
    spool.close()
