"""``rill status`` on a learner's run directory says what the learner reported of itself: a full
cache (nothing is acknowledged until space returns) and paused learning stand out; a report that
cannot be read is said to be unreadable, not shown as healthy."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _status(run: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "agent.cli", "status", str(run)], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


def _report(run: Path, **fields) -> None:
    (run / "metrics").mkdir(parents=True, exist_ok=True)
    state = {"time": time.time() - 3, "updates": 10, "weights_version": 2, "episodes": 1,
             "actors": ["robot-a"], "received": 40, "rejected": {"bad_shape": 2},
             "cache": "ok", "learning": "ok", **fields}
    (run / "metrics" / "learner_status.json").write_text(json.dumps(state))


def test_status_shows_a_full_cache_and_paused_learning(tmp_path):
    run = tmp_path / "learner"
    _report(run, cache="full: [Errno 28] No space left on device: segment 00000003",
            learning="paused: [Errno 28] No space left on device")
    out = _status(run)
    assert out.returncode == 0, out.stderr
    assert "cache full: [Errno 28] No space left on device" in out.stdout, out.stdout
    assert "learning paused" in out.stdout and "robot-a" in out.stdout and "2 refused" in out.stdout


def test_status_of_a_healthy_learner_and_of_an_unreadable_report(tmp_path):
    run = tmp_path / "learner"
    _report(run)
    out = _status(run)
    assert out.returncode == 0 and "cache ok; learning ok" in out.stdout, out.stdout + out.stderr
    (run / "metrics" / "learner_status.json").write_text('{"time": 1, "cache": ')  # torn
    out = _status(run)
    assert out.returncode == 0, out.stderr
    assert "unreadable" in out.stdout and "learner_status.json" in out.stdout, out.stdout
