"""``python -m bench.reproduce`` keeps working: trains, resumes, runs seeds in parallel, reports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from agent.actor.episodes import read_episodes

REPO = Path(__file__).resolve().parents[2]


def _reproduce(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "bench.reproduce", *args],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=300,
    )


def test_reproduce_quick_writes_a_report(tmp_path):
    _reproduce("--quick", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "out"))
    report = (tmp_path / "out" / "streamx.md").read_text()
    assert "Hopper-v5" in report and "2,173" in report  # the paper's number beside ours
    assert (tmp_path / "out" / "streamx_Hopper-v5.png").stat().st_size > 0
    numbers = json.loads((tmp_path / "out" / "streamx.json").read_text())
    assert numbers["envs"]["Hopper-v5"]["update_path"] == ["fast"]
    assert len(numbers["envs"]["Hopper-v5"]["final_returns"]) == 1


def test_reproduce_runs_seeds_in_parallel_and_resumes(tmp_path):
    common = [
        "--env",
        "Hopper-v5",
        "--seeds",
        "2",
        "--jobs",
        "2",
        "--runs",
        str(tmp_path / "runs"),
        "--out",
        str(tmp_path / "out"),
    ]
    _reproduce(*common, "--steps", "1200")
    _reproduce(*common, "--steps", "1800")  # picks both runs up from their checkpoints
    for seed in (0, 1):
        run = tmp_path / "runs" / "Hopper-v5" / f"seed{seed}"
        assert json.loads((run / "summary.json").read_text())["steps"] == 1800
        steps = [e.step for e in read_episodes(run / "metrics" / "episodes.csv")]
        assert steps == sorted(steps) and steps[-1] <= 1800
    numbers = json.loads((tmp_path / "out" / "streamx.json").read_text())
    assert numbers["steps"] == 1800 and len(numbers["envs"]["Hopper-v5"]["final_returns"]) == 2
