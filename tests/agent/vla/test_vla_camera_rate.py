"""A simulated camera slower than the control loop (``camera_every``), under the VLA actor.

In a stepped loop a chunking policy plans at the first tick of each chunk from that tick's frame.
A camera that gives a new frame every ``chunk_size`` ticks, counted from the episode's start, then
feeds the VLA the very frames it would have had from a camera at the control rate: the actor's
transitions are the same, and the simulator renders a quarter of the frames (``bench.sim_camera``
measures what that saves).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

pytest.importorskip("metaworld")

import sim.robots  # noqa: F401  registers sim-metaworld
from hal.config import RobotConfig
from hal.registry import make_robot
from tests.ports import free_port

VLA = "pretrained:metaworld-mt10"


def _transitions(tmp_path, every: int) -> list:
    from agent.vla.actor import VLAActor, VLAActorConfig
    from learners.cache import ReplayCache

    robot = RobotConfig("sawyer", "sim-metaworld", {"tasks": ["reach-v3"], "episode_steps": 40, "seed": 3,
                                                    "real_time": False, "reward": "progress",
                                                    "camera_every": every})
    run = tmp_path / f"every-{every}"
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{free_port()}", actor_id="sawyer", run_dir=run,
                            vla_path=VLA, chunk_size=4, residual_scale=0.2, pace="fast",
                            durability="os-buffered", time_limit=40)
    with make_robot(robot) as arm:
        actor = VLAActor(config, arm)
        try:
            actor.run(ticks=100)  # two episodes and a half: the camera's count restarts with each
        finally:
            actor.close()
    spool = ReplayCache(run / "actors" / "sawyer" / "spool")
    try:
        return [t for _, t in spool.iter_transitions()]
    finally:
        spool.close()


def test_a_camera_at_the_chunk_rate_leaves_the_vla_actors_transitions_as_they_were(tmp_path):
    every_tick, every_chunk = _transitions(tmp_path, 1), _transitions(tmp_path, 4)
    assert len(every_tick) == len(every_chunk) >= 20
    for a, b in zip(every_tick, every_chunk):
        np.testing.assert_array_equal(a.obs, b.obs)
        np.testing.assert_array_equal(a.action, b.action)
        np.testing.assert_array_equal(a.next_obs, b.next_obs)
        assert (a.reward, a.terminated, a.truncated) == (b.reward, b.terminated, b.truncated)


def test_an_actor_that_has_run_says_so_when_run_again(tmp_path):
    from agent.vla.actor import VLAActor, VLAActorConfig

    robot = RobotConfig("sawyer", "sim-metaworld", {"tasks": ["reach-v3"], "episode_steps": 40,
                                                    "real_time": False, "camera_every": 4})
    config = VLAActorConfig(learner=f"tcp://127.0.0.1:{free_port()}", actor_id="once", run_dir=tmp_path,
                            vla_path=VLA, chunk_size=4, pace="fast", durability="os-buffered")
    with make_robot(robot) as arm:
        actor = VLAActor(config, arm)
        try:
            assert actor.run(ticks=8)["ticks"] == 8
            with pytest.raises(RuntimeError, match="VLAActor once: this actor has run; make a new VLAActor"):
                actor.run(ticks=16)
        finally:
            actor.close()
