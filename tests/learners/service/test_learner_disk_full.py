"""The disk under the learner's replay cache fills while a real actor streams: the learner stops
acknowledging and says so (log, ``status()``, ``metrics/learner_status.json``), the actor's
control loop runs on, nothing acknowledged is lost, and acknowledgements resume by themselves
once space returns, every transition then applied exactly once.

The small disk is a real one: a 16 MiB tmpfs the test mounts on the run's ``cache`` directory
(the tests run as root), filled by a ballast file until the kernel says ENOSPC and freed by
deleting it. Where mounting is refused (a container without CAP_SYS_ADMIN) the test falls back
to an injected ENOSPC: the cache's segment write raises ``OSError(ENOSPC)`` while the disk is
"full" (``RILL_SMALL_DISK=injected`` forces it, to check that path). The test prints which one it
used.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import threading
from pathlib import Path

import pytest

from agent.actor import ActorConfig, ActorRunner
from learners.cache.segment import Segment
from learners.service import LearnerConfig, LearnerService
from learners.service.journal import read_journal

STEPS = 3000


class SmallDisk:
    """A small file system on ``path``: a size-limited tmpfs, or an injected ENOSPC."""

    def __init__(self, path: Path, monkeypatch, size_mb: int = 16) -> None:
        path.mkdir(parents=True)
        self.path, self.ballast, self.full = path, path / "ballast", False
        if os.environ.get("RILL_SMALL_DISK") == "injected":
            self.mounted, why = False, "RILL_SMALL_DISK=injected"
        else:
            done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path)],
                                  capture_output=True, text=True)
            self.mounted, why = done.returncode == 0, f"mounting a tmpfs failed: {done.stderr.strip()}"
        self.kind = f"a {size_mb} MiB tmpfs" if self.mounted else f"an injected ENOSPC ({why})"
        if not self.mounted:
            put = Segment.put

            def failing_put(segment: Segment, items, estimate: int, limit: int) -> None:
                if self.full and segment.path.is_relative_to(self.path):  # (not the actor's spool)
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(segment.data_path))
                put(segment, items, estimate, limit)

            monkeypatch.setattr(Segment, "put", failing_put)

    def fill(self) -> None:
        """Take every free byte (a ballast file written until the kernel says ENOSPC)."""
        self.full = True
        if not self.mounted:
            return
        fd = os.open(self.ballast, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            for chunk in (bytes(1 << 16), bytes(4096)):
                try:
                    while True:
                        os.write(fd, chunk)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
        finally:
            os.close(fd)

    def free(self) -> None:
        self.full = False
        if self.mounted:
            self.ballast.unlink()

    def close(self) -> None:
        if self.mounted and subprocess.run(["umount", str(self.path)]).returncode != 0:
            subprocess.run(["umount", "-l", str(self.path)])


@pytest.fixture
def small_disk(monkeypatch):
    disks = []

    def make(path: Path) -> SmallDisk:
        disks.append(SmallDisk(path, monkeypatch))
        print(f"the learner's cache is on {disks[-1].kind}")
        return disks[-1]

    yield make
    for disk in disks:
        disk.close()


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
