"""``python -m bench.reward --quick`` keeps working: the shipped reward model judged on freshly recorded
held-out episodes of both sources, per frame and per episode."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_reward_bench_quick_reports_frames_and_episodes(tmp_path):
    out = tmp_path / "reward.json"
    done = subprocess.run([sys.executable, "-m", "bench.reward", "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr[-4000:]
    c = json.loads(out.read_text())["classifier"]
    assert c["model"] == "pretrained:tabletop-reach" and 0 < c["threshold"] < 1
    assert c["episodes_per_source"] == 4 and set(c["episodes_by_source"]) == {"expert", "policy"}
    f = c["frames"]
    assert f["frames"] > f["positives"] > 0 and 0 <= f["precision"] <= 1 and 0 <= f["recall"] <= 1
    assert set(f["by_kind"]) <= {"success", "early", "failed episode", "other goal"}
    e = c["episodes"]
    assert e["episodes"] == 8 and e["right"] + e["wrong"] == e["declared"]
    assert e["missed"] <= e["successful"]
    assert "precision" in done.stdout and "other goal" in done.stdout
