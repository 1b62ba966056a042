"""``python -m bench.sim_camera --quick`` keeps working: both camera rates run and are reported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("metaworld")

REPO = Path(__file__).resolve().parents[2]


def test_sim_camera_bench_quick_reports_both_camera_rates(tmp_path):
    out = tmp_path / "sim_camera.json"
    done = subprocess.run([sys.executable, "-m", "bench.sim_camera", "--quick", "--ticks", "80", "--json",
                           str(out)], cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    every_tick, every_chunk = report["camera_every_1"], report["camera_every_4"]
    assert every_tick["frames_per_run"] == 80 and every_chunk["frames_per_run"] == 20  # one per 4 ticks
    for r in (every_tick, every_chunk):
        assert r["ticks_per_s"] > 0 and 0 < r["render_share"] < 1 and r["render_ms_per_frame"] > 0
    assert report["speedup"] == round(every_chunk["ticks_per_s"] / every_tick["ticks_per_s"], 2)
    assert "camera_every: 4" in done.stdout and report["_meta"]["quick"] is True
