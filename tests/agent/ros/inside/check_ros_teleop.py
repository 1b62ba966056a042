"""Teleoperated demonstrations over a real ROS 2 graph: a leader node publishes commands, the
``TeleopPolicy`` drives the MuJoCo tabletop arm through the control loop in real time, and the
recorder keeps what the arm was sent as ``human`` demonstrations. When the leader goes quiet the
episode ends as aborted: nothing after the last command is recorded. Malformed commands (a missing
joint, a non-finite value, the wrong width) are refused and counted, never acted on."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Float32MultiArray

from agent.demos.episodes import read_demos
from agent.demos.record import RecordConfig, open_demo_cache, record_demos
from agent.ros.teleop import TeleopPolicy, TeleopQuietError
from hal.config import RobotConfig
from hal.registry import make_robot

HZ, LEAD_S = 50.0, 1.2


def _arm():
    params = {"task": "reach", "cameras": ["front"], "image_height": 24, "image_width": 24, "control_hz": HZ,
              "real_time": True, "episode_steps": 400, "max_delta": 1.0}
    return make_robot(RobotConfig("teleop-arm", "sim-tabletop", params))


def _command(t: float) -> list[float]:
    return [round(0.5 * math.sin(2 * t), 3), round(0.4 * math.cos(2 * t), 3)]


def test_a_leader_drives_the_arm_and_its_silence_aborts_the_episode(spinner, tmp_path, wait):
    import rclpy

    leader = spinner.add(rclpy.create_node("leader"))
    pub = leader.create_publisher(JointState, "/leader/joint_states", 10)
    listener = spinner.add(rclpy.create_node("teleop_listener"))
    robot = _arm()
    policy = TeleopPolicy(robot.action_spec, 1 / HZ, topic="/leader/joint_states", node=listener)
    with pytest.raises(TeleopQuietError, match="no command within"):
        policy.act({"timestamp": time.monotonic()})
    sent: set[tuple[float, float]] = set()
    publishing = {"until": math.inf}

    def publish() -> None:
        t = time.monotonic()
        if t > publishing["until"]:
            return
        cmd = _command(t)
        sent.add(tuple(np.float32(cmd)))
        pub.publish(JointState(name=["ee_vy", "ee_vx", "gripper"], position=[cmd[1], cmd[0], 0.0]))
        # What a broken leader sends now and then: refused, never acted on
        pub.publish(JointState(name=["ee_vx"], position=[0.9]))
        pub.publish(JointState(name=["ee_vx", "ee_vy"], position=[float("nan"), 0.9]))

    leader.create_timer(1 / HZ, publish)
    assert wait(lambda: policy.received > 5, timeout=10), "no teleop command arrived"
    config = RecordConfig.from_dict({"robot": {"name": "a", "type": "sim-tabletop"}, "source": "human",
                                     "policy": {"type": "teleop"}, "out": tmp_path / "demos"})
    with robot, open_demo_cache(config) as cache:
        started = time.monotonic()
        publishing["until"] = started + LEAD_S  # the leader lets go LEAD_S after recording starts
        stats = record_demos(robot, policy, cache, 1, "human", max_ticks=int(4 * HZ))
    took = time.monotonic() - started
    assert stats.episodes == 1 and stats.aborted == 1, stats
    assert policy.refused["missing joints"] > 10 and policy.refused["non-finite"] > 10, policy.refused
    (ep,) = read_demos(tmp_path / "demos", require_success=False).episodes
    assert ep.source == "human" and ep.aborted and ep.steps[-1].truncated
    actions = ep.actions()
    # Every action recorded is one the leader commanded (the arm's bound of 1.0 per tick never binds)
    assert all(tuple(a) in sent for a in actions), [tuple(a) for a in actions if tuple(a) not in sent][:3]
    # Real time, and nothing after the leader fell silent: at most its time plus the timeout
    assert 0.5 * LEAD_S * HZ < ep.length <= (LEAD_S + policy.timeout_s) * HZ + 5, ep.length
    assert took >= LEAD_S
    assert ep.frames("front").shape == (ep.length, 24, 24, 3)


def test_a_joystick_array_of_the_wrong_width_is_refused(spinner, wait):
    import rclpy

    node = spinner.add(rclpy.create_node("joystick"))
    pub = node.create_publisher(Float32MultiArray, "/joy/cmd", 10)
    robot = _arm()
    policy = TeleopPolicy(robot.action_spec, 1 / HZ, topic="/joy/cmd", message="float32_array", node=node)
    assert wait(lambda: pub.get_subscription_count() > 0, timeout=10)
    pub.publish(Float32MultiArray(data=[0.1, 0.2, 0.3]))
    assert wait(lambda: policy.refused["wrong width"] == 1, timeout=5), policy.refused
    pub.publish(Float32MultiArray(data=[0.25, -2.0]))
    assert wait(lambda: policy.received == 1, timeout=5)
    chunk = policy.act({"timestamp": time.monotonic()})
    np.testing.assert_allclose(chunk.actions, [[0.25, -1.0], [0.25, -1.0]])  # clipped to the arm's limits
