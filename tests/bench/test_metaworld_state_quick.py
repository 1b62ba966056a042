"""``python -m bench.metaworld_state`` trains stream AC on Meta-World's state, reports success by window."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.actor.episodes import EpisodeLog, EpisodeRecord
from bench.metaworld_state import success_by_window, summarize

REPO = Path(__file__).resolve().parents[2]


def test_success_is_counted_in_the_window_where_each_episode_ended(tmp_path):
    path = tmp_path / "metrics" / "episodes.csv"
    path.parent.mkdir()
    log = EpisodeLog(path, fresh=True)
    for step, success in [(500, False), (900, True), (1000, True), (1001, False), (1500, True), (2600, True)]:
        log.append(EpisodeRecord(step, 0, 1.0, 100, 0.0, success=success))
    log.close()
    assert success_by_window(path, 1000, 4000) == [2 / 3, 0.5, 1.0, None]
    result = summarize("reach-v3", 0, tmp_path, 1000, 3000)
    assert result["success_by_window"] == [2 / 3, 0.5, 1.0]
    assert result["first_window_at_80"] == 3000 and result["final_success"] == 1.0


def test_quick_run_trains_and_reports(tmp_path):
    pytest.importorskip("metaworld")
    out = tmp_path / "state.json"
    command = [sys.executable, "-m", "bench.metaworld_state", "--quick", "--runs", str(tmp_path / "runs"),
               "--json", str(out)]
    subprocess.run(command, cwd=REPO, check=True, capture_output=True, timeout=300,
                   env={**os.environ, "MUJOCO_GL": "egl"})
    payload = json.loads(out.read_text())
    (run,) = payload["runs"]
    assert run["task"] == "reach-v3" and payload["steps"] == 2000 and payload["window_steps"] == 200
    assert len(run["success_by_window"]) == 10 and run["steps_per_s"] > 0
    episodes = (tmp_path / "runs" / "reach-v3" / "seed0" / "metrics" / "episodes.csv").read_text()
    assert len(episodes.splitlines()) >= 5  # 2,000 steps: at least four 500-step episodes
