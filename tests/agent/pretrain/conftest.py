"""A small demonstration set the pretraining tests share: the scripted expert on the MuJoCo tabletop
arm (reach, proprioceptive state, one camera), recorded once per test session."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest

from agent.demos.record import RecordConfig, build_demo_policy, open_demo_cache, record_demos
from hal.registry import make_robot


def arm(size: int, seed: int = 0, **params) -> dict:
    return {"name": "arm", "type": "sim-tabletop",
            "params": {"task": "reach", "state": "proprio", "cameras": ["front"], "image_height": size,
                       "image_width": size, "seed": seed, "max_delta": 1.0, **params}}


def record(path, episodes: int, size: int, seed: int = 0, **params):
    """Record ``episodes`` of the tabletop expert at ``size``; ``params`` change the arm's."""
    policy = {"type": "tabletop-expert"}
    config = RecordConfig.from_dict({"robot": arm(size, seed, **params), "policy": policy,
                                     "out": path, "episodes": episodes})
    robot = make_robot(config.robot)
    with robot, open_demo_cache(config) as cache:
        return record_demos(robot, build_demo_policy(config.policy, robot), cache, episodes, "expert")


@pytest.fixture(scope="session")
def small_demos(tmp_path_factory):
    """12 expert episodes at 32x32 (the smallest frame the tiny VLA takes)."""
    path = tmp_path_factory.mktemp("demos") / "small"
    stats = record(path, 12, 32)
    assert stats.episodes == 12 and stats.successful == 12
    return path
