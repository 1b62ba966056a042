"""``bench.reference.stream_ac``: the paper's code under the bench harness.

The reference code is not part of rill (bench/reference/README.md says how to get it); the tests
that run it look for it in ``$RILL_REFERENCE_CODE`` or ``runs/reference/streaming-drl`` and are
skipped where it is not installed. The refusals run everywhere.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from agent.actor.episodes import read_episodes
from bench.reference.stream_ac import ReferenceCodeError, ReferenceRun, load_reference, train

REPO = Path(__file__).resolve().parents[2]



def test_a_directory_without_the_reference_code_is_refused_by_name(tmp_path):
    (tmp_path / "optim.py").write_text("")
    with pytest.raises(ReferenceCodeError) as err:
        load_reference(tmp_path)
    message = str(err.value)
    assert str(tmp_path) in message and "stream_ac_continuous.py" in message and "optim.py" not in message
    result = subprocess.run(
        [sys.executable, "-m", "bench.reference.stream_ac", "--code", str(tmp_path), "--steps", "10",
         "--run", str(tmp_path / "run")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "stream_ac_continuous.py" in result.stderr


def test_a_run_directory_of_another_run_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"env": "Hopper-v4", "seed": 1, "update_path": "reference"}))
    with pytest.raises(ReferenceCodeError, match="seed"):
        train(ReferenceRun(str(tmp_path), "Hopper-v4", 0, 100, str(run)))


def test_an_interrupted_run_resumes_to_the_same_episodes(tmp_path, reference_code):
    """Stopped at 1,500 steps and resumed, a run ends exactly as one that never stopped."""

    def run(name: str, steps: int) -> Path:
        out = tmp_path / name
        train(ReferenceRun(str(reference_code), "Hopper-v4", 3, steps, str(out), checkpoint_every=400))
        return out

    straight = run("straight", 3000)
    interrupted = run("interrupted", 1500)
    assert list((interrupted / "checkpoints").glob("step_*"))
    (interrupted / "summary.json").unlink()  # the run is asked for more steps, as a longer budget would
    run("interrupted", 3000)
    resumed_at = json.loads((interrupted / "summary.json").read_text())["resumed_at"]
    assert 400 <= resumed_at <= 1500  # it went on from its last checkpoint, not from step 0

    def rows(path: Path) -> list[tuple]:
        found = read_episodes(path / "metrics" / "episodes.csv")
        return [(e.step, e.episode, e.ret, e.length) for e in found]

    assert len(rows(straight)) > 20
    assert rows(interrupted) == rows(straight)
    summary = json.loads((straight / "summary.json").read_text())
    assert summary["steps"] == 3000 and summary["update_path"] == "reference" and summary["resumed_at"] == 0
