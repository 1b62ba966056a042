"""``python -m bench.vla --quick`` keeps working: every run reported on the same seeds, latency too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_vla_bench_quick_reports_every_run(tmp_path):
    out = tmp_path / "vla.json"
    done = subprocess.run([sys.executable, "-m", "bench.vla", "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert set(report["runs"]) == {"vla", "expert", "swap", "blind", "random", "forward", "middle"}
    assert report["seeds"] == [200_000, 200_005] and report["_meta"]["quick"] is True
    for name, r in report["runs"].items():
        assert r["episodes"] == 6 and 0 <= r["successes"] <= 6, name
    assert 0.0 <= report["runs"]["swap"]["named_block_reached"] <= 1.0
    assert report["act_ms"]["calls"] > 0 and report["act_ms"]["median"] > 0
    loop = report["loop"]
    assert loop["ticks"] > 100 and set(loop["by_where_per_1000"]) == {
        "episode start", "between chunks", "stale frame", "policy failing", "other"}
    assert abs(sum(loop["by_where_per_1000"].values()) - loop["holds_per_1000"]) < 0.5
    assert "success %" in done.stdout and "act()" in done.stdout and "holds per 1,000 ticks" in done.stdout
