"""``Ros2Robot``: a ``hal.Robot`` on ROS 2 topics, so the same control loop drives a real robot.

The robot is three parts and the ``hal.Robot`` contract that joins them:

- ``sensor_intake.SensorIntake``: joint states, camera, instruction and reward in; freshness;
  the observation, whose ``timestamp`` is that of its stalest part (``-inf`` while a part has
  never arrived), so the control loop holds rather than act on data it lacks;
- ``command_publisher.CommandPublisher``: ``JointTrajectory`` (with look-ahead) or
  ``Float64MultiArray`` commands out, holds, and the wait for the last one to be acknowledged;
- ``own_node.OwnNode``: the node it spins itself when none is given.

Holding publishes the joint positions measured when the hold began (nothing while no joint state
has ever arrived: the driver keeps its own last command), and a hold for stale data says what is
missing (``no sensor data since 14:03:05.120 (2.3 s): /joint_states``).

The robot uses the node it is given (``agent_node`` passes its own and spins it) or, made from a
config through the registry (type ``ros2``), creates and spins a node of its own.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.ros.command_publisher import CommandPublisher, Plan
from agent.ros.own_node import OwnNode
from agent.ros.robot_config import Ros2RobotConfig
from agent.ros.sensor_intake import SensorIntake
from agent.ros.timing import MessageAges
from hal.errors import ConfigError
from hal.registry import register_robot
from hal.robot import Observation, Robot, RobotHealth
from hal.specs import ActionSpec, FeatureSpec

log = logging.getLogger(__name__)

__all__ = ["Ros2Robot", "Ros2RobotConfig"]


@register_robot
class Ros2Robot(Robot):
    """A robot whose drivers speak ROS 2 topics (see the module docstring)."""

    type_name = "ros2"
    config_class = Ros2RobotConfig

    def __init__(self, name: str, config: Ros2RobotConfig | None = None, node: Any = None) -> None:
        self.config = c = config or Ros2RobotConfig()
        super().__init__(name, c.watchdog_timeout_s or None)
        self._node = node
        self._own_node: OwnNode | None = None
        low, high = c.limits
        self._action_spec = ActionSpec(tuple(c.joints), low, high, c.max_delta)
        self.sensors = SensorIntake(name, c)
        self.commands = CommandPublisher(name, c, self._action_spec)
        self._hold_target: np.ndarray | None = None
        #: Set by the node that runs the control loop: ``plan(n)`` returns up to ``n`` actions the
        #: current chunk holds after this tick's, to send as look-ahead trajectory points.
        self.plan: Plan | None = None
        #: Set by a node: ``interrupt()`` true ends ``connect``'s wait for sensor data early (SIGINT).
        self.interrupt: Callable[[], bool] | None = None

    # -- what it is ------------------------------------------------------------------------------
    @property
    def image_key(self) -> str:
        return self.sensors.image_key

    @property
    def observation_spec(self) -> dict[str, FeatureSpec]:
        return self.sensors.observation_spec

    @property
    def action_spec(self) -> ActionSpec:
        return self._action_spec

    @property
    def control_hz(self) -> float:
        return self.config.control_hz

    @property
    def node(self):
        return self._node

    def image_topic_and_type(self) -> tuple[str, str]:
        """The camera topic subscribed to and ``raw`` or ``compressed`` (image_transport naming)."""
        return self.sensors.image_topic_and_type()

    @classmethod
    def probe(cls, name: str, params: dict[str, Any] | None = None) -> RobotHealth:
        try:
            import rclpy  # noqa: F401
        except ImportError as e:
            return RobotHealth(False, "unavailable", f"rclpy cannot be imported ({e}): source ROS 2 first")
        try:
            config = Ros2RobotConfig(**(params or {}))
        except (ConfigError, TypeError) as e:
            return RobotHealth(False, "misconfigured", str(e))
        return RobotHealth(True, "available", f"{len(config.joints)} joints on {config.joint_states_topic}")

    # -- what it counts (health, tests) ----------------------------------------------------------
    @property
    def ages(self) -> MessageAges:
        return self.sensors.ages

    @property
    def received(self) -> Counter[str]:
        return self.sensors.received

    @property
    def bad_messages(self) -> Counter[str]:
        return self.sensors.bad_messages

    @property
    def commands_sent(self) -> int:
        return self.commands.sent

    @property
    def last_published(self) -> str:
        """``"command"`` or ``"hold"``: what the robot was last told."""
        return self.commands.last_published

    # -- connecting ------------------------------------------------------------------------------
    def _connect(self) -> None:
        if self._node is None:
            node_name = self.config.node_name or "rill_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name)
            self._own_node = OwnNode(node_name, self.name)
            self._node = self._own_node.node
        self.sensors.start(self._node)
        self.commands.start(self._node)
        if not self.wait_for_data(self.config.connect_timeout_s):
            log.warning("robot %s: %s; holding until they arrive", self.name, self.sensor_problem())

    def wait_for_data(self, timeout_s: float) -> bool:
        """Wait until every sensor stream (joints, camera) is fresh; False on timeout."""
        return self.sensors.wait_until_fresh(timeout_s, self.interrupt)

    def _disconnect(self) -> None:
        self.commands.close()  # first: it waits for the hold to be acknowledged
        self.sensors.stop()
        if self._own_node is not None:
            self._own_node.close()
            self._node, self._own_node = None, None

    # -- the robot hooks -------------------------------------------------------------------------
    def _observe(self) -> Observation:
        obs, measured = self.sensors.observation()
        if measured is not None:
            with self._lock:  # the first measurement gives the per-tick delta bound its start
                if self._last_command is None or not np.all(np.isfinite(self._last_command)):
                    self._last_command = measured
        return obs

    def measured_positions(self) -> np.ndarray | None:
        """The commanded joints' latest measured positions, or None before every one was seen."""
        return self.sensors.measured_positions()

    def _send(self, command: np.ndarray) -> None:
        self.commands.send(command, self.plan)

    def _hold_command(self) -> np.ndarray:
        if self.config.command == "velocity":  # a velocity-controlled arm stops where it is
            return np.zeros(self._action_spec.shape, np.float32)
        measured = self.measured_positions()
        if measured is None:
            return np.full(self._action_spec.shape, np.nan, np.float32)
        return measured

    def _hold(self) -> np.ndarray:
        if self.config.command == "velocity":
            stop = self._hold_command()
            self.commands.hold(stop)
            return stop
        if not self._holding or self._hold_target is None:
            self._hold_target = self.measured_positions()  # where the robot is as the hold begins
        if self._hold_target is None:
            return self._hold_command()  # nothing measured yet: publish nothing, the driver holds
        self.commands.hold(self._hold_target)
        return self._hold_target.copy()

    def hold(self, reason: str = "") -> None:
        """Hold position; a hold for stale data says which data and since when."""
        if reason == "stale observation":
            reason = self.sensor_problem() or reason
        super().hold(reason)

    # -- health ----------------------------------------------------------------------------------
    def sensor_problem(self) -> str | None:
        """What keeps observations from being fresh, in words; None when every stream is fresh."""
        return self.sensors.problem()

    def _health_extra(self) -> dict[str, Any]:
        return {"received": dict(self.received), "bad_messages": dict(self.bad_messages),
                "commands_sent": self.commands_sent, "last_published": self.last_published,
                **self.ages.counters(),
                "sensor_problem": self.sensor_problem() or ""}
