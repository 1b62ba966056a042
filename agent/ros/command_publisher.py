"""``CommandPublisher``: what a ``Ros2Robot`` tells its joint controllers.

Either a ``trajectory_msgs/JointTrajectory`` for a ros2_control ``joint_trajectory_controller``
(the command for the next tick plus up to ``lookahead`` planned actions of the current chunk, one
control period apart), or a ``std_msgs/Float64MultiArray`` for a ``forward_command_controller``
(the configured joint order). A hold is one target, the positions the robot chose to stay at. On
close it waits briefly for the subscribers to acknowledge what was sent, so the hold a robot
publishes as it disconnects reaches the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.ros.conversions import forward_command_msg, joint_trajectory_msg
from agent.ros.log_throttle import LogThrottle
from agent.ros.robot_config import Ros2RobotConfig
from hal.specs import ActionSpec

log = logging.getLogger(__name__)

#: A planner: ``plan(n)`` returns up to ``n`` actions the current chunk holds after this tick's.
Plan = Callable[[int], list[np.ndarray]]


class CommandPublisher:
    """The command publisher of robot ``robot_name`` (named in log lines).

    ``sent`` counts the commands published (holds excluded); ``last_published`` is ``"command"``
    or ``"hold"``: what the robot was last told (``""`` before anything).
    """

    def __init__(self, robot_name: str, config: Ros2RobotConfig, action_spec: ActionSpec) -> None:
        self.robot_name = robot_name
        self.config = config
        self._action_spec = action_spec
        self.sent = 0
        self.last_published = ""
        self._throttle = LogThrottle()
        self._node: Any = None
        self._pub: Any = None

    def start(self, node: Any) -> None:
        """Create the publisher on ``node``, of the type ``config.command`` names."""
        from std_msgs.msg import Float64MultiArray
        from trajectory_msgs.msg import JointTrajectory

        from agent.ros.qos import reliable_qos

        c = self.config
        self._node = node
        if c.command == "trajectory":
            self._pub = node.create_publisher(JointTrajectory, c.trajectory_topic, reliable_qos())
        else:
            topic = c.velocity_topic if c.command == "velocity" else c.forward_topic
            self._pub = node.create_publisher(Float64MultiArray, topic, reliable_qos())

    def close(self, ack_timeout_s: float = 0.5) -> None:
        """Wait up to ``ack_timeout_s`` for the last message to be acknowledged; destroy the publisher."""
        from rclpy.duration import Duration

        if self._pub is None:
            return
        self._pub.wait_for_all_acked(Duration(seconds=ack_timeout_s))  # the hold gets there
        self._node.destroy_publisher(self._pub)
        self._pub = None

    def send(self, command: np.ndarray, plan: Plan | None = None) -> None:
        """Publish one clamped command; a trajectory carries up to ``lookahead`` points of ``plan``."""
        if not np.all(np.isfinite(command)):
            if self._throttle("nonfinite"):
                log.error("robot %s: refusing to publish a non-finite command %s", self.robot_name, command)
            return
        if self._pub is None:
            return
        c = self.config
        if c.command in ("forward", "velocity"):
            self._pub.publish(forward_command_msg(command))
        else:
            points = [np.asarray(command, np.float32)]
            if plan is not None and c.lookahead:
                points.extend(self._bounded(points[0], plan(c.lookahead)))
            self._pub.publish(joint_trajectory_msg(c.joints, np.stack(points), 1.0 / c.control_hz))
        self.sent += 1
        self.last_published = "command"

    def _bounded(self, start: np.ndarray, plan: list[np.ndarray]) -> list[np.ndarray]:
        """Look-ahead points held to the same joint limits and per-tick delta as commands."""
        out, prev = [], start
        for action in plan:
            action = np.asarray(action, np.float32).reshape(-1)
            if action.shape != start.shape or not np.all(np.isfinite(action)):
                break
            prev = self._action_spec.clamp(action, prev)
            out.append(prev)
        return out

    def hold(self, target: np.ndarray) -> None:
        """Publish ``target`` alone: a trajectory of one point, with no look-ahead to run on into."""
        if self._pub is None:
            return
        c = self.config
        if c.command in ("forward", "velocity"):
            self._pub.publish(forward_command_msg(target))
        else:
            self._pub.publish(joint_trajectory_msg(c.joints, target[None, :], 1.0 / c.control_hz))
        self.last_published = "hold"
