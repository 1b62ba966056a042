"""The speed benchmark keeps working (CI runs its --quick mode; no timing is asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_streamx_speed_quick_writes_measured_json(tmp_path):
    out = tmp_path / "speed.json"
    subprocess.run([sys.executable, "-m", "bench.streamx_speed", "--quick", "--json", str(out)],
                   cwd=REPO, check=True, capture_output=True, timeout=600)
    data = json.loads(out.read_text())
    for env in ("Hopper-v5", "HalfCheetah-v5"):
        row = data[env]
        assert row["raw_steps_per_s"] > 0 and row["train_steps_per_s"] > 0
        assert abs(row["ratio"] - row["train_steps_per_s"] / row["raw_steps_per_s"]) < 1e-3
