"""``python -m bench.metaworld --quick`` keeps working: every policy on every task on the same
held-out seeds, the difficulty groups, the published table beside them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("metaworld")

REPO = Path(__file__).resolve().parents[2]


def test_metaworld_bench_quick_reports_every_policy_and_task(tmp_path):
    out = tmp_path / "metaworld.json"
    done = subprocess.run([sys.executable, "-m", "bench.metaworld", "--quick", "--json", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env={**os.environ, "MUJOCO_GL": "egl"})
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(out.read_text())
    tasks = ["reach-v3", "drawer-close-v3"]
    assert report["tasks"] == tasks and report["seeds"] == [100_000, 100_001] and report["_meta"]["quick"]
    assert {"expert", "random"} <= set(report["runs"])
    for name, per_task in report["runs"].items():
        assert set(per_task) == set(tasks), name
        for task, r in per_task.items():
            assert r["episodes"] == 2 and 0 <= r["successes"] <= 2, (name, task)
    assert report["runs"]["expert"]["reach-v3"]["successes"] == 2  # the scripted ceiling
    assert report["groups"]["expert"] == {"easy": 100.0, "average": 100.0}
    if "vla" in report["runs"]:  # the shipped Meta-World VLA
        assert report["act_ms"]["calls"] > 0 and report["act_ms"]["median"] > 0
    assert report["published"]["SmolVLA (0.45B)"]["average"] == 57.3
    assert "Meta-World success %" in done.stdout and "SmolVLA" in done.stdout


def test_sampling_needs_an_online_run(capsys):
    from bench.metaworld import main

    with pytest.raises(SystemExit) as stop:
        main(["--quick", "--sample"])
    assert stop.value.code == 2
    assert "--sample needs --run" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--episodes", "--episode-steps"])
def test_zero_episodes_or_steps_are_refused_not_replaced(capsys, flag):
    from bench.metaworld import main

    with pytest.raises(SystemExit) as stop:
        main(["--quick", flag, "0"])
    assert stop.value.code == 2
    assert "--episodes must be >= 1 and --episode-steps within 1..500" in capsys.readouterr().err
