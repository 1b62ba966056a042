"""A simulated camera slower than the control loop (``sim.camera_rate``), on the tabletop arm with
two cameras: new frames at each episode's start and every ``camera_every`` steps, the last ones
(read-only) in between, and exactly the frames a camera at the control rate gives on those steps."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np
import pytest

from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import validate_robot
from sim.camera_rate import CameraRate
from sim.tabletop.env import TabletopEnv

CAMERAS = ("front", "top")


def _frames(every: int) -> list[dict[str, np.ndarray]]:
    env = TabletopEnv(task="reach", cameras=CAMERAS, camera_every=every)
    out = []
    try:
        for seed in (1, 2):
            obs, _ = env.reset(seed=seed)
            out.append(obs)
            for t in range(7):
                obs, *_ = env.step(np.array([0.8, 0.6 * (-1) ** t], np.float32))
                out.append(obs)
    finally:
        env.close()
    return out


def test_the_tabletop_cameras_give_new_frames_every_few_steps_and_the_last_ones_between():
    every_tick, slow = _frames(1), _frames(3)
    for i, obs in enumerate(slow):
        step = i % 8  # steps since the episode's reset
        due = i - step + step - step % 3  # the step whose frames the camera last gave
        for cam in CAMERAS:
            frame = obs[f"image.{cam}"]
            np.testing.assert_array_equal(frame, every_tick[due][f"image.{cam}"])
            assert not frame.flags.writeable
            if i != due:
                assert frame is slow[due][f"image.{cam}"]  # the same frame, handed out again
    assert not np.array_equal(every_tick[3]["image.front"], every_tick[2]["image.front"])  # the arm moved
    assert every_tick[1]["image.front"].flags.writeable  # at the control rate nothing changes


def test_camera_every_is_checked_by_name():
    with pytest.raises(ValueError, match="camera_every must be a positive integer, got 0"):
        CameraRate(0)
    with pytest.raises(ValueError, match=r"camera_every must be a positive integer, got 2\.0"):
        TabletopEnv(camera_every=2.0)
    with pytest.raises(ConfigError, match=r"params.camera_every must be a positive integer, got -1"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"camera_every": -1}))
