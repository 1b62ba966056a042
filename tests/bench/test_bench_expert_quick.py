"""``python -m bench.expert --quick`` keeps working and reports both tasks (a few episodes each)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_expert_bench_quick_reports_both_tasks(tmp_path):
    out = tmp_path / "expert.json"
    done = subprocess.run([sys.executable, "-m", "bench.expert", "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert set(report["tasks"]) == {"reach", "push"} and report["_meta"]["quick"] is True
    for task, limit in (("reach", 150), ("push", 250)):
        r = report["tasks"][task]
        assert r["episodes"] == 5 and r["seeds"] == [10_000, 10_004] and r["time_limit"] == limit
        assert 0.0 <= r["success_rate"] <= 1.0 and 1 <= r["mean_length"] <= limit
        assert len(r["failed_seeds"]) == round(5 * (1 - r["success_rate"]))
    assert "success %" in done.stdout
