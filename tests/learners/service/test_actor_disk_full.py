"""The disk under an actor's spool fills (a robot's small flash) while it streams to a real
learner on loopback: the control loop keeps stepping, new transitions are dropped before they get
a sequence number and counted (``dropped_disk_full``, in the actor's summary and a log line naming
the spool and ENOSPC), what was numbered is kept and sent; once space returns spooling resumes by
itself, and every transition that got a number is acknowledged and applied exactly once.

The disk is a real 16 MiB tmpfs mounted on the spool (an injected ENOSPC where mounting is
refused: ``small_disk.py``; the test prints which)."""

from __future__ import annotations

import logging
import threading

import pytest

from agent.actor import ActorConfig, ActorRunner
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal
from tests.learners.service.small_disk import small_disks

STEPS = 2000


@pytest.fixture
def small_disk(monkeypatch):
    yield from small_disks(monkeypatch, "the actor's spool")


def test_a_full_spool_disk_keeps_the_loop_stepping_and_every_numbered_transition_arrives_once(
        tmp_path, small_disk, settles, caplog):
    run = tmp_path / "run"
    disk = small_disk(run / "actors" / "edge" / "spool")
    caplog.set_level(logging.WARNING)
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=run, obs_dim=12, action_dim=3)
    with LearnerService(config) as service:
        actor = ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id="edge",
                                        run_dir=run, control_hz=400, durability="os-buffered"))
        thread = threading.Thread(target=actor.run, kwargs={"steps": STEPS})
        thread.start()
        try:
            assert settles(lambda: actor.link.acked_seq >= 300, timeout=120), actor.link.acked_seq
            disk.fill()
            assert settles(lambda: actor.stream.dropped_disk_full > 0, timeout=30), "nothing was dropped"
            # The loop steps on, numbering nothing new; what was numbered is kept, and what was
            # durable before the disk filled is still acknowledged.
            stepped, numbered = actor.steps, actor.seq
            assert settles(lambda: actor.steps >= stepped + 300 or actor.steps == STEPS, timeout=60)
            assert actor.seq == numbered and actor.stream.dropped_disk_full >= 300
            assert actor.link.backlog == numbered - actor.link.acked_seq
            summary = actor.summary()
            assert summary["dropped_disk_full"] > 0 and summary["spool"].startswith("full: ")
            assert settles(lambda: "cannot write (ENOSPC)" in caplog.text, timeout=10)
            assert str(actor.stream.spool.path) in caplog.text

            disk.free()
            thread.join(timeout=120)
            assert not thread.is_alive()
            dropped = actor.stream.dropped_disk_full
            assert actor.steps == STEPS and actor.seq + dropped + actor.nonfinite == STEPS
            actor.link.stop(drain_s=60)
            assert actor.link.acked_seq == actor.seq and actor.link.backlog == 0
            assert actor.summary()["spool"] == "ok" and actor.link.errors == {}
        finally:
            thread.join(timeout=30)
            actor.close()
        print(f"{dropped} of {STEPS} transitions dropped unnumbered while the spool's disk was full")
        assert "spooling resumed" in caplog.text
        last = actor.seq
        assert settles(lambda: service.updater.applied.get("edge") == last, timeout=120)
        stored = [t.seq for _, t in service.cache.iter_transitions("edge")]
        assert stored == list(range(1, last + 1)), "the learner lost, doubled or skipped a transition"
    assert read_journal(run / "applied.log") == [("edge", seq) for seq in range(1, last + 1)]
