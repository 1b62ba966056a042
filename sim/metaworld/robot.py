"""``MetaWorldRobot`` (type ``sim-metaworld``): Meta-World's Sawyer arm behind the ``hal.Robot`` interface.

Observation (``sim.metaworld.env``): ``state`` (float32 [4]: end-effector x, y, z and gripper
opening, as LeRobot's Meta-World datasets hold it), ``image.<camera>`` (uint8 HxWx3, default
``corner2`` at 96x96, the VLA's input size), ``instruction`` (the task's description), the
simulator's ``privileged`` view (float32 [39]: objects and goal, for scripted experts and
evaluation only), and the task signals ``reward``, ``terminated``, ``truncated``, ``success``.
Action: ``(dx, dy, dz, gripper)`` in [-1, 1] (end-effector displacement, 1 = 1 cm per tick; gripper
-1 open, +1 closed), bounded per tick by ``max_delta`` when set. Holding keeps the arm where it is
and the gripper as it was (a held object is not dropped).

With several ``tasks`` (a list, or a set: ``MT10``, ``easy``, ...) the episodes take them in turn:
one robot for multi-task demonstrations and evaluation. 80 Hz (Meta-World's own step), stepped or
in real time, with a simulated device fault (``fault_file``), as every ``sim.env_robot.EnvRobot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hal.config import check_number, check_type
from hal.errors import ConfigError
from hal.registry import register_robot
from hal.robot import RobotHealth
from hal.specs import ActionSpec, FeatureSpec
from sim.env_robot import EnvRobot
from sim.faults import fault_reason
from sim.metaworld.tasks import INSTRUCTIONS, REWARDS, TASK_SETS, task_names

#: Meta-World's control rate: 5 substeps of MuJoCo's 2.5 ms per ``step``.
CONTROL_HZ = 80.0
ACTION_NAMES = ("dx", "dy", "dz", "gripper")
CAMERAS = ("corner2", "corner", "corner3", "topview", "behindGripper", "gripperPOV")


@dataclass
class MetaWorldRobotConfig:
    """``params`` of a ``sim-metaworld`` robot."""

    tasks: str | list[str] = field(default_factory=lambda: ["reach-v3"])  # names, or a set: MT10, easy, ...
    camera: str = "corner2"
    image_height: int = 96
    image_width: int = 96
    # A new camera frame every this many control ticks, the last one repeated in between
    # (sim.camera_rate: a camera slower than the control loop); 1: a frame every tick
    camera_every: int = 1
    episode_steps: int = 500  # Meta-World's max_path_length
    terminate_on_success: bool = True
    reward: str = "dense"  # dense | progress | success (sim.metaworld.env says which to learn from)
    success_bonus: float = 10.0  # reward on a step that succeeds, with reward progress or success
    control_hz: float = CONTROL_HZ
    real_time: bool = False
    max_delta: float | None = None  # per-tick bound on the command's change; None: none
    watchdog_timeout_s: float | None = 0.5
    fault_file: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        self.task_list = task_names(self.tasks, "params.tasks")
        if self.camera not in CAMERAS:
            raise ConfigError(f"params.camera must be one of {', '.join(CAMERAS)}, got {self.camera!r}")
        for name in ("image_height", "image_width"):
            value = getattr(self, name)
            check_type("params", name, value, int)
            if not 8 <= value <= 480:
                raise ConfigError(f"params.{name} must be within 8..480 pixels, got {value!r}")
        check_type("params", "camera_every", self.camera_every, int)
        if self.camera_every < 1:
            raise ConfigError(f"params.camera_every must be a positive integer, got {self.camera_every!r}")
        check_type("params", "episode_steps", self.episode_steps, int)
        if not 1 <= self.episode_steps <= 500:
            raise ConfigError(
                f"params.episode_steps must be within 1..500 (Meta-World's limit), got {self.episode_steps!r}"
            )
        check_type("params", "terminate_on_success", self.terminate_on_success, bool)
        if self.reward not in REWARDS:
            raise ConfigError(f"params.reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        check_number("params", "success_bonus", self.success_bonus, 0)
        if not np.isfinite(self.success_bonus):
            raise ConfigError(f"params.success_bonus must be finite, got {self.success_bonus!r}")
        check_number("params", "control_hz", self.control_hz, 0, strict=True)
        check_type("params", "real_time", self.real_time, bool)
        check_number("params", "max_delta", self.max_delta, 0, strict=True, optional=True)
        check_number("params", "watchdog_timeout_s", self.watchdog_timeout_s, 0, strict=True, optional=True)
        check_type("params", "fault_file", self.fault_file, str, optional=True)
        check_type("params", "seed", self.seed, int)

    @property
    def task(self) -> str:
        """The tasks as one label (the set's name where one was given)."""
        if isinstance(self.tasks, str) and self.tasks in TASK_SETS:
            return self.tasks
        return ",".join(self.task_list)


@register_robot
class MetaWorldRobot(EnvRobot):
    """Meta-World's Sawyer arm on one or more tasks; see the module docstring."""

    type_name = "sim-metaworld"
    config_class = MetaWorldRobotConfig

    def __init__(self, name: str, config: MetaWorldRobotConfig | None = None) -> None:
        from sim.metaworld.env import ACTION_DIM, PRIVILEGED_DIM, STATE_DIM, MetaWorldEnv

        c = config or MetaWorldRobotConfig()
        super().__init__(name, c, action_dim=ACTION_DIM)
        self.env = MetaWorldEnv(
            list(c.task_list),
            camera=c.camera,
            image_size=(c.image_height, c.image_width),
            camera_every=c.camera_every,
            episode_steps=c.episode_steps,
            terminate_on_success=c.terminate_on_success,
            reward=c.reward,
            success_bonus=c.success_bonus,
        )
        self._action_spec = ActionSpec(ACTION_NAMES, -np.ones(ACTION_DIM), np.ones(ACTION_DIM), c.max_delta)
        self._observation_spec = {
            "state": FeatureSpec((STATE_DIM,), "float32"),
            "privileged": FeatureSpec((PRIVILEGED_DIM,), "float32"),
            f"image.{c.camera}": FeatureSpec((c.image_height, c.image_width, 3), "uint8"),
            "instruction": FeatureSpec((), "str"),
            "reward": FeatureSpec((), "float32"),
            "terminated": FeatureSpec((), "bool"),
            "truncated": FeatureSpec((), "bool"),
            "success": FeatureSpec((), "bool"),
        }

    @property
    def episode_steps(self) -> int:
        """Control ticks per episode (the time limit)."""
        return self.config.episode_steps

    @property
    def tasks(self) -> tuple[str, ...]:
        return self.config.task_list

    @property
    def current_task(self) -> str:
        """The task of the episode now running."""
        return self.env.task

    def _hold_command(self) -> np.ndarray:
        # No displacement; the gripper keeps its last command, so a held object stays held.
        return np.array([0.0, 0.0, 0.0, float(self._command[3])], np.float32)

    def _health_extra(self) -> dict[str, Any]:
        return {**super()._health_extra(), "current_task": self.env.task}

    @classmethod
    def task_instructions(cls, params: dict[str, Any] | None = None) -> dict[str, str]:
        """Task -> instruction of a robot with ``params``: what its episodes will ask for."""
        return {task: INSTRUCTIONS[task] for task in MetaWorldRobotConfig(**(params or {})).task_list}

    @classmethod
    def probe(cls, name: str, params: dict[str, Any] | None = None) -> RobotHealth:
        config = MetaWorldRobotConfig(**(params or {}))
        reason = fault_reason(config.fault_file)
        if reason:
            return RobotHealth(False, "fault", reason)
        try:
            from sim.metaworld.env import _metaworld_envs

            _metaworld_envs()
        except RuntimeError as e:
            return RobotHealth(False, "unavailable", str(e))
        return RobotHealth(True, "available", f"simulated Meta-World Sawyer ({config.task})")
