"""``python -m bench.interventions --quick`` keeps working: every arm on the same seed, every window
with sane figures, the learner applying the operator's steps as interventions in one arm only, the
watching operator never driving."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_interventions_bench_quick_reports_every_arm(tmp_path):
    out = tmp_path / "interventions.json"
    done = subprocess.run([sys.executable, "-m", "bench.interventions", "--quick", "--json", str(out)],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    assert set(report["arms"]) == {"imitation", "control", "watch"} and report["_meta"]["quick"] is True
    assert report["seeds"] == [0] and report["steps"] == 400 and report["window"] == 2
    for name, arm in report["arms"].items():
        (run,) = arm["runs"]
        assert run["seed"] == 0 and run["steps"] == 400, name
        assert run["applied"] == run["transitions"] >= 399, name  # every transition learned from
        assert run["episodes"] >= 2 and arm["windows"] and run["windows"] == arm["windows"], name
        assert 0 <= run["successes"] <= run["episodes"] and run["operator_marked"]["failure"] >= 0, name
        assert sum(run["operator_marked"].values()) >= run["episodes"], name  # every episode ended by it
        drives = name != "watch"
        for i, w in enumerate(arm["windows"]):
            assert w["episodes"] == [2 * i + 1, 2 * i + 2] and w["seeds"] == 1, name
            assert 0.0 <= w["unaided_success_rate"] <= w["success_rate"] <= 1.0, (name, w)
            assert w["takeovers"] >= 0.0 and 0.0 <= w["intervened_steps"] <= w["length"] <= 150, (name, w)
            # a takeover drives at least one step; a watching operator drives none
            assert w["takeovers"] <= w["intervened_steps"] if drives else not w["intervened_steps"], name
        assert 0 < run["takeovers"] <= run["operator_takeovers"], name  # an untrained policy wanders off
        assert run["intervened_steps"] > 0 if drives else run["intervened_steps"] == 0, name
    imitation, control, watch = (report["arms"][a]["runs"][0] for a in ("imitation", "control", "watch"))
    assert imitation["learner_intervened"] > 0 and imitation["flag_stripped"] == 0
    assert control["learner_intervened"] == 0 and control["flag_stripped"] > 0
    assert watch["learner_intervened"] == 0 and watch["flag_stripped"] == 0
    assert "takeovers/ep" in done.stdout and "as interventions" in done.stdout
