"""SpoolBatcher: transitions become batch records on the spool, queued for the link, when a batch
is full, old enough, or interrupted by a jump in sequence numbers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from learners.cache.format import KIND_BATCH
from learners.link.batcher import SpoolBatcher
from learners.link.client import ActorLink
from learners.link.spool import open_spool
from learners.transition import Transition

SPEC = {"obs_dim": 3, "action_dim": 1, "n_actions": None, "algo": "stream-ac"}


def _t(seq: int, image: bool = False) -> Transition:
    obs = {"state": np.zeros(3, np.float32), "image.cam": np.zeros((96, 96, 3), np.uint8)} if image else (
        np.zeros(3, np.float32))
    return Transition(obs, np.zeros(1, np.float32), 0.0, np.zeros(3, np.float32), False, False,
                      actor_id="a", seq=seq)


@pytest.fixture
def spool_and_link(tmp_path):
    spool, _, _ = open_spool(tmp_path / "spool", "a", "none")
    link = ActorLink("tcp://127.0.0.1:9", "a", SPEC, spool, weight_shapes={})  # never started
    yield spool, link
    spool.close()


def _queued(link: ActorLink) -> list[tuple[int, int]]:
    return [(first, last) for first, last, _, _ in link.unsent]


def test_full_batches_close_and_the_rest_waits(spool_and_link):
    spool, link = spool_and_link
    batcher = SpoolBatcher(spool, link, max_rows=4, max_delay_s=60)
    for seq in range(1, 11):
        batcher.add(_t(seq))
    assert _queued(link) == [(1, 4), (5, 8)] and batcher.open_rows == 2
    assert link.backlog == 10 and link.last_seq == 8  # the open rows count as not acknowledged
    link.stop(drain_s=0)  # stopping queues the open batch first
    assert _queued(link) == [(1, 4), (5, 8), (9, 10)]
    spool.flush()
    assert [spool.log.read(o)[0] for o in spool.log.offsets()] == [KIND_BATCH] * 3
    assert [spool.read_span(o) for o in spool.log.offsets()] == [("a", 1, 4), ("a", 5, 8), ("a", 9, 10)]


def test_an_old_batch_is_closed_by_the_link_thread(spool_and_link):
    spool, link = spool_and_link
    batcher = SpoolBatcher(spool, link, max_rows=1000, max_delay_s=0.05)
    batcher.add(_t(1))
    batcher.flush_due()
    assert _queued(link) == []
    time.sleep(0.06)
    batcher.flush_due()
    assert _queued(link) == [(1, 1)]


def test_a_jump_in_sequence_numbers_starts_a_new_batch(spool_and_link):
    spool, link = spool_and_link
    batcher = SpoolBatcher(spool, link, max_rows=1000, max_delay_s=60)
    for seq in (1, 2, 7, 8):
        batcher.add(_t(seq))
    batcher.flush()
    assert _queued(link) == [(1, 2), (7, 8)]


def test_image_batches_are_bounded_in_bytes(spool_and_link):
    spool, link = spool_and_link
    batcher = SpoolBatcher(spool, link, max_rows=1024, max_bytes=1024 * 1024, max_delay_s=60)
    for seq in range(1, 101):
        batcher.add(_t(seq, image=True))
    batcher.flush()
    sizes = [last - first + 1 for first, last in _queued(link)]
    assert sum(sizes) == 100 and max(sizes) == 1024 * 1024 // (96 * 96 * 3 + 128 + 12)


def test_bad_settings_are_named(spool_and_link):
    spool, link = spool_and_link
    with pytest.raises(ValueError, match="max_rows"):
        SpoolBatcher(spool, link, max_rows=0)
