"""``agent_node``'s configuration: rill's config dataclasses, each a group of ROS parameters.

``robot.*`` is ``Ros2RobotConfig``, ``loop.*`` is the control loop's ``LoopConfig`` (its rate is
``robot.control_hz``), ``policy.*`` and ``learner.*`` are below. ``config/ros_agent.yaml`` holds the
defaults in the nesting a ROS parameter file uses.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any

from agent.loop.config import LoopConfig
from agent.ros.robot_config import Ros2RobotConfig
from hal.config import check_number, nearest
from hal.errors import ConfigError

#: ``policy.type`` values: ``class`` builds ``policy.class_path`` (``module:Class``).
POLICY_TYPES = ("replan", "reach", "streamx", "vla", "class")
DURABILITY = ("fsync", "os-buffered", "none")


@dataclass
class PolicyConfig:
    """Which policy acts. ``args`` are extra keyword arguments of its constructor (YAML mapping)."""

    type: str = "replan"
    chunk_size: int = 10
    class_path: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = ""  # vla: a saved VLA directory; "": a tiny untrained one (smoke tests)

    def __post_init__(self) -> None:
        if self.type not in POLICY_TYPES:
            near = nearest(self.type, list(POLICY_TYPES))
            hint = f" (did you mean {near!r}?)" if near else ""
            raise ConfigError(f"policy.type {self.type!r} is unknown{hint}; one of {', '.join(POLICY_TYPES)}")
        if self.chunk_size < 1:
            raise ConfigError(f"policy.chunk_size must be >= 1, got {self.chunk_size}")
        if self.type == "class" and ":" not in self.class_path:
            raise ConfigError("policy.type 'class' needs policy.class_path 'package.module:ClassName', "
                              f"got {self.class_path!r}")


@dataclass
class LearnerClientConfig:
    """The link to a learner. ``endpoint: ""`` runs without one (no transitions are kept)."""

    endpoint: str = ""
    actor_id: str = ""  # "": ros-<hostname>
    run_dir: str = "runs/ros-agent"
    algo: str = "stream-ac"
    gamma: float = 0.99
    insecure: bool = False
    curve_secret: str = ""
    learner_key: str = ""
    durability: str = "fsync"

    def __post_init__(self) -> None:
        if not self.actor_id:
            self.actor_id = "ros-" + socket.gethostname().split(".")[0]
        if "/" in self.actor_id or len(self.actor_id.encode()) > 200:
            raise ConfigError(f"learner.actor_id {self.actor_id!r}: 1-200 bytes, no '/'")
        if self.durability not in DURABILITY:
            raise ConfigError(f"learner.durability must be one of {DURABILITY}, got {self.durability!r}")
        check_number("learner", "gamma", self.gamma, 0)
        if bool(self.curve_secret) != bool(self.learner_key):
            raise ConfigError("learner.curve_secret and learner.learner_key go together (CurveZMQ)")


@dataclass
class AgentNodeConfig:
    """Everything ``agent_node`` is told through its ROS parameters."""

    robot: Ros2RobotConfig
    loop: LoopConfig
    policy: PolicyConfig
    learner: LearnerClientConfig
    diagnostics_topic: str = "/diagnostics"
    diagnostics_hz: float = 1.0
    status_file: str = ""  # a JSON snapshot, rewritten with every diagnostics message and at exit
    ticks: int = 0  # stop after this many control ticks; 0: run until SIGINT

    def __post_init__(self) -> None:
        check_number("agent_node", "diagnostics_hz", self.diagnostics_hz, 0, strict=True)
        if self.ticks < 0:
            raise ConfigError(f"ticks must be >= 0, got {self.ticks}")


#: Parameters the node sets itself rather than reading: the loop ticks at the robot's rate.
DERIVED = ("loop.control_hz",)
