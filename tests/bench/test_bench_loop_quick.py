"""bench.loop keeps working (CI runs its --quick mode; no timings asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_loop_bench_quick(tmp_path):
    out = tmp_path / "loop.json"
    subprocess.run(
        [sys.executable, "-m", "bench.loop", "--quick", "--json", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, "MUJOCO_GL": "egl"},
    )
    data = json.loads(out.read_text())
    for name in ("async_blend", "async_naive", "sync_naive"):
        assert data[name]["ticks"] == 150 and data[name]["chunks"] > 0
    assert data["tiny_vla_latency"]["calls"] == 20 and data["tiny_vla_latency"]["median_ms"] > 0


def test_loop_bench_quick_with_the_shipped_vla_beside_a_busy_learner(tmp_path):
    out = tmp_path / "loop-vla.json"
    subprocess.run(
        [sys.executable, "-m", "bench.loop", "--quick", "--vla", "--with-learner", "--hz", "50",
         "--hz", "100", "--json", str(out)],
        cwd=REPO, check=True, capture_output=True, timeout=600, env={**os.environ, "MUJOCO_GL": "egl"},
    )
    data = json.loads(out.read_text())
    for name in ("vla_50hz_with_learner", "vla_100hz_with_learner"):
        assert data[name]["ticks"] == 150 and data[name]["chunks"] > 0 and data[name]["inference_p50_ms"] > 0
        bare = data[f"{name}_bare_clock"]  # the same clock with no work, for the same ticks
        assert bare["ticks"] == 150 and bare["jitter_max_ms"] >= bare["jitter_p99_ms"] >= 0
        assert data[name]["worst_start_over_bare_clock"] >= 0
