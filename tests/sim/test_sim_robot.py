"""The simulated MuJoCo robot keeps the hal.Robot contract: specs, guards, clamping, watchdog, faults."""

from __future__ import annotations

import time

import numpy as np
import pytest

from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.registry import make_robot, probe_robot, robot_class, validate_robot
from hal.robot import RobotError
from sim.robots import MujocoRobot, MujocoRobotConfig, discover_simulated_robots


def _hopper(**params) -> MujocoRobot:
    return make_robot(RobotConfig("hopper-t", "sim-mujoco", {"env_id": "Hopper-v5", **params}))


def test_sim_robot_declares_specs_before_connecting():
    robot = _hopper()
    assert not robot.is_connected
    assert robot.control_hz == pytest.approx(125.0)  # Hopper's dt is 8 ms
    assert robot.action_spec.names == ("thigh_joint", "leg_joint", "foot_joint")
    spec = robot.observation_spec
    assert spec["state"].shape == (11,) and spec["state"].dtype == "float32"
    assert {k: (v.shape, v.dtype) for k, v in spec.items() if k != "state"} == {
        "reward": ((), "float32"),
        "terminated": ((), "bool"),
        "truncated": ((), "bool"),
    }
    with pytest.raises(RobotError, match="not connected"):
        robot.observe()


def test_sim_robot_observes_task_signals_and_clamps_actions():
    with _hopper(max_delta=0.5) as robot:
        with pytest.raises(RobotError, match="already connected"):
            robot.connect()
        obs = robot.observe()
        assert set(obs) == {"state", "reward", "terminated", "truncated", "timestamp"}
        assert obs["reward"] == 0.0 and not obs["terminated"]
        sent = robot.act(np.array([3.0, -3.0, 0.2]))
        np.testing.assert_allclose(sent, [0.5, -0.5, 0.2])  # per-tick delta from the first command
        sent = robot.act(np.array([3.0, -3.0, 0.2]))
        np.testing.assert_allclose(sent, [1.0, -1.0, 0.2])  # then the joint limits
        assert robot.health().clamped_actions == 2
        assert robot.observe()["reward"] != 0.0  # the env stepped and reported its reward
        with pytest.raises(ValueError, match="shape"):
            robot.act(np.zeros(4))
    assert not robot.is_connected
    robot.disconnect()  # twice is fine


def test_sim_robot_nonfinite_action_holds_and_refuses():
    with _hopper() as robot:
        robot.act(np.zeros(3))
        steps = robot.steps
        with pytest.raises(ValueError, match="NaN"):
            robot.act(np.array([np.nan, 0, 0]))
        assert robot.health().status == "holding" and robot.steps == steps


def test_sim_robot_watchdog_holds_position_when_actions_stop():
    with _hopper(watchdog_timeout_s=0.05) as robot:
        robot.act(np.full(3, 0.3))
        state = robot.observe()["state"].copy()
        deadline = time.monotonic() + 10
        while robot.health().watchdog_trips == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        health = robot.health()
        assert health.watchdog_trips == 1 and health.status == "holding" and health.ok
        np.testing.assert_array_equal(robot.observe()["state"], state)  # the simulation stood still
        robot.act(np.zeros(3))
        assert robot.health().status == "ok"


def test_sim_robot_fault_file_is_a_latched_device_fault(tmp_path):
    fault = tmp_path / "estop"
    params = {"env_id": "Hopper-v5", "fault_file": str(fault)}
    assert probe_robot(RobotConfig("h", "sim-mujoco", params)).ok
    with _hopper(fault_file=str(fault)) as robot:
        robot.act(np.zeros(3))
        fault.touch()
        health = robot.health()
        assert not health.ok and health.status == "fault" and str(fault) in health.detail
        with pytest.raises(RobotError, match="faulted"):
            robot.act(np.zeros(3))
        fault.unlink()
        assert robot.health().status == "fault"  # latched until the robot is reconnected
        fault.touch()
        assert probe_robot(RobotConfig("h", "sim-mujoco", params)).status == "fault"


def test_sim_robot_reset_starts_a_new_episode():
    with _hopper() as robot:
        for _ in range(5):
            robot.act(np.full(3, 0.5))
        obs = robot.reset()
        assert obs["reward"] == 0.0 and not obs["terminated"] and robot.episode == 1


def test_sim_robot_params_are_validated_by_name():
    with pytest.raises(ConfigError, match=r"unknown field 'env_idd'; did you mean 'env_id'"):
        validate_robot(RobotConfig("h", "sim-mujoco", {"env_idd": "Hopper-v5"}))
    with pytest.raises(ConfigError, match=r"params.control_hz must be > 0"):
        validate_robot(RobotConfig("h", "sim-mujoco", {"control_hz": -5}))
    assert robot_class("sim-mujoco") is MujocoRobot and MujocoRobot.config_class is MujocoRobotConfig


def test_simulated_robots_are_always_discovered():
    found = discover_simulated_robots()
    assert found and all(r.type == "sim-mujoco" for r in found)
