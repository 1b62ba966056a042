"""Discovery on a real graph: a robot's drivers in namespace /arm1 are found by their topics, with
the joint names of one of their messages, and ``rill hal list`` shows the robot."""

from __future__ import annotations

import json

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from agent.ros.conversions import image_msg, joint_state_msg
from agent.ros.discovery import discover_ros2_robots


def test_a_robot_is_found_by_its_topics(ros, spinner, capsys, monkeypatch):
    node = spinner.add(ros.create_node("drivers", namespace="/arm1"))
    joints = node.create_publisher(JointState, "joint_states", 10)
    camera = node.create_publisher(Image, "camera/image_raw", qos_profile_sensor_data)
    controller = "joint_trajectory_controller/joint_trajectory"
    node.create_subscription(JointTrajectory, controller, lambda m: None, 10)

    def publish():
        joints.publish(joint_state_msg(["shoulder", "elbow"], [0.0, 0.0]))
        camera.publish(image_msg(np.zeros((4, 4, 3), np.uint8)))
    timer = node.create_timer(0.05, publish)
    try:
        robots = discover_ros2_robots(wait_s=5.0)
        found = {r.name: r for r in robots}
        assert "ros2-arm1" in found, robots
        arm = found["ros2-arm1"]
        assert arm.type == "ros2"
        assert arm.params == {"joint_states_topic": "/arm1/joint_states", "joints": ["shoulder", "elbow"],
                              "image_topic": "/arm1/camera/image_raw", "command": "trajectory",
                              "trajectory_topic": "/arm1/joint_trajectory_controller/joint_trajectory"}

        from agent.cli import main

        # A second discovery in one process waits for the drivers' next announcement (about 3 s).
        monkeypatch.setenv("RILL_ROS_DISCOVERY_S", "8")
        assert main(["hal", "list", "--json"]) == 0
        rows = json.loads(capsys.readouterr().out)["robots"]
        listed = {r["name"]: r for r in rows}
        assert listed["ros2-arm1"]["type"] == "ros2" and listed["ros2-arm1"]["source"] == "discovered"
        assert listed["ros2-arm1"]["ok"], listed["ros2-arm1"]
    finally:
        timer.cancel()
