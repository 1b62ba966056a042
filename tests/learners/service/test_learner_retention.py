"""The learner applies its replay cache's retention while it learns: segments past the limit that
a checkpoint has covered are deleted, and learning goes on across the deletion."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from learners.cache.batch import encode_batch
from learners.link.wire import TRANSITIONS, encode
from learners.service import LearnerConfig, LearnerService
from learners.streamx import ConfigError
from learners.transition import Transition

REPO = Path(__file__).resolve().parents[3]


def _send(sock, first: int, n: int, per_batch: int = 50) -> None:
    """Transitions ``first..first+n-1`` in batches of ``per_batch`` (~25 kB records, several to a
    segment)."""
    for start in range(first, first + n, per_batch):
        batch = [Transition(np.full(12, 0.01 * seq, np.float32), np.zeros(3, np.float32), 0.1,
                            np.ones(12, np.float32), False, False, actor_id="ret", seq=seq,
                            extras={"pad": "x" * 400})
                 for seq in range(start, min(start + per_batch, first + n))]
        fields = {"actor_id": "ret", "first_seq": batch[0].seq, "last_seq": batch[-1].seq}
        sock.send_multipart(encode(TRANSITIONS, fields, [encode_batch(batch)]))


def test_consumed_segments_past_the_limit_are_deleted_while_learning_goes_on(tmp_path, raw_actor, settles):
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "run", obs_dim=12, action_dim=3,
                           durability="os-buffered", retention_bytes=256 * 1024, retention_every_s=0.2,
                           cache_segment_bytes=128 * 1024, checkpoint_every_updates=500)
    with LearnerService(config) as service:
        sock = raw_actor(service, "ret")
        for first in range(1, 3001, 500):
            _send(sock, first, 500)
        assert settles(lambda: service.updater.applied.get("ret", 0) == 3000, 60), service.updater.applied
        assert settles(lambda: service.cache.log.segments()[0].base > 0)
        _send(sock, 3001, 500)  # learning goes on after a deletion
        assert settles(lambda: service.updater.applied.get("ret", 0) == 3500, 60)
        # ~2.1 MB went in; what stays is the limit plus what the last checkpoint has not covered
        # (up to 500 records) and the active segment.
        assert settles(lambda: service.cache.stats().bytes < 1_000_000), service.cache.stats()
        first_kept = service.cache.log.segments()[0].base
    assert service.server.received == 3500 and first_kept > 0


@pytest.mark.parametrize("field, value", [("retention_bytes", -1), ("retention_age_s", 0),
                                          ("retention_every_s", "often")])
def test_bad_retention_settings_are_named(tmp_path, field, value):
    with pytest.raises(ConfigError, match=f"learner.{field}"):
        LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=3, action_dim=1, **{field: value})


def test_rill_learner_refuses_a_bad_keep_flag_by_name(tmp_path):
    argv = [sys.executable, "-m", "agent.cli", "learner", "--keep-days", "0", "--obs-dim", "3",
            "--action-dim", "1", "--run", str(tmp_path / "run")]
    out = subprocess.run(argv, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and "--keep-days must be > 0" in out.stdout + out.stderr
    assert not (tmp_path / "run" / "cache").exists()
