"""``Ros2RobotConfig``: what a ``ros2`` robot is told (its registry ``params``, and the ``robot.*``
ROS parameters of ``agent_node``), validated with errors that name the field."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from hal.config import check_number, check_type
from hal.errors import ConfigError

COMMANDS = ("trajectory", "forward", "velocity")


@dataclass
class Ros2RobotConfig:
    """``params`` of a ``ros2`` robot; the ``robot.*`` ROS parameters of ``agent_node``.

    ``joints`` are the commanded joints in action order; ``extra_state_joints`` are observed only
    (their positions and velocities follow in ``state``). ``image_topic: ""`` means no camera;
    ``reward_topic: ""`` no reward. ``position_lower`` / ``position_upper`` are per-joint limits
    (empty: +-pi); ``max_delta`` bounds the change of a command per tick (rad). ``command:
    velocity`` commands joint velocities (``velocity_topic``, within ``+-velocity_limit``; ``max_delta``
    then bounds the acceleration per tick) and holds by commanding zero. ``wait_for_instruction``
    holds the robot until a first instruction has arrived on ``instruction_topic`` (or
    ``default_instruction`` is set): a policy or reward model that reads the task must not act on
    none. ``None`` lets ``agent_node`` decide (on for a reward model, for the instruction-reading
    ``vla`` and ``reach`` policies and for ``learner.keep_images``); elsewhere ``None`` is off.
    """

    joints: list[str] = field(default_factory=list)
    extra_state_joints: list[str] = field(default_factory=list)
    control_hz: float = 50.0
    command: str = "trajectory"
    trajectory_topic: str = "/joint_trajectory_controller/joint_trajectory"
    forward_topic: str = "/forward_position_controller/commands"
    # command: velocity: a forward_velocity_controller's Float64MultiArray; actions are velocities
    # within +-velocity_limit, and holding is commanding zero
    velocity_topic: str = "/forward_velocity_controller/commands"
    velocity_limit: float = 1.0
    lookahead: int = 10
    joint_states_topic: str = "/joint_states"
    image_topic: str = "/camera/image_raw"
    compressed: bool = False
    camera: str = "front"
    image_height: int = 96
    image_width: int = 96
    instruction_topic: str = "/instruction"
    default_instruction: str = ""
    wait_for_instruction: bool | None = None
    reward_topic: str = ""
    max_age_s: float = 0.25
    position_lower: list[float] = field(default_factory=list)
    position_upper: list[float] = field(default_factory=list)
    max_delta: float | None = None
    watchdog_timeout_s: float = 0.5
    connect_timeout_s: float = 5.0
    node_name: str = ""

    def __post_init__(self) -> None:
        o = "robot"
        check_type(o, "joints", self.joints, list)
        if not self.joints or not all(isinstance(j, str) and j for j in self.joints):
            raise ConfigError("robot.joints must list the joints to command, in action order, "
                              f"e.g. ['shoulder', 'elbow']; got {self.joints!r}")
        every = [*self.joints, *self.extra_state_joints]
        twice = sorted({j for j in every if every.count(j) > 1})
        if twice:
            raise ConfigError(f"robot.joints / robot.extra_state_joints name {twice} more than once")
        check_number(o, "control_hz", self.control_hz, 0, strict=True)
        if self.command not in COMMANDS:
            raise ConfigError(f"robot.command must be one of {COMMANDS}, got {self.command!r}")
        check_number(o, "velocity_limit", self.velocity_limit, 0, strict=True)
        for name in ("trajectory_topic", "forward_topic", "velocity_topic", "joint_states_topic"):
            if not isinstance(getattr(self, name), str) or not getattr(self, name):
                raise ConfigError(f"robot.{name} must be a topic name, got {getattr(self, name)!r}")
        check_type(o, "lookahead", self.lookahead, int)
        if self.lookahead < 0:
            raise ConfigError(f"robot.lookahead must be >= 0, got {self.lookahead}")
        check_type(o, "camera", self.camera, str)
        if self.image_topic and not re.fullmatch(r"[A-Za-z0-9_]+", self.camera):
            raise ConfigError(f"robot.camera must be a plain name (letters, digits, _), got {self.camera!r}")
        for name in ("image_height", "image_width"):
            check_type(o, name, getattr(self, name), int)
            if getattr(self, name) < 1:
                raise ConfigError(f"robot.{name} must be >= 1, got {getattr(self, name)}")
        check_type(o, "wait_for_instruction", self.wait_for_instruction, bool, optional=True)
        check_number(o, "max_age_s", self.max_age_s, 0, strict=True)
        check_number(o, "max_delta", self.max_delta, 0, strict=True, optional=True)
        check_number(o, "watchdog_timeout_s", self.watchdog_timeout_s, 0)
        check_number(o, "connect_timeout_s", self.connect_timeout_s, 0)
        for name in ("position_lower", "position_upper"):
            value = getattr(self, name)
            if value and len(value) != len(self.joints):
                raise ConfigError(f"robot.{name} has {len(value)} values for {len(self.joints)} joints")

    @property
    def limits(self) -> tuple[np.ndarray, np.ndarray]:
        n = len(self.joints)
        if self.command == "velocity":
            return (np.full(n, -self.velocity_limit, np.float32), np.full(n, self.velocity_limit, np.float32))
        low = np.asarray(self.position_lower or [-math.pi] * n, np.float32)
        high = np.asarray(self.position_upper or [math.pi] * n, np.float32)
        return low, high
