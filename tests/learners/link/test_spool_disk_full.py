"""An actor's spool on a full disk (a robot's small flash): the stream never raises or waits, it
drops new transitions before they get a sequence number and counts them; what it had numbered is
kept (held in memory, then spooled), so the numbers stay consecutive; acknowledged segments are
trimmed early to make room; spooling resumes by itself once a write succeeds.

The disk is a real 16 MiB tmpfs mounted on the spool (an injected ENOSPC where mounting is
refused: ``tests/learners/service/small_disk.py``; the test prints which)."""

from __future__ import annotations

import itertools
import logging
import time

import numpy as np
import pytest

from learners.link.spool import ActorSpool
from learners.link.stream import TransitionStream
from learners.transition import Transition
from tests.learners.service.small_disk import small_disks

OBS = 512  # float32 values per observation: a transition of about 4 KB
SPEC = {"obs_dim": OBS, "action_dim": 1, "n_actions": None, "algo": "stream-ac"}


def _t() -> Transition:
    return Transition(np.ones(OBS, np.float32), np.zeros(1, np.float32), 0.0, np.ones(OBS, np.float32),
                      False, False, actor_id="a")


@pytest.fixture
def small_disk(monkeypatch):
    yield from small_disks(monkeypatch, "the actor's spool")


def _settles(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)
    return predicate()


def test_a_full_spool_drops_unnumbered_trims_acknowledged_history_and_resumes(tmp_path, small_disk, caplog):
    caplog.set_level(logging.WARNING)
    disk = small_disk(tmp_path / "actor" / "spool")
    # The link is never started: the test acknowledges by hand and tends the spool itself.
    stream = TransitionStream(tmp_path / "actor", "a", "tcp://127.0.0.1:9", SPEC, {}, spool_keep_bytes=None,
                              spool_segment_bytes=1 << 20)
    spool = stream.spool
    try:
        # 6 MB of acknowledged history in 1 MiB segments: kept (keep_bytes=None), until room is needed.
        for _ in range(15):
            assert all(stream.offer(_t()) for _ in range(100))
            stream.flush()
            spool.flush()
            spool.acked(stream.seq)
        spool.commit_acked()
        acked, segments = stream.seq, spool.cache.stats().segments
        assert acked == 1500 and segments >= 5, segments

        disk.fill()
        refused_at = None
        deadline = time.monotonic() + 30
        while refused_at is None and time.monotonic() < deadline:
            for _ in range(20):
                if not stream.offer(_t()):
                    refused_at = stream.seq
                    break
            stream.flush()  # (a batch per round: the spool's writer meets the full disk soon)
            time.sleep(0.005)
        assert refused_at is not None, "the spool never noticed the full disk"
        assert not any(stream.offer(_t()) for _ in range(50))
        # Nothing new was numbered, and everything numbered is kept (spooled, or held in memory).
        assert stream.seq == refused_at and stream.dropped_disk_full == 51
        assert spool.backlog == refused_at - acked and stream.spool_error is not None
        assert "errno 28" in stream.spool_error

        spool.tend()  # (the link's thread does this twice a second)
        assert spool.trimmed_for_room >= segments - 3, (spool.trimmed_for_room, segments)
        assert spool.cache.stats().segments < segments
        message = next(r.getMessage() for r in caplog.records if "cannot write" in r.getMessage())
        assert str(spool.path) in message and "(ENOSPC)" in message and "dropped_disk_full=51" in message
        if disk.mounted:  # the room trimmed is enough: no one has to free the disk
            print("spooling resumed in the room the trimmed segments left")
        else:
            print("an injected ENOSPC outlasts any trimming: the disk is freed")
            disk.free()
        assert _settles(stream.batcher.accepting, timeout=10), stream.spool_error
        assert all(stream.offer(_t()) for _ in range(100))
        assert stream.seq == refused_at + 100
        stream.flush()
        spool.flush()
        spool.tend()
        assert "spooling resumed. 51 transitions were dropped meanwhile" in caplog.text

        # Every number handed out is on the spool, in order, once: the learner would see no gap.
        pending = spool.pending()
        assert pending[0][0] == acked + 1 and pending[-1][1] == stream.seq
        assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(pending)), pending
    finally:
        stream.close()
    reopened = ActorSpool(tmp_path / "actor" / "spool", "a", "fsync", keep_bytes=None)
    try:
        assert reopened.last_seq == refused_at + 100 and reopened.next_seq() == refused_at + 101
    finally:
        reopened.close()
