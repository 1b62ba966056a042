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


def test_status_of_a_rill_train_run_says_how_far_it_is(tmp_path):
    run = tmp_path / "pend"
    done = subprocess.run([sys.executable, "-m", "agent.cli", "train", "--env", "CartPole-v1", "--algo",
                           "stream-q", "--steps", "1500", "--checkpoint-every", "1000", "--run", str(run)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    shown = _status(run)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    # it used to say "learner: waiting for its first statistics"
    assert "rill train CartPole-v1 with stream-q, seed 0: finished at step 1500 of 1500" in out, out
    assert "mean return of the last 100 episodes" in out
    assert "newest checkpoint: step_000000001500" in out
    assert "waiting" not in out
    (run / "summary.json").unlink()  # as while it runs: its last progress row
    assert "seed 0: step 1000 of 1500 (67%)" in _status(run).stdout
