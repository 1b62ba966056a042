"""A reopened spool knows its last sequence number, whether or not everything was acknowledged."""

from __future__ import annotations

import numpy as np
import pytest

from agent.actor.spool import open_spool
from learners.cache.format import KIND_TRANSITION
from learners.cache.records import encode_transition
from learners.transition import Transition


def _append(spool, seqs, actor="a"):
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
        offsets.append(spool.log.append(encode_transition(t), KIND_TRANSITION))
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
    assert [seq for seq, _ in pending] == list(range(acked_upto + 1, 6))
    spool.close()


def test_a_spool_of_another_actor_is_refused(tmp_path):
    spool, _, _ = open_spool(tmp_path / "spool", "a", "fsync")
    _append(spool, [1])
    spool.close()
    with pytest.raises(ValueError, match="belongs to actor 'a'"):
        open_spool(tmp_path / "spool", "b", "fsync")
