"""``TeleopPolicy``: a human's commands from a ROS 2 topic, acted on like any policy's chunks.

A leader arm's driver publishes its joint states (``sensor_msgs/JointState``: positions matched to
the follower's action names), or a joystick node publishes a command vector
(``std_msgs/Float32MultiArray`` or ``Float64MultiArray``, the action in the robot's order). The
policy acts with the newest command: a chunk of ``chunk_size`` copies of it (the control loop joins
chunks, so the follower tracks the leader smoothly). ``rill demos record`` with ``policy.type:
teleop`` keeps what the robot was actually sent as ``human`` demonstrations.

A command older than ``timeout_s`` is not a command: ``act`` raises ``TeleopQuietError``, the loop
holds the robot, and the recorder closes the episode as aborted: nothing is made up to fill the
gap. Messages of the wrong width, missing joints or non-finite values are refused, counted by
reason (``refused``) and logged with the topic, never acted on.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from typing import Any

import numpy as np

from agent.ros.log_throttle import LogThrottle
from hal.specs import ActionSpec
from policies.base import ActionChunk, Observation, Policy, PolicyInputError

log = logging.getLogger(__name__)

MESSAGE_TYPES = ("joint_state", "float32_array", "float64_array")


class TeleopQuietError(PolicyInputError):
    """No teleoperation command within the timeout: the operator let go, or the source died."""


class TeleopPolicy(Policy):
    """Acts with the newest command on ``topic`` (``message``: one of ``MESSAGE_TYPES``)."""

    real_time = True  # a person acts in real time: never drive a simulator faster for this source

    def __init__(self, action_spec: ActionSpec, period_s: float, topic: str = "/teleop/joint_states",
                 message: str = "joint_state", timeout_s: float = 0.5, chunk_size: int = 2,
                 node: Any = None) -> None:
        if message not in MESSAGE_TYPES:
            raise ValueError(f"teleop message must be one of {', '.join(MESSAGE_TYPES)}, got {message!r}")
        if not timeout_s > 0 or chunk_size < 2:
            raise ValueError(f"teleop needs timeout_s > 0 and chunk_size >= 2, got {timeout_s}, {chunk_size}")
        self.spec, self.period_s, self.topic, self.message = action_spec, period_s, topic, message
        self.action_dim, self.chunk_size, self.timeout_s = len(action_spec.names), chunk_size, timeout_s
        self.refused: collections.Counter[str] = collections.Counter()
        self.received = 0
        self._latest: tuple[np.ndarray, float] | None = None
        self._lock = threading.Lock()
        self._throttle = LogThrottle(5.0)
        self._own = None
        if node is None:
            from agent.ros.own_node import OwnNode

            self._own = OwnNode("rill_teleop", "teleop")
            node = self._own.node
        self._subscribe(node)

    def _subscribe(self, node: Any) -> None:
        if self.message == "joint_state":
            from sensor_msgs.msg import JointState as kind
        elif self.message == "float32_array":
            from std_msgs.msg import Float32MultiArray as kind
        else:
            from std_msgs.msg import Float64MultiArray as kind
        self._sub = node.create_subscription(kind, self.topic, self.on_message, 10)

    # -- intake (the ROS executor's thread) ---------------------------------------------------------
    def command_from(self, msg: Any) -> np.ndarray:
        """The action a message commands; ``ValueError`` naming what is wrong with it."""
        names = self.spec.names
        if self.message == "joint_state":
            by_name = dict(zip(msg.name, msg.position))
            missing = [n for n in names if n not in by_name]
            if missing:
                raise ValueError(f"missing joints {missing} (it has {list(msg.name)})")
            values = [by_name[n] for n in names]
        else:
            values = list(msg.data)
            if len(values) != len(names):
                raise ValueError(f"{len(values)} values for {len(names)} actions {list(names)}")
        command = np.asarray(values, np.float64)
        if not np.all(np.isfinite(command)):
            raise ValueError(f"non-finite values {command.tolist()}")
        return command.astype(np.float32)

    def on_message(self, msg: Any) -> None:
        try:
            command = self.command_from(msg)
        except ValueError as e:
            reason = _reason(str(e))
            self.refused[reason] += 1
            if self._throttle(reason):
                log.warning("teleop %s: refused a message (%d %s so far): %s", self.topic,
                            self.refused[reason], reason, e)
            return
        with self._lock:
            self._latest = (command, time.monotonic())
            self.received += 1

    def latest(self) -> tuple[np.ndarray, float] | None:
        """The newest accepted command and its age in seconds, or None before the first."""
        with self._lock:
            latest = self._latest
        return None if latest is None else (latest[0].copy(), time.monotonic() - latest[1])

    # -- acting (the loop's inference thread) -------------------------------------------------------
    def act(self, observation: Observation) -> ActionChunk:
        with self._lock:
            latest = self._latest
        now = time.monotonic()
        if latest is None or now - latest[1] > self.timeout_s:
            age = "none yet" if latest is None else f"the last {now - latest[1]:.2f} s ago"
            raise TeleopQuietError(f"teleop {self.topic}: no command within {self.timeout_s} s ({age})")
        command = np.clip(latest[0], self.spec.low, self.spec.high)
        return ActionChunk(np.repeat(command[None], self.chunk_size, axis=0), self.period_s,
                           observed_at=float(observation.get("timestamp", now)))

    def close(self) -> None:
        if self._own is not None:
            self._own.close()
            self._own = None


def _reason(message: str) -> str:
    for reason in ("missing joints", "non-finite", "values for"):
        if message.startswith(reason) or reason in message:
            return {"values for": "wrong width"}.get(reason, reason)
    return "bad message"
