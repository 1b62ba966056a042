"""``python -m bench.reproduce`` keeps working: trains, resumes, runs seeds in parallel, reports."""

from __future__ import annotations

import json
import shutil
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
    assert numbers["envs"]["Hopper-v5"]["rill"]["update_path"] == ["fast"]
    assert len(numbers["envs"]["Hopper-v5"]["rill"]["final_returns"]) == 1
    assert numbers["envs"]["Hopper-v5"]["reference"]["final_returns"] == []  # none was run


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
    assert numbers["steps"] == 1800 and len(numbers["envs"]["Hopper-v5"]["rill"]["final_returns"]) == 2


def test_report_sets_reference_runs_beside_rills(tmp_path):
    """Runs in ``reference-seed<k>`` enter the comparison; identical finals are indistinguishable."""
    common = ["--env", "Hopper-v5", "--seeds", "2", "--steps", "1500", "--runs", str(tmp_path / "runs"),
              "--out", str(tmp_path / "out")]
    _reproduce(*common)
    env_dir = tmp_path / "runs" / "Hopper-v5"
    for seed in (0, 1):  # stand-ins in the reference's place: the same episode logs
        shutil.copytree(env_dir / f"seed{seed}", env_dir / f"reference-seed{seed}")
    _reproduce(*common, "--report-only")
    numbers = json.loads((tmp_path / "out" / "streamx.json").read_text())["envs"]["Hopper-v5"]
    assert numbers["reference"]["final_returns"] == numbers["rill"]["final_returns"]
    versus = numbers["rill_vs_reference"]
    assert versus["n_rill"] == versus["n_reference"] == 2
    assert versus["difference"] == 0 and versus["distinguishable"] is False
    report = (tmp_path / "out" / "streamx.md").read_text()
    assert "reference code" in report and "Welch" in report


def test_reproduce_refuses_a_directory_that_is_not_the_reference_code(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "bench.reproduce", "--report-only", "--reference-code", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "stream_ac_continuous.py" in result.stderr and str(tmp_path) in result.stderr
