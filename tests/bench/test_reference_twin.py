"""``bench.reference.twin``: rill started from the reference run's own start for a seed.

Skipped where the reference code is not installed (``bench/reference/README.md``); CI has none.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent.actor.episodes import read_episodes
from bench.reproduce import RunSpec, train_one


def test_a_twin_begins_with_the_reference_runs_own_episodes(tmp_path, reference_code):
    steps = 1500
    ref = RunSpec("Hopper-v4", 0, steps, str(tmp_path / "reference-seed0"), "reference", 1000,
                  impl="reference", code=str(reference_code))
    twin = RunSpec("Hopper-v4", 0, steps, str(tmp_path / "twin-seed0"), impl="twin", code=str(reference_code))
    mine = RunSpec("Hopper-v4", 0, steps, str(tmp_path / "seed0"))
    for spec in (ref, twin, mine):
        train_one(spec)
    theirs, twins, own = (read_episodes(Path(s.run_dir) / "metrics" / "episodes.csv")
                          for s in (ref, twin, mine))
    # the same initial weights, noise and first reset: the first episodes are the reference's own,
    # to rounding, until the time feature's 1/T offset moves an action enough to matter
    assert [e.length for e in twins[:3]] == [e.length for e in theirs[:3]]
    assert [e.ret for e in twins[:3]] == pytest.approx([e.ret for e in theirs[:3]], rel=1e-3)
    # rill's own start for seed 0 is another run altogether
    assert [round(e.ret, 3) for e in own[:3]] != [round(e.ret, 3) for e in theirs[:3]]
    info = json.loads((Path(twin.run_dir) / "run.json").read_text())
    assert info["start"] == {"from": "reference", "code": str(reference_code), "seed": 0}


def test_a_twin_resumes_from_its_checkpoint_not_from_the_reference_start(tmp_path, monkeypatch,
                                                                           reference_code):
    import bench.reference.twin as twin_module
    from bench.reproduce import _train

    def spec(name: str, steps: int) -> RunSpec:
        return RunSpec("Hopper-v4", 1, steps, str(tmp_path / name), checkpoint_every=400, impl="twin",
                       code=str(reference_code))

    train_one(spec("straight", 3000))
    _train(spec("interrupted", 1500))  # keeps its checkpoints, as a run stopped mid-way does
    assert list((tmp_path / "interrupted" / "checkpoints").glob("step_*"))
    (tmp_path / "interrupted" / "summary.json").unlink()  # asked for more steps

    def no_second_start(*args, **kwargs):
        raise AssertionError("a resumed twin was started from the reference's start again")

    monkeypatch.setattr(twin_module, "start_as_reference", no_second_start)
    train_one(spec("interrupted", 3000))
    a, b = (read_episodes(tmp_path / n / "metrics" / "episodes.csv") for n in ("straight", "interrupted"))
    assert len(a) > 20 and [(e.step, e.ret) for e in a] == [(e.step, e.ret) for e in b]
    assert json.loads((tmp_path / "interrupted" / "run.json").read_text())["start"]["from"] == "reference"
