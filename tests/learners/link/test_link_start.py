"""An actor's link runs one thread: starting it again while it runs changes nothing, and a stopped
link is not started again (its spool and session would be shared by two threads)."""

from __future__ import annotations

import threading

import pytest

from learners.link.client import ActorLink
from learners.link.spool import ActorSpool
from tests.ports import free_port


def _link_threads(actor_id: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"link-{actor_id}"]


def test_a_second_start_keeps_one_link_thread_and_a_stopped_link_stays_stopped(tmp_path):
    spool = ActorSpool(tmp_path / "spool", "twice", "os-buffered")
    link = ActorLink(f"tcp://127.0.0.1:{free_port()}", "twice", {"obs_dim": 3, "action_dim": 1}, spool,
                     weight_shapes={})
    try:
        assert link.start() is link and link.start() is link
        assert len(_link_threads("twice")) == 1
    finally:
        link.stop()
        spool.close()
    assert not _link_threads("twice")
    with pytest.raises(RuntimeError, match="actor twice: this link was stopped; a new ActorLink is needed"):
        link.start()
