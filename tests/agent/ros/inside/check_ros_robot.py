"""``Ros2Robot`` on a real ROS 2 graph (rclpy, Fast DDS on loopback): a driver node in this process
publishes what a robot's drivers publish and listens for commands. Joint states by name, images,
commands and look-ahead; and the bad inputs: a missing joint, an unsupported encoding, messages
too old, no messages at all, a driver that goes down. The loop never acts on data it lacks."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray, String
from trajectory_msgs.msg import JointTrajectory

from agent.loop import ControlLoop, LoopConfig
from agent.ros.agent_node import planned_actions
from agent.ros.conversions import image_msg, joint_state_msg
from agent.ros.robot import Ros2Robot, Ros2RobotConfig
from agent.testing.policies import ReplanningPolicy

TRAJ = "/joint_trajectory_controller/joint_trajectory"
FWD = "/forward_position_controller/commands"


class Driver:
    """What a robot's drivers do: publish joint states, images, an instruction; record commands."""

    def __init__(self, spinner) -> None:
        import rclpy

        self.node = spinner.add(rclpy.create_node("driver"))
        self.joints = self.node.create_publisher(JointState, "/joint_states", 10)
        self.image = self.node.create_publisher(Image, "/camera/image_raw", qos_profile_sensor_data)
        self.instruction = self.node.create_publisher(String, "/instruction", 10)
        self.trajectories: list[JointTrajectory] = []
        self.forwards: list[Float64MultiArray] = []
        self.node.create_subscription(JointTrajectory, TRAJ, self.trajectories.append, 10)
        self.node.create_subscription(Float64MultiArray, FWD, self.forwards.append, 10)

    def now(self, age_s: float = 0.0):
        t = self.node.get_clock().now().nanoseconds - int(age_s * 1e9)
        from builtin_interfaces.msg import Time

        return Time(sec=t // 10**9, nanosec=t % 10**9)

    def publish(self, names=("extra", "elbow", "shoulder"), pos=(9.0, 0.2, 0.1), image=True, age_s=0.0,
                encoding="bgr8"):
        self.joints.publish(joint_state_msg(list(names), list(pos), [0.0] * len(names), self.now(age_s)))
        if image:
            rgb = np.zeros((8, 8, 3), np.uint8)
            rgb[..., 0] = 200
            if encoding in ("rgb8", "bgr8", "mono8"):
                msg = image_msg(rgb, encoding, self.now(age_s))
            else:
                msg = image_msg(rgb, "rgb8", self.now(age_s))
                msg.encoding = encoding
            self.image.publish(msg)


@pytest.fixture
def driver(spinner, wait):
    d = Driver(spinner)
    yield d


def _robot(**overrides) -> Ros2Robot:
    params = {"joints": ["shoulder", "elbow"], "control_hz": 50.0, "image_height": 8, "image_width": 8,
              "lookahead": 3, "connect_timeout_s": 0.0, "max_age_s": 0.3, **overrides}
    return Ros2Robot("arm", Ros2RobotConfig(**params))


@pytest.fixture
def robot():
    robots = []

    def make(**overrides):
        robots.append(_robot(**overrides))
        return robots[-1]

    yield make
    for r in robots:
        r.disconnect()


def _feed(driver, robot, wait, **kw) -> None:
    """Publish until the robot has fresh data (DDS matching takes a moment)."""
    def fresh():
        driver.publish(**kw)
        return robot.sensor_problem() is None
    assert wait(fresh, timeout=10, period=0.05), robot.sensor_problem()


def test_joint_states_are_read_by_name_and_commands_carry_the_plan(driver, robot, wait):
    arm = robot()
    arm.connect()
    _feed(driver, arm, wait)
    obs = arm.observe()
    assert obs["state"].tolist() == pytest.approx([0.1, 0.2, 0.0, 0.0])  # shoulder, elbow: by name
    assert obs["image.front"].shape == (8, 8, 3) and obs["image.front"][0, 0].tolist() == [200, 0, 0]
    assert time.monotonic() - obs["timestamp"] < 0.3
    arm.plan = lambda n: [np.array([0.12 + 0.01 * i, 0.2], np.float32) for i in range(1, 10)][:n]
    sent = arm.act(np.array([0.11, 0.2], np.float32))
    assert wait(lambda: driver.trajectories)
    traj = driver.trajectories[-1]
    assert traj.joint_names == ["shoulder", "elbow"] and len(traj.points) == 4  # the command + 3 planned
    times = [p.time_from_start.sec + p.time_from_start.nanosec * 1e-9 for p in traj.points]
    assert times == pytest.approx([0.02, 0.04, 0.06, 0.08])
    assert traj.points[0].positions.tolist() == pytest.approx(sent.tolist())
    assert traj.header.stamp.sec == 0 and traj.header.stamp.nanosec == 0  # start on receipt


def test_forward_commands_follow_the_configured_joint_order(driver, robot, wait):
    arm = robot(command="forward", image_topic="")
    arm.connect()
    _feed(driver, arm, wait, image=False)
    arm.act(np.array([0.15, 0.25], np.float32))
    assert wait(lambda: driver.forwards)
    assert driver.forwards[-1].data.tolist() == pytest.approx([0.15, 0.25])


def test_the_instruction_arrives(driver, robot, wait):
    arm = robot(image_topic="")
    arm.connect()
    _feed(driver, arm, wait, image=False)
    assert wait(lambda: (driver.instruction.publish(String(data="pick the cube")),
                         arm.observe()["instruction"] == "pick the cube")[1])


def test_a_robot_that_waits_for_its_instruction_holds_until_the_first_arrives(driver, robot, wait):
    arm = robot(image_topic="", wait_for_instruction=True)
    arm.connect()
    # joints fresh (DDS matching takes a moment), no instruction yet: held, and the problem says why
    assert wait(lambda: (driver.publish(image=False),
                         arm.sensor_problem() == "no instruction yet on /instruction")[1],
                timeout=10, period=0.05), arm.sensor_problem()
    assert arm.observe()["timestamp"] == -float("inf")
    assert wait(lambda: (driver.publish(image=False), driver.instruction.publish(String(data="wave")),
                         arm.sensor_problem() is None)[2], timeout=10, period=0.05), arm.sensor_problem()
    obs = arm.observe()
    assert obs["instruction"] == "wave" and time.monotonic() - obs["timestamp"] < 0.3


def test_a_missing_joint_is_named_and_the_robot_held(driver, robot, wait, caplog):
    arm = robot(image_topic="")
    arm.connect()
    _feed(driver, arm, wait, image=False)
    policy = ReplanningPolicy(2, chunk_size=5, period_s=0.02, latency_s=0.0)
    loop = ControlLoop(arm, policy, LoopConfig(control_hz=50, asynchronous=False))
    with caplog.at_level(logging.WARNING):
        def lacking():
            driver.publish(names=("extra", "shoulder"), pos=(0.0, 0.1), image=False)
            return arm.bad_messages["missing_joints"] > 0 and arm.sensor_problem() is not None
        assert wait(lacking, timeout=5, period=0.05)
    assert "lacks configured joint(s) ['elbow']" in caplog.text
    before = len(driver.trajectories)
    records = [loop.step(t) for t in range(5)]
    assert all(r.held and r.action is None for r in records)
    assert policy.calls == 0  # nothing was computed from the incomplete state
    assert "elbow" in arm.sensor_problem()
    # Holding publishes the position measured when the hold began, not an action.
    assert wait(lambda: len(driver.trajectories) > before)
    assert driver.trajectories[-1].points[0].positions.tolist() == pytest.approx([0.1, 0.2])
    assert len(driver.trajectories[-1].points) == 1


def test_an_unsupported_encoding_is_an_error_naming_it(driver, robot, wait, caplog):
    arm = robot()
    arm.connect()
    with caplog.at_level(logging.ERROR):
        def refused():
            driver.publish(encoding="yuv422")
            return arm.bad_messages["/camera/image_raw"] > 0
        assert wait(refused, timeout=10, period=0.05)
    assert "image encoding 'yuv422' is not supported" in caplog.text
    problem = arm.sensor_problem()
    assert "/camera/image_raw" in problem and "yuv422" in problem


def test_old_messages_are_dropped_and_counted(driver, robot, wait):
    arm = robot(image_topic="")
    arm.connect()
    assert wait(lambda: (driver.publish(image=False, age_s=2.0), arm.ages.counters()["dropped_stale"] > 2)[1],
                timeout=10, period=0.05)
    assert arm.received["/joint_states"] == 0
    assert arm.sensor_problem().startswith("no sensor data since start")


def test_no_sensor_data_holds_and_never_acts(spinner, robot, caplog, wait):
    import rclpy

    listener = spinner.add(rclpy.create_node("listener"))
    heard = []
    listener.create_subscription(JointTrajectory, TRAJ, heard.append, 10)
    arm = robot(connect_timeout_s=0.3)
    with caplog.at_level(logging.INFO):
        arm.connect()
        policy = ReplanningPolicy(2, chunk_size=5, period_s=0.02, latency_s=0.0)
        loop = ControlLoop(arm, policy, LoopConfig(control_hz=50))
        stats = loop.run(ticks=15)
    assert stats.ticks == 15 and stats.stale_observations == 15 and stats.holds == 15
    assert policy.calls == 0 and arm.commands_sent == 0
    assert "no sensor data since start" in caplog.text
    time.sleep(0.3)
    assert heard == []  # no joint state ever: nothing is commanded, the driver keeps its own hold


def test_a_driver_that_goes_down_leaves_the_robot_held_where_it_was(driver, robot, wait, caplog):
    arm = robot(image_topic="")
    arm.connect()
    _feed(driver, arm, wait, image=False)
    policy = ReplanningPolicy(2, chunk_size=10, period_s=0.02, latency_s=0.0, amplitude=0.05)
    loop = ControlLoop(arm, policy, LoopConfig(control_hz=50, asynchronous=False))
    arm.plan = lambda n: planned_actions(loop, n)
    for t in range(3):
        driver.publish(image=False)
        loop.tick = t
        assert not loop.step(t).held
    assert wait(lambda: len(driver.trajectories) == 3)
    assert all(len(m.points) == 4 for m in driver.trajectories)  # actions with their look-ahead
    time.sleep(0.5)  # the driver stops publishing
    with caplog.at_level(logging.INFO):
        record = loop.step(3)
    assert record.held and record.reason == "stale observation"
    assert "no sensor data since" in caplog.text and "s): /joint_states" in caplog.text
    assert wait(lambda: len(driver.trajectories) == 4)
    hold = driver.trajectories[-1]
    assert len(hold.points) == 1 and hold.points[0].positions.tolist() == pytest.approx([0.1, 0.2])
