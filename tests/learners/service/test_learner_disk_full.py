"""The disk under the learner's replay cache fills while a real actor streams: the learner stops
acknowledging and says so (log, ``status()``, ``metrics/learner_status.json``), the actor's
control loop runs on, nothing acknowledged is lost, and acknowledgements resume by themselves
once space returns, every transition then applied exactly once.

The small disk is a real one (``small_disk.SmallDisk``): a 16 MiB tmpfs the test mounts on the
run's ``cache`` directory (the tests run as root), filled by a ballast file until the kernel says
ENOSPC and freed by deleting it. Where mounting is refused (a container without CAP_SYS_ADMIN) the
test falls back to an injected ENOSPC: the cache's segment write raises ``OSError(ENOSPC)`` while
the disk is "full" (``RILL_SMALL_DISK=injected`` forces it, to check that path). The test prints
which one it used.
"""

from __future__ import annotations

import json
import logging
import threading

import pytest

from agent.actor import ActorConfig, ActorRunner
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal
from tests.learners.service.small_disk import small_disks

STEPS = 3000


@pytest.fixture
def small_disk(monkeypatch):
    yield from small_disks(monkeypatch, "the learner's cache")


def test_a_full_disk_stops_acks_loses_nothing_and_acks_resume(tmp_path, small_disk, settles, caplog):
    run = tmp_path / "run"
    disk = small_disk(run / "cache")
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=run, obs_dim=12, action_dim=3,
                           cache_segment_bytes=256 * 1024)  # a few segments: rolls while full too
    status_file = run / "metrics" / "learner_status.json"
    caplog.set_level(logging.WARNING)
    with LearnerService(config) as service:
        server = service.server
        actor = ActorRunner(ActorConfig(learner=service.endpoint, env="Hopper-v5", actor_id="edge",
                                        run_dir=run, control_hz=400, durability="os-buffered"))
        thread = threading.Thread(target=actor.run, kwargs={"steps": STEPS})
        thread.start()
        try:
            assert settles(lambda: actor.link.acked_seq >= 300, timeout=120), actor.link.acked_seq
            disk.fill()
            assert settles(lambda: server.cache_full is not None, timeout=60), "the learner never noticed"
            status = service.status()
            assert status["cache"].startswith("full: ") and "disk full, errno 28" in status["cache"], status
            assert settles(lambda: status_file.exists()
                           and json.loads(status_file.read_text())["cache"].startswith("full: "), timeout=10)
            # The control loop runs on; the learner refuses what it cannot store, and acknowledges
            # only what is durable.
            stepped, held = actor.steps, server.durable_seq["edge"]
            assert settles(lambda: actor.steps >= stepped + 300 or actor.steps == STEPS, timeout=60)
            assert settles(lambda: server.rejected["cache_full"] > 0, timeout=30), server.rejected
            assert server.durable_seq["edge"] == held and actor.link.acked_seq <= held < actor.seq
            assert "the replay cache cannot write" in caplog.text
            assert "the replay cache writes again" not in caplog.text

            disk.free()
            thread.join(timeout=120)
            assert not thread.is_alive()
            actor.link.stop(drain_s=60)
            assert actor.link.acked_seq == actor.seq == STEPS and actor.link.backlog == 0
            assert set(actor.link.errors) <= {"cache_full", "gap"}, actor.link.errors
        finally:
            thread.join(timeout=30)
            actor.close()
        assert "the replay cache writes again" in caplog.text
        assert server.cache_full is None and service.status()["cache"] == "ok"
        assert set(server.rejected) <= {"cache_full", "gap"}, server.rejected
        assert settles(lambda: service.updater.applied.get("edge") == STEPS, timeout=120)
        stored = [t.seq for _, t in service.cache.iter_transitions("edge")]
        assert stored == list(range(1, STEPS + 1)), "the cache lost or doubled a transition"
    assert read_journal(run / "applied.log") == [("edge", seq) for seq in range(1, STEPS + 1)]
