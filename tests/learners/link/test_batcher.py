"""SpoolBatcher: transitions become batch records on the spool, queued for the link, when a batch
is full, old enough, or interrupted by a jump in sequence numbers. Batches go one way, batcher →
spool; the link (not needed here) reads the spool."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from learners.cache.batch import TransitionBatch
from learners.link.batcher import SpoolBatcher
from learners.link.spool import ActorSpool
from learners.transition import Transition


def _t(seq: int, image: bool = False) -> Transition:
    obs = {"state": np.zeros(3, np.float32), "image.cam": np.zeros((96, 96, 3), np.uint8)} if image else (
        np.zeros(3, np.float32))
    return Transition(obs, np.zeros(1, np.float32), 0.0, np.zeros(3, np.float32), False, False,
                      actor_id="a", seq=seq)


@pytest.fixture
def spool(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "a", "none")
    yield spool
    spool.close()


def _queued(spool: ActorSpool) -> list[tuple[int, int]]:
    """The records the spool holds for the link to send."""
    return [(first, last) for first, last, _ in spool.pending()]


def test_full_batches_close_and_the_rest_waits(spool):
    batcher = SpoolBatcher(spool, max_rows=4, max_delay_s=60)
    for seq in range(1, 11):
        batcher.add(_t(seq))
    assert _queued(spool) == [(1, 4), (5, 8)] and batcher.open_rows == 2
    assert spool.backlog == 10 and spool.last_seq == 8  # the open rows count as not acknowledged
    batcher.close()  # closing queues the open batch
    assert _queued(spool) == [(1, 4), (5, 8), (9, 10)]
    spool.flush()
    offsets = [offset for _, _, offset in spool.pending()]
    assert [type(spool.cache.read(o)) for o in offsets] == [TransitionBatch] * 3
    assert [spool.cache.read_span(o) for o in offsets] == [("a", 1, 4), ("a", 5, 8), ("a", 9, 10)]


def test_an_old_batch_is_closed_by_the_timer(spool):
    batcher = SpoolBatcher(spool, max_rows=1000, max_delay_s=0.25)
    batcher.add(_t(1))
    batcher.flush_due()
    assert _queued(spool) == []
    deadline = time.monotonic() + 5
    while not _queued(spool) and time.monotonic() < deadline:  # no more adds: the timer closes it
        time.sleep(0.01)
    assert _queued(spool) == [(1, 1)]
    batcher.close()


def test_a_jump_in_sequence_numbers_starts_a_new_batch(spool):
    batcher = SpoolBatcher(spool, max_rows=1000, max_delay_s=60)
    for seq in (1, 2, 7, 8):
        batcher.add(_t(seq))
    batcher.flush()
    assert _queued(spool) == [(1, 2), (7, 8)]
    batcher.close()


def test_image_batches_are_bounded_in_bytes(spool):
    batcher = SpoolBatcher(spool, max_rows=1024, max_bytes=1024 * 1024, max_delay_s=60)
    for seq in range(1, 101):
        batcher.add(_t(seq, image=True))
    batcher.flush()
    sizes = [last - first + 1 for first, last in _queued(spool)]
    assert sum(sizes) == 100 and max(sizes) == 1024 * 1024 // (96 * 96 * 3 + 128 + 12)
    batcher.close()


def test_the_backlog_never_misses_a_batch_on_its_way_to_the_spool(spool):
    """Read from another thread while batches close, the backlog (open and queued rows) never
    drops: nothing is acknowledged, so a dip would be rows counted in neither place (a drain
    that stops before the last batch)."""
    batcher = SpoolBatcher(spool, max_rows=7, max_delay_s=60)
    seen: list[int] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            seen.append(spool.backlog)

    watcher = threading.Thread(target=watch)
    watcher.start()
    for seq in range(1, 5001):
        batcher.add(_t(seq))
    done.set()
    watcher.join()
    batcher.close()
    assert len(seen) > 10 and all(a <= b for a, b in itertools.pairwise(seen)), "the backlog dipped"
    assert spool.backlog == 5000


def test_bad_settings_are_named(spool):
    with pytest.raises(ValueError, match="max_rows"):
        SpoolBatcher(spool, max_rows=0)
