"""``python -m bench.tabletop --quick`` keeps working (no timing assertions: CI machines vary)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_tabletop_bench_quick_reports_every_variant(tmp_path):
    out = tmp_path / "tabletop.json"
    subprocess.run(
        [sys.executable, "-m", "bench.tabletop", "--quick", "--json", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=120,
        env={**os.environ, "MUJOCO_GL": "egl"},
    )
    report = json.loads(out.read_text())
    rates = report["ticks_per_s"]
    assert len(rates) == 5 and all(v > 0 for v in rates.values())
    assert report["_meta"]["quick"] is True
