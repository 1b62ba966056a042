"""The ``rill.discovery`` plugin for ROS 2: robots seen on the ROS graph, for ``rill hal list``.

A robot is a namespace with a published ``sensor_msgs/JointState`` topic; its config names the
joints of one message read from it, the camera topic of the same namespace (raw preferred to
compressed), the command interface a controller listens on (``JointTrajectory`` preferred to a
``Float64MultiArray`` ``.../commands``), and an instruction topic if there is one. Without rclpy
(no ROS 2 sourced) it finds nothing, quietly. It watches the graph for up to
``RILL_ROS_DISCOVERY_S`` seconds (default 2; DDS discovery takes a moment), in a ROS context of
its own, so it never disturbs a node running in the same process.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from hal.config import RobotConfig

log = logging.getLogger(__name__)

JOINT_STATE = "sensor_msgs/msg/JointState"
IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
FORWARD = "std_msgs/msg/Float64MultiArray"
STRING = "std_msgs/msg/String"


def _namespace(topic: str) -> str:
    return topic.rsplit("/", 1)[0]


def _in(namespace: str, topic: str) -> bool:
    return topic.startswith(namespace + "/")


def robot_name(namespace: str) -> str:
    """``ros2`` for the root namespace, ``ros2-arm1`` for ``/arm1``."""
    return "ros2" + namespace.replace("/", "-") if namespace else "ros2"


def robots_from_graph(topics: dict[str, list[str]], published: set[str],
                      joint_names: dict[str, list[str]]) -> list[RobotConfig]:
    """Robot configs from a graph snapshot: topic -> types, the topics someone publishes, and the
    joint names read from each ``JointState`` topic. Pure: the unit of the discovery logic."""
    def having(kind: str, namespace: str, with_publisher: bool) -> list[str]:
        return sorted(t for t, types in topics.items() if kind in types and _in(namespace, t)
                      and (t in published or not with_publisher))

    robots = []
    for state_topic in sorted(t for t, types in topics.items() if JOINT_STATE in types and t in published):
        ns = _namespace(state_topic)
        params: dict[str, Any] = {"joint_states_topic": state_topic}
        if joint_names.get(state_topic):
            params["joints"] = list(joint_names[state_topic])
        raw, compressed = having(IMAGE, ns, True), having(COMPRESSED, ns, True)
        if raw:
            params["image_topic"] = next((t for t in raw if t.endswith("image_raw")), raw[0])
        elif compressed:
            params["image_topic"], params["compressed"] = compressed[0], True
        else:
            params["image_topic"] = ""
        trajectory = having(TRAJECTORY, ns, False)
        forward = [t for t in having(FORWARD, ns, False) if t.endswith("/commands")]
        if trajectory:
            params["command"] = "trajectory"
            params["trajectory_topic"] = next((t for t in trajectory if "joint_trajectory_controller" in t),
                                              trajectory[0])
        elif forward:
            params["command"], params["forward_topic"] = "forward", forward[0]
        instruction = [t for t in having(STRING, ns, False) if t.endswith("/instruction")]
        if instruction:
            params["instruction_topic"] = instruction[0]
        robots.append(RobotConfig(robot_name(ns), "ros2", params))
    return robots


def discover_ros2_robots(wait_s: float | None = None) -> list[RobotConfig]:
    """ROS 2 robots visible now (see the module docstring); ``[]`` without rclpy."""
    try:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.signals import SignalHandlerOptions
        from sensor_msgs.msg import JointState
    except ImportError:
        return []
    import agent.ros.robot  # noqa: F401  registers the ros2 robot type for hal list's probe

    if wait_s is None:
        wait_s = float(os.environ.get("RILL_ROS_DISCOVERY_S", "2"))
    context = rclpy.Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    node = executor = None
    try:
        node = rclpy.create_node("rill_discovery", context=context, start_parameter_services=False,
                                 enable_rosout=False)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        deadline = time.monotonic() + wait_s
        found_at = None
        while time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            states = [t for t, types in node.get_topic_names_and_types() if JOINT_STATE in types
                      and node.count_publishers(t) > 0]
            if states and found_at is None:
                found_at = time.monotonic()
            if found_at is not None and time.monotonic() - found_at > 0.3:
                break  # the rest of the robot's topics show up with its joint states
        topics = {t: list(types) for t, types in node.get_topic_names_and_types()}
        published = {t for t in topics if node.count_publishers(t) > 0}
        names: dict[str, list[str]] = {}
        subs = []
        for topic in [t for t in topics if JOINT_STATE in topics[t] and t in published]:
            def remember(msg, topic=topic):
                names.setdefault(topic, list(msg.name))
            from agent.ros.qos import sensor_qos

            subs.append(node.create_subscription(JointState, topic, remember, sensor_qos()))
        end = time.monotonic() + min(1.0, wait_s)
        while subs and len(names) < len(subs) and time.monotonic() < end:
            executor.spin_once(timeout_sec=0.05)
        return robots_from_graph(topics, published, names)
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=0.5)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
