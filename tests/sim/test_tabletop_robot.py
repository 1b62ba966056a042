"""The tabletop arm keeps the hal.Robot contract: specs, guards, clamping, watchdog, faults, real time."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import time
from pathlib import Path

import numpy as np
import pytest

import sim.robots  # noqa: F401  registers sim-tabletop with the rest of the simulated robots
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import make_robot, probe_robot, robot_class, validate_robot
from hal.robot import RobotError
from hal.runspec import RunSpec
from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig

REPO = Path(__file__).resolve().parents[2]
KEYS = {"state", "image.front", "instruction", "reward", "terminated", "truncated", "success", "timestamp"}


def _robot(**params) -> TabletopRobot:
    return make_robot(RobotConfig("table-t", "sim-tabletop", params))


def _wait_for(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True


def test_robot_declares_specs_before_connecting():
    robot = _robot(image_height=64, image_width=80)
    assert not robot.is_connected and robot.control_hz == 50.0 and robot.episode_steps == 250
    action = robot.action_spec
    assert action.names == ("ee_vx", "ee_vy") and action.shape == (2,)
    np.testing.assert_array_equal(action.low, [-1, -1])
    np.testing.assert_array_equal(action.max_delta, [1, 1])
    spec = {k: (v.shape, v.dtype) for k, v in robot.observation_spec.items()}
    assert spec == {
        "state": ((20,), "float32"),
        "image.front": ((64, 80, 3), "uint8"),
        "instruction": ((), "str"),
        "reward": ((), "float32"),
        "terminated": ((), "bool"),
        "truncated": ((), "bool"),
        "success": ((), "bool"),
    }
    with pytest.raises(RobotError, match="not connected"):
        robot.observe()
    blind = _robot(cameras=[], goal_in_state="relative", task="reach")
    assert "image.front" not in blind.observation_spec and blind.observation_spec["state"].shape == (29,)
    assert blind.episode_steps == 150


def test_robot_observes_the_task_and_clamps_actions():
    with _robot(max_delta=0.5) as robot:
        with pytest.raises(RobotError, match="already connected"):
            robot.connect()
        obs = robot.observe()
        assert set(obs) == KEYS
        assert obs["image.front"].shape == (96, 96, 3) and "block" in obs["instruction"]
        assert obs["reward"] == 0.0 and not obs["terminated"] and not obs["success"]
        sent = robot.act(np.array([3.0, -0.2]))
        np.testing.assert_allclose(sent, [0.5, -0.2])  # per-tick delta from the held command (zero)
        sent = robot.act(np.array([3.0, -0.2]))
        np.testing.assert_allclose(sent, [1.0, -0.2])  # then the limits
        assert robot.health().clamped_actions == 2 and robot.steps == 2
        obs = robot.observe()
        assert obs["reward"] != 0.0 and obs["state"][2] != 0.0  # stepped: the arm moves, reward reported
        with pytest.raises(ValueError, match="shape"):
            robot.act(np.zeros(3))
    assert not robot.is_connected
    robot.disconnect()  # twice is fine


def test_nonfinite_action_holds_and_refuses():
    with _robot(cameras=[]) as robot:
        robot.act(np.zeros(2))
        steps = robot.steps
        with pytest.raises(ValueError, match="NaN"):
            robot.act(np.array([np.nan, 0.0]))
        assert robot.health().status == "holding" and robot.steps == steps


def test_watchdog_holds_position_when_actions_stop():
    with _robot(cameras=[], watchdog_timeout_s=0.05) as robot:
        robot.act(np.array([0.8, 0.3]))
        state = robot.observe()["state"].copy()
        assert _wait_for(lambda: robot.health().watchdog_trips > 0)
        health = robot.health()
        assert health.watchdog_trips == 1 and health.status == "holding" and health.ok
        np.testing.assert_array_equal(robot.observe()["state"], state)  # the simulation stood still
        robot.act(np.zeros(2))
        assert robot.health().status == "ok"


def test_fault_file_is_a_latched_device_fault(tmp_path):
    fault = tmp_path / "estop"
    params = {"cameras": [], "fault_file": str(fault)}
    assert probe_robot(RobotConfig("t", "sim-tabletop", params)).ok
    with _robot(**params) as robot:
        robot.act(np.zeros(2))
        fault.touch()
        health = robot.health()
        assert not health.ok and health.status == "fault" and str(fault) in health.detail
        with pytest.raises(RobotError, match="faulted"):
            robot.act(np.zeros(2))
        fault.unlink()
        assert robot.health().status == "fault"  # latched until the robot is reconnected
    fault.touch()
    assert probe_robot(RobotConfig("t", "sim-tabletop", params)).status == "fault"


def test_reset_starts_a_new_episode_and_an_ended_episode_restarts_on_act():
    with _robot(cameras=[], task="reach", episode_steps=5) as robot:
        first = robot.observe()["state"].copy()
        for _ in range(5):
            robot.act(np.array([0.0, 1.0]))
        assert robot.observe()["truncated"]
        robot.act(np.zeros(2))  # the next action begins the next episode
        assert robot.episode == 1 and not robot.observe()["truncated"]
        obs = robot.reset()
        assert robot.episode == 2 and obs["reward"] == 0.0 and not obs["terminated"]
        assert not np.array_equal(obs["state"][6:14], first[6:14])  # a new layout


class _CorruptTabletop(TabletopRobot):
    """A tabletop whose camera or instruction source breaks (a driver fault the base must catch)."""

    corrupt: dict = {}  # noqa: RUF012  set per test

    def _observe(self):
        return {**super()._observe(), **self.corrupt}


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        ({"image.front": np.zeros((96, 96, 4), np.uint8)}, r"'image.front': expected uint8\[96, 96, 3\]"),
        ({"image.front": np.zeros((96, 96, 3), np.float32)}, r"'image.front'.*got float32"),
        ({"instruction": ""}, r"'instruction': empty string"),
        ({"instruction": "   "}, r"'instruction': empty string"),
        ({"instruction": b"push"}, r"'instruction': expected str"),
    ],
)
def test_bad_camera_frames_and_instructions_are_rejected_by_name(corrupt, message):
    robot = _CorruptTabletop("bad", TabletopRobotConfig(task="reach"))
    with robot:
        robot.corrupt = corrupt
        with pytest.raises(ValueError, match=message):
            robot.observe()
        robot.corrupt = {}
        assert robot.observe()["instruction"]


def test_real_time_keeps_moving_between_commands_and_stops_on_hold():
    with _robot(cameras=[], real_time=True, control_hz=100.0, watchdog_timeout_s=None) as robot:
        start = robot.steps
        robot.act(np.array([1.0, 0.0]))  # one command, then none
        x0 = float(robot.observe()["state"][4])
        assert _wait_for(lambda: robot.steps >= start + 15)  # ticks go on without actions
        moved = float(robot.observe()["state"][4]) - x0
        assert moved > 0.02  # the arm kept moving at the last commanded velocity
        robot.hold("test")  # zero velocity: the arm stops where it is
        settled = robot.steps
        assert _wait_for(lambda: robot.steps >= settled + 10)
        x1 = float(robot.observe()["state"][4])
        at = robot.steps
        assert _wait_for(lambda: robot.steps >= at + 10)
        assert abs(float(robot.observe()["state"][4]) - x1) < 2e-3
        obs = robot.reset()  # the simulation thread starts the episode
        assert robot.episode == 1 and obs["reward"] == 0.0
    assert robot._sim is None  # the thread is gone


def test_real_time_watchdog_and_episode_end_freeze_the_simulation():
    with _robot(real_time=True, control_hz=200.0, watchdog_timeout_s=0.05, episode_steps=20) as robot:
        robot.act(np.array([0.0, 1.0]))
        assert _wait_for(lambda: robot.observe()["truncated"])  # 20 ticks later, without actions
        assert robot.observe()["image.front"].shape == (96, 96, 3)  # rendered on the sim thread
        ended = robot.steps
        assert _wait_for(lambda: robot.health().watchdog_trips > 0)
        time.sleep(0.05)  # about ten control periods: an ended episode does not advance
        assert robot.steps == ended and robot.observe()["truncated"]
        robot.act(np.zeros(2))  # begins the next episode
        assert robot.episode == 1 and not robot.observe()["truncated"]


def test_params_are_validated_by_name():
    with pytest.raises(ConfigError, match=r"unknown field 'colours'; did you mean 'colors'"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"colours": ["red"]}))
    with pytest.raises(ConfigError, match=r"params.colors: unknown \['green'\]"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"colors": ["red", "green"]}))
    with pytest.raises(ConfigError, match=r"params.task must be one of push, reach, got 'stack'"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"task": "stack"}))
    with pytest.raises(ConfigError, match=r"params.image_height must be within 8..480"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"image_height": 4}))
    with pytest.raises(ConfigError,
                       match=r"params.reward must be one of distance, progress, success, got 'sparse'"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"reward": "sparse"}))
    with pytest.raises(ConfigError, match=r"params.cameras: unknown \['wrist'\]"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"cameras": ["wrist"]}))
    assert robot_class("sim-tabletop") is TabletopRobot


def test_a_proprioceptive_state_leaves_the_scene_to_the_camera():
    full, proprio = _robot(task="reach", cameras=[]), _robot(task="reach", cameras=[], state="proprio")
    assert proprio.observation_spec["state"].shape == (6,)
    assert proprio.observation_spec["privileged"].shape == full.observation_spec["state"].shape
    with full, proprio:
        a, b = full.observe(), proprio.observe()
        np.testing.assert_array_equal(b["privileged"], a["state"])  # the same scene (seed 0)
        np.testing.assert_array_equal(b["state"], a["state"][:6])  # joints, velocities, pusher x/y
        assert "privileged" not in a
        for _ in range(5):
            full.act(np.array([0.5, -0.2], np.float32))
            proprio.act(np.array([0.5, -0.2], np.float32))
        a, b = full.observe(), proprio.observe()
        np.testing.assert_array_equal(b["state"], a["state"][:6])
    with pytest.raises(ConfigError, match=r"params.state must be one of full, proprio, got 'joints'"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"state": "joints"}))
    with pytest.raises(ConfigError, match=r"keeps the goal out of the state: goal_in_state must be false"):
        validate_robot(RobotConfig("t", "sim-tabletop", {"state": "proprio", "goal_in_state": "relative"}))


def test_the_run_config_names_a_valid_tabletop_robot():
    spec = RunSpec.from_yaml(REPO / "config" / "sim_tabletop.yaml", ignore=("train",))
    robots = [r for r in spec.robots if r.type == "sim-tabletop"]
    assert robots and all(validate_robot(r) is TabletopRobot for r in robots)
