"""``python -m bench.streamx_speed --quick`` keeps working (no timing assertions: CI machines vary)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_streamx_speed_quick_reports_both_paths_per_env(tmp_path):
    out = tmp_path / "speed.json"
    subprocess.run(
        [sys.executable, "-m", "bench.streamx_speed", "--quick", "--json", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )
    report = json.loads(out.read_text())
    assert {"Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"} <= set(report)
    for env in ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"):
        row = report[env]
        for key in (
            "raw_steps_per_s",
            "fast_train_steps_per_s",
            "autograd_train_steps_per_s",
            "fast_over_raw",
            "autograd_over_raw",
            "fast_over_autograd",
        ):
            assert row[key] > 0, (env, key)
    assert report["_meta"]["quick"] is True and report["_meta"]["torch_threads"] == 1
