"""Demonstrations recorded through the control loop on the real MuJoCo tabletop arm: whole episodes
with frames, instruction, state and the actions the robot was actually sent land in a replay cache;
more sessions add to a set; an acting side that fails closes its episode as aborted (never padded
with made-up actions); sets training cannot use are refused with the problem named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from agent.demos.episodes import DemoFeatures, DemoSetError, read_demos
from agent.demos.record import RecordConfig, check_destination, open_demo_cache, record_demos
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import make_robot
from policies.base import ActionChunk, Policy, PolicyInputError

REPO = Path(__file__).resolve().parents[3]
STEPS = 12  # ticks per episode: short, so the tests are quick
ARM = {"name": "a", "type": "sim-tabletop"}


class SweepPolicy(Policy):
    """Pushes the arm along a fixed direction that turns with every call; fails when told to."""

    action_dim, chunk_size = 2, 2

    def __init__(self, fail_after: int | None = None) -> None:
        self.calls, self.fail_after = 0, fail_after

    def act(self, observation) -> ActionChunk:
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise PolicyInputError("the operator let go")
        angle = 0.3 * self.calls
        return ActionChunk(np.tile([np.cos(angle), np.sin(angle)], (2, 1)), 0.02)


def _robot(seed: int = 0):
    params = {"task": "reach", "cameras": ["front"], "image_height": 32, "image_width": 32,
              "episode_steps": STEPS, "seed": seed, "max_delta": 0.5}
    return make_robot(RobotConfig("demo-arm", "sim-tabletop", params))


def _record(path: Path, policy: Policy, episodes: int, source: str = "expert", seed: int = 0):
    policy_config = {"type": "class", "class_path": "policies.base:Policy"}  # (the policy is passed in)
    config = RecordConfig.from_dict({"robot": ARM, "policy": policy_config, "out": path, "source": source})
    with _robot(seed) as robot, open_demo_cache(config) as cache:
        return record_demos(robot, policy, cache, episodes, source, max_ticks=episodes * STEPS * 3)


def test_episodes_hold_frames_instruction_state_and_the_actions_sent(tmp_path):
    out = tmp_path / "demos"
    stats = _record(out, SweepPolicy(), 3)
    assert stats.episodes == 3 and stats.aborted == 0 and stats.lengths == [STEPS] * 3
    demos = read_demos(out, require_success=False)
    assert [e.length for e in demos.episodes] == [STEPS] * 3 and demos.incomplete == 0
    assert demos.features == DemoFeatures(20, {"front": (32, 32, 3)}, 2)
    for ep in demos.episodes:
        assert ep.source == "expert" and ep.actor_id == "demo-expert"
        assert ep.instruction and all(t.obs["instruction"] == ep.instruction for t in ep.steps)
        frames, actions = ep.frames("front"), ep.actions()
        assert ep.states().shape == (STEPS, 20)
        assert frames.dtype == np.uint8 and frames.shape == (STEPS, 32, 32, 3)
        assert len({f.tobytes() for f in frames}) > STEPS // 2  # the camera saw the arm move
        # What the robot was sent: within its limits and its per-tick bound (max_delta 0.5)
        assert np.all(np.abs(actions) <= 1.0) and np.all(np.abs(np.diff(actions, axis=0)) <= 0.5 + 1e-6)
        # Each step's next state is the next step's state: the pairs line up with the ticks
        for a, b in zip(ep.steps, ep.steps[1:]):
            np.testing.assert_array_equal(a.next_obs["state"], b.obs["state"])
        assert ep.steps[-1].truncated and not any(t.done for t in ep.steps[:-1])
        assert [t.step for t in ep.steps] == list(range(STEPS))
    seqs = [t.seq for e in demos.episodes for t in e.steps]
    assert seqs == list(range(1, 3 * STEPS + 1))
    with pytest.raises(DemoSetError, match="none of 3 episodes succeeded"):
        read_demos(out)


def test_a_second_session_adds_to_the_set(tmp_path):
    out = tmp_path / "demos"
    _record(out, SweepPolicy(), 2)
    _record(out, SweepPolicy(), 1, source="human", seed=5)
    demos = read_demos(out, require_success=False)
    assert sorted((e.actor_id, e.episode) for e in demos.episodes) == [
        ("demo-expert", 0), ("demo-expert", 1), ("demo-human", 0)]
    _record(out, SweepPolicy(), 1)
    demos = read_demos(out, require_success=False)
    expert = [e for e in demos.episodes if e.source == "expert"]
    assert [e.episode for e in expert] == [0, 1, 2]
    seqs = [t.seq for e in expert for t in e.steps]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # never reused
    summary = demos.summary()
    assert summary["episodes"] == 4 and summary["sources"] == {"expert": 3, "human": 1}


def test_recording_into_a_set_needs_append_and_the_sets_shapes(tmp_path):
    out = tmp_path / "demos"
    check_destination(out, _robot(), append=False)  # new: nothing to check
    _record(out, SweepPolicy(), 1)
    with pytest.raises(DemoSetError, match=r"holds episodes already; pass --append"):
        check_destination(out, _robot(), append=False)
    check_destination(out, _robot(seed=3), append=True)
    bigger = make_robot(RobotConfig("demo-arm", "sim-tabletop", {"task": "reach", "cameras": ["front"],
                                                                  "image_height": 64, "image_width": 64}))
    # before: recorded, and then the whole set could no longer be read
    with pytest.raises(DemoSetError, match=r"records other steps than the set holds \(camera front: frames "
                                           r"\(64, 64, 3\), expected \(32, 32, 3\)\)"):
        check_destination(out, bigger, append=True)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(DemoSetError, match="a file is there, not a cache directory"):
        check_destination(tmp_path / "afile", _robot(), append=True)
    assert len(read_demos(out, require_success=False).episodes) == 1


def test_a_failing_source_aborts_its_episode_without_made_up_actions(tmp_path):
    out = tmp_path / "demos"
    policy = SweepPolicy(fail_after=4)  # 4 chunks of 2 actions, then silence
    stats = _record(out, policy, 1)
    assert stats.episodes == 1 and stats.aborted == 1
    (ep,) = read_demos(out, require_success=False).episodes
    assert ep.aborted and ep.steps[-1].truncated
    assert ep.length <= 4 * 2  # only actions the source gave: none after it stopped


def test_sets_training_cannot_use_are_refused_by_name(tmp_path):
    with pytest.raises(DemoSetError, match="no such directory"):
        read_demos(tmp_path / "missing")
    (tmp_path / "demos.yaml").write_text("robot: {}\n")  # (it used to be called missing too)
    with pytest.raises(DemoSetError, match=r"demos.yaml: a file, not a demonstration cache \(a directory\)"):
        read_demos(tmp_path / "demos.yaml")
    empty = tmp_path / "empty"
    with open_demo_cache(RecordConfig.from_dict({"robot": ARM, "policy": {"type": "tabletop-expert"},
                                                 "out": str(empty)})):
        pass
    with pytest.raises(DemoSetError, match="no complete demonstration episode"):
        read_demos(empty)
    out = tmp_path / "demos"
    _record(out, SweepPolicy(), 1)
    demos = read_demos(out, require_success=False)
    with pytest.raises(DemoSetError, match=r"state width 20, expected 26.*camera front: "
                                           r"frames \(32, 32, 3\), expected \(96, 96, 3\)"):
        demos.check_matches(DemoFeatures(26, {"front": (96, 96, 3)}, 2), "the VLA")
    with pytest.raises(DemoSetError, match=r"cameras \['front'\], expected \['wrist'\]"):
        demos.check_matches(DemoFeatures(20, {"wrist": (32, 32, 3)}, 2))


@pytest.mark.parametrize("values, match", [
    ({"policy": {"type": "tabletop-expert"}, "out": "x"}, "missing 'robot'"),
    ({"robot": ARM, "policy": {"type": "joystick"}, "out": "x"},
     r"policy.type .joystick. is unknown.*; one of vla, class, tabletop-expert, metaworld-expert, teleop"),
    ({"robot": ARM, "policy": {"type": "teleop"}, "out": "x", "episodes": 0},
     "episodes"),
    ({"robot": ARM, "policy": {"type": "teleop"}, "out": "x", "source": "me"},
     "record.source must be one of"),
    ({"robot": ARM, "policy": {"type": "teleop"}, "out": "x", "episdes": 3},
     "episdes"),
])
def test_bad_record_configs_name_the_problem(values, match):
    with pytest.raises(ConfigError, match=match):
        RecordConfig.from_dict(values)


def test_demos_info_summarises_a_set(tmp_path):
    out = tmp_path / "demos"
    _record(out, SweepPolicy(), 2)
    done = subprocess.run([sys.executable, "-m", "agent.cli", "demos", "info", str(out), "--json"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["episodes"] == 2 and summary["steps"] == 2 * STEPS
    assert summary["cameras"] == {"front": [32, 32, 3]}
    assert summary["success_rate"] == 0.0 and sum(summary["instructions"].values()) == 2
    done = subprocess.run([sys.executable, "-m", "agent.cli", "demos", "info", str(tmp_path / "nope")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "no such directory" in done.stdout + done.stderr
