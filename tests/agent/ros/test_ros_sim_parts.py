"""The parts of ``sim_node`` and the reaching demo that need no ROS, on a real MuJoCo Reacher:
joint names from the model, position commands through a PD law, trajectory following, the
instruction, and the scripted policy's inverse kinematics."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

from agent.ros.reach_policy import ScriptedReachPolicy, two_link_ik
from agent.ros.sim_joints import (
    CommandFollower,
    MujocoJoints,
    NotAMujocoRobotError,
    mujoco_handles,
    pd_torque,
)
from agent.ros.sim_node import set_episode_steps
from agent.ros.sim_tasks import SceneTask, parse_goal
from policies.base import PolicyInputError
from sim.robots import MujocoRobot, MujocoRobotConfig


@pytest.fixture
def reacher():
    robot = MujocoRobot("arm", MujocoRobotConfig(env_id="Reacher-v5", watchdog_timeout_s=None))
    robot.connect()
    yield robot
    robot.disconnect()


def test_joint_names_and_actuated_joints_come_from_the_model(reacher):
    joints = MujocoJoints(*mujoco_handles(reacher))
    assert joints.names == ["joint0", "joint1", "target_x", "target_y"]
    assert joints.commanded == ["joint0", "joint1"]
    assert not joints.position_servos  # Reacher has torque motors: sim_node puts a PD law in front
    assert joints.positions().shape == (4,)


def test_a_pd_law_brings_the_torque_driven_arm_to_a_position_target(reacher):
    joints = MujocoJoints(*mujoco_handles(reacher))
    target = np.array([1.0, -1.5])
    for _ in range(40):
        reacher.act(pd_torque(target, joints.commanded_positions(), joints.commanded_velocities(), 5.0, 0.3))
    assert np.allclose(joints.commanded_positions(), target, atol=0.02)


def test_a_robot_without_mujoco_is_refused():
    with pytest.raises(NotAMujocoRobotError, match="exposes no MuJoCo model"):
        mujoco_handles(object())


def test_episode_length_can_be_set():
    robot = MujocoRobot("arm", MujocoRobotConfig(env_id="Reacher-v5", watchdog_timeout_s=None))
    assert set_episode_steps(robot.env, 7)
    robot.connect()
    for _ in range(8):
        robot.act(np.zeros(2, np.float32))
    assert robot.episode == 1
    robot.disconnect()


def test_trajectories_are_followed_in_time_from_their_receipt():
    follower = CommandFollower(["a", "b"])
    current = np.array([0.0, 0.0])
    assert np.array_equal(follower.target(10.0, current), current)  # never commanded: stay
    # Only joint b, points at 0.1 s and 0.2 s after receipt at t=10: a keeps its target.
    follower.trajectory(["b"], np.array([0.1, 0.2]), np.array([[1.0], [3.0]]), 10.0, current)
    assert np.allclose(follower.target(10.05, current), [0.0, 0.5])
    assert np.allclose(follower.target(10.15, current), [0.0, 2.0])
    assert np.allclose(follower.target(99.0, current), [0.0, 3.0])  # after the last point: hold it
    follower.trajectory(["c"], np.array([0.1]), np.array([[1.0]]), 11.0, current)
    assert follower.rejected == 1
    follower.forward([0.5, 0.6])
    assert np.allclose(follower.target(12.0, current), [0.5, 0.6])
    follower.forward([1.0])  # wrong length: refused, the last target stays
    assert follower.rejected == 2 and np.allclose(follower.target(12.0, current), [0.5, 0.6])


def test_the_reaching_scene_instructs_its_target_and_measures_the_distance(reacher):
    model, data = mujoco_handles(reacher)
    task = SceneTask(model, data)
    goal = parse_goal(task.instruction())
    assert np.allclose(goal, data.body("target").xpos[:2], atol=1e-3)
    assert task.distance() == pytest.approx(float(np.linalg.norm(data.body("fingertip").xpos[:2] - goal)),
                                            abs=2e-3)
    assert SceneTask(model, data, "pick up the cube").instruction() == "pick up the cube"


@pytest.mark.parametrize("goal", [(0.15, 0.05), (-0.1, -0.12), (0.02, 0.2), (0.0, -0.05)])
def test_inverse_kinematics_puts_the_tip_on_the_goal(goal):
    q = two_link_ik(np.array(goal), (0.1, 0.11), np.zeros(2))
    tip = [0.1 * math.cos(q[0]) + 0.11 * math.cos(q[0] + q[1]),
           0.1 * math.sin(q[0]) + 0.11 * math.sin(q[0] + q[1])]
    assert np.allclose(tip, goal, atol=1e-6)


def test_the_scripted_policy_plans_toward_the_goal_and_refuses_without_one():
    policy = ScriptedReachPolicy(2, period_s=0.05, chunk_size=8)
    obs = {"state": np.zeros(4, np.float32), "instruction": "reach the target at x=0.150 y=0.050",
           "timestamp": 1.0}
    chunk = policy.act(obs)
    target = two_link_ik(np.array([0.15, 0.05]), (0.1, 0.11), np.zeros(2))
    errors = np.linalg.norm(chunk.actions - target, axis=1)
    assert chunk.actions.shape == (8, 2) and np.all(np.diff(errors) < 0)
    with pytest.raises(PolicyInputError, match="no goal in the instruction ''"):
        policy.act({"state": np.zeros(4, np.float32), "instruction": ""})
