"""``TeleopIntervention``: a person takes over ``agent_node``'s robot from a ROS teleop device.

A teleop node (leader arm, joystick, spacemouse driver) publishes commands on ``topic`` (the
message types of ``TeleopPolicy``: ``sensor_msgs/JointState`` matched by joint name, or a
``std_msgs/Float32MultiArray`` / ``Float64MultiArray`` in action order) and says whether the
person has taken over on ``active_topic`` (``std_msgs/Bool``). While the last word there is
true the control loop sends the newest command instead of the policy's, through the robot's
clamps (``intervention.*`` parameters; see ``agent/operator/intervention.py``). A command of the
wrong width, with missing joints or with NaN is refused, counted by reason and logged; one
beyond the joint limits is clamped by the robot and counted. No fresh command within
``timeout_s`` while taken over (the device or its node died) holds the robot until commands
return or the person releases.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.operator.intervention import NONE, Intervention
from agent.ros.teleop import MESSAGE_TYPES, TeleopPolicy
from hal.config import check_number
from hal.errors import ConfigError
from hal.specs import ActionSpec

log = logging.getLogger(__name__)


@dataclass
class InterventionConfig:
    """``agent_node``'s ``intervention.*``: ``topic`` "" turns interventions off."""

    topic: str = ""
    message: str = "float64_array"
    active_topic: str = "/teleop/active"
    timeout_s: float = 0.3

    def __post_init__(self) -> None:
        if self.message not in MESSAGE_TYPES:
            raise ConfigError(f"intervention.message must be one of {', '.join(MESSAGE_TYPES)}, "
                              f"got {self.message!r}")
        check_number("intervention", "timeout_s", self.timeout_s, 0, strict=True)
        if self.topic and not self.active_topic:
            raise ConfigError("intervention.active_topic must name a std_msgs/Bool topic when "
                              f"intervention.topic is set ({self.topic!r}): it says when a person has "
                              "taken over")


class TeleopIntervention:
    """An ``InterventionSource`` on ROS topics (see the module docstring)."""

    def __init__(self, config: InterventionConfig, action_spec: ActionSpec, period_s: float,
                 node: Any) -> None:
        from std_msgs.msg import Bool

        from agent.ros.qos import reliable_qos

        self.config = config
        self.teleop = TeleopPolicy(action_spec, period_s, config.topic, config.message, config.timeout_s,
                                   node=node)
        self.active = False
        self.switches = 0
        self._lock = threading.Lock()
        node.create_subscription(Bool, config.active_topic, self._on_active, reliable_qos())

    @property
    def refused(self) -> dict[str, int]:
        return dict(self.teleop.refused)

    def _on_active(self, msg: Any) -> None:
        with self._lock:
            if bool(msg.data) != self.active:
                self.switches += 1
                log.info("intervention %s (%s)", "taken over" if msg.data else "released",
                         self.config.active_topic)
            self.active = bool(msg.data)

    def poll(self, now: float, last_sent: np.ndarray | None) -> Intervention:
        with self._lock:
            active = self.active
        if not active:
            return NONE
        latest = self.teleop.latest()
        if latest is None or latest[1] > self.config.timeout_s:
            age = "none yet" if latest is None else f"the last {latest[1]:.2f} s ago"
            return Intervention(True, None, f"no command on {self.config.topic} within "
                                            f"{self.config.timeout_s} s ({age})")
        return Intervention(True, latest[0])

    def stats(self) -> dict[str, Any]:
        return {"topic": self.config.topic, "active": self.active, "received": self.teleop.received,
                "refused": self.refused, "switches": self.switches}
