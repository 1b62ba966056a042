"""``agent_node``'s configuration: rill's config dataclasses, each a group of ROS parameters.

``robot.*`` is ``Ros2RobotConfig``, ``loop.*`` is the control loop's ``LoopConfig`` (its rate is
``robot.control_hz``), ``policy.*`` and ``learner.*`` are below, ``operator.*`` is
``agent.operator.OperatorConfig`` (operator-run episodes) and ``intervention.*`` is
``agent.ros.intervention.InterventionConfig`` (a person taking over from a teleop topic).
``config/ros_agent.yaml`` holds the defaults in the nesting a ROS parameter file uses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.actor.config import LearnerClientConfig
from agent.loop.config import LoopConfig
from agent.operator.config import OperatorConfig
from agent.policy_registry import policy_kind
from agent.reward.config import RewardSignalConfig
from agent.ros.intervention import InterventionConfig
from agent.ros.robot_config import Ros2RobotConfig
from hal.config import check_number
from hal.errors import ConfigError


@dataclass
class PolicyConfig:
    """Which policy acts. ``args`` are extra keyword arguments of its constructor (YAML mapping)."""

    type: str = "replan"
    chunk_size: int = 10
    class_path: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    checkpoint: str = ""  # vla: a saved VLA directory; "": a tiny untrained one (smoke tests)

    def __post_init__(self) -> None:
        policy_kind(self.type, "ros", "policy.type")  # ``class`` builds ``policy.class_path``
        if self.chunk_size < 1:
            raise ConfigError(f"policy.chunk_size must be >= 1, got {self.chunk_size}")
        if self.type == "class" and ":" not in self.class_path:
            raise ConfigError("policy.type 'class' needs policy.class_path 'package.module:ClassName', "
                              f"got {self.class_path!r}")


@dataclass
class AgentNodeConfig:
    """Everything ``agent_node`` is told through its ROS parameters."""

    robot: Ros2RobotConfig
    loop: LoopConfig
    policy: PolicyConfig
    learner: LearnerClientConfig
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    intervention: InterventionConfig = field(default_factory=InterventionConfig)
    reward: RewardSignalConfig = field(default_factory=RewardSignalConfig)  # reward.model: a classifier
    diagnostics_topic: str = "/diagnostics"
    diagnostics_hz: float = 1.0
    # a JSON snapshot, rewritten with every diagnostics message and at exit; "" with a learner:
    # <learner.run_dir>/actors/<actor_id>/status.json (what `rill watch` shows)
    status_file: str = ""
    ticks: int = 0  # stop after this many control ticks; 0: run until SIGINT

    def __post_init__(self) -> None:
        check_number("agent_node", "diagnostics_hz", self.diagnostics_hz, 0, strict=True)
        if self.ticks < 0:
            raise ConfigError(f"ticks must be >= 0, got {self.ticks}")


#: Parameters the node sets itself rather than reading: the loop ticks at the robot's rate.
DERIVED = ("loop.control_hz",)
