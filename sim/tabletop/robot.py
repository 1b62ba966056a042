"""``TabletopRobot`` (type ``sim-tabletop``): the tabletop arm behind the ``hal.Robot`` interface.

Observation: ``state`` (float32), ``image.<camera>`` (uint8 HxWx3, one per camera in ``cameras``),
``instruction`` (str), and the task signals ``reward`` (float32), ``terminated``, ``truncated`` and
``success`` (bool), all declared in ``observation_spec``. Action: the pusher's planar velocity
``(ee_vx, ee_vy)`` in [-1, 1], bounded per tick by ``max_delta``; zero holds the arm.

Stepped (``real_time: false``, the default) or in real time, with a simulated device fault
(``fault_file``), as every ``sim.env_robot.EnvRobot``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from hal.config import check_number, check_type
from hal.errors import ConfigError
from hal.registry import register_robot
from hal.robot import RobotHealth
from hal.specs import ActionSpec, FeatureSpec
from sim.env_robot import EnvRobot
from sim.faults import fault_reason
from sim.tabletop.env import DEFAULT_COLORS, TabletopEnv
from sim.tabletop.scene import CAMERAS, PALETTE
from sim.tabletop.task import REWARDS, TASKS

#: Episode length (control ticks) of each task when ``episode_steps`` is not given; the same as
#: the registered gymnasium ids (``sim.tasks``).
EPISODE_STEPS = {"push": 250, "reach": 150}
STATE_MODES = ("full", "proprio")
#: ``state`` entries that are the arm's own (``TabletopEnv.state_names``: shoulder, elbow, their
#: velocities, pusher x/y); the rest is the scene.
PROPRIO_DIM = 6


@dataclass
class TabletopRobotConfig:
    """``params`` of a ``sim-tabletop`` robot."""

    task: str = "push"  # push | reach
    colors: list[str] = field(default_factory=lambda: list(DEFAULT_COLORS))
    cameras: list[str] = field(default_factory=lambda: ["front"])  # [] for no images
    image_height: int = 96
    image_width: int = 96
    # A new set of camera frames every this many control ticks, the last one repeated in between
    # (sim.camera_rate: a camera slower than the control loop); 1: every tick
    camera_every: int = 1
    # What ``state`` holds: "full" (the arm, every block, the target: a simulator's privileged view)
    # or "proprio" (the arm's joints, velocities and pusher position only, as a real arm knows
    # itself; the rest is then under ``privileged``, for scripted experts and evaluation, and a
    # policy must find the blocks in the camera).
    state: str = "full"
    # Append the goal to state for state-only learning: false | onehot | relative (see TabletopEnv).
    goal_in_state: bool | str = False
    control_hz: float = 50.0
    real_time: bool = False
    max_delta: float | None = 1.0  # per-tick bound on the velocity command's change; None: none
    max_speed: float = 0.3  # pusher speed (m/s) at action 1.0
    episode_steps: int | None = None  # None: 250 for push, 150 for reach
    terminate_on_success: bool = True
    phrasing: str = "random"  # random | first
    reward: str = "progress"  # progress | distance | success (see sim.tabletop.task)
    watchdog_timeout_s: float | None = 0.5
    fault_file: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_type("params", "task", self.task, str)
        if self.task not in TASKS:
            raise ConfigError(f"params.task must be one of {', '.join(TASKS)}, got {self.task!r}")
        _check_names("colors", self.colors, tuple(PALETTE), allow_empty=False)
        _check_names("cameras", self.cameras, CAMERAS, allow_empty=True)
        for name in ("image_height", "image_width"):
            value = getattr(self, name)
            check_type("params", name, value, int)
            if not 8 <= value <= 480:
                raise ConfigError(f"params.{name} must be within 8..480 pixels, got {value!r}")
        check_type("params", "camera_every", self.camera_every, int)
        if self.camera_every < 1:
            raise ConfigError(f"params.camera_every must be a positive integer, got {self.camera_every!r}")
        if self.goal_in_state not in (False, True, "none", "onehot", "relative"):
            raise ConfigError(f"params.goal_in_state must be false, true, 'onehot' or 'relative', "
                              f"got {self.goal_in_state!r}")
        if self.state not in STATE_MODES:
            raise ConfigError(f"params.state must be one of {', '.join(STATE_MODES)}, got {self.state!r}")
        if self.state == "proprio" and self.goal_in_state not in (False, "none"):
            raise ConfigError("params.state 'proprio' keeps the goal out of the state: goal_in_state must be "
                              f"false, got {self.goal_in_state!r}")
        check_number("params", "control_hz", self.control_hz, 0, strict=True)
        check_type("params", "real_time", self.real_time, bool)
        check_number("params", "max_delta", self.max_delta, 0, strict=True, optional=True)
        check_number("params", "max_speed", self.max_speed, 0, strict=True)
        check_type("params", "episode_steps", self.episode_steps, int, optional=True)
        if self.episode_steps is not None and self.episode_steps < 1:
            raise ConfigError(f"params.episode_steps must be >= 1, got {self.episode_steps!r}")
        check_type("params", "terminate_on_success", self.terminate_on_success, bool)
        if self.phrasing not in ("random", "first"):
            raise ConfigError(f"params.phrasing must be 'random' or 'first', got {self.phrasing!r}")
        if self.reward not in REWARDS:
            raise ConfigError(f"params.reward must be one of {', '.join(REWARDS)}, got {self.reward!r}")
        check_number("params", "watchdog_timeout_s", self.watchdog_timeout_s, 0, strict=True, optional=True)
        check_type("params", "fault_file", self.fault_file, str, optional=True)
        check_type("params", "seed", self.seed, int)

    @property
    def max_episode_steps(self) -> int:
        return self.episode_steps or EPISODE_STEPS[self.task]


def _check_names(name: str, values: Any, known: tuple[str, ...], allow_empty: bool) -> None:
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) for v in values):
        raise ConfigError(f"params.{name} must be a list of names, got {values!r}")
    unknown = [v for v in values if v not in known]
    if unknown:
        raise ConfigError(f"params.{name}: unknown {unknown}; known: {', '.join(known)}")
    if len(set(values)) != len(values) or (not values and not allow_empty):
        raise ConfigError(f"params.{name} must be distinct{'' if allow_empty else ' and not empty'}, "
                          f"got {values!r}")


@register_robot
class TabletopRobot(EnvRobot):
    """The simulated tabletop arm; see the module docstring."""

    type_name = "sim-tabletop"
    config_class = TabletopRobotConfig

    def __init__(self, name: str, config: TabletopRobotConfig | None = None) -> None:
        c = config or TabletopRobotConfig()
        super().__init__(name, c, action_dim=2)
        base = TabletopEnv(task=c.task, colors=tuple(c.colors), cameras=tuple(c.cameras),
                           image_size=(c.image_height, c.image_width), goal_in_state=c.goal_in_state,
                           control_hz=c.control_hz, terminate_on_success=c.terminate_on_success,
                           phrasing=c.phrasing, max_speed=c.max_speed, reward=c.reward,
                           camera_every=c.camera_every)
        self.env = gym.wrappers.TimeLimit(base, c.max_episode_steps)
        self.tabletop = base
        self._action_spec = ActionSpec(("ee_vx", "ee_vy"), -np.ones(2), np.ones(2), c.max_delta)
        self._proprio = c.state == "proprio"
        if self._proprio:
            spec = {"state": FeatureSpec((PROPRIO_DIM,), "float32"),
                    "privileged": FeatureSpec((base.state_dim,), "float32")}
        else:
            spec = {"state": FeatureSpec((base.state_dim,), "float32")}
        for cam in base.cameras:
            spec[f"image.{cam}"] = FeatureSpec((c.image_height, c.image_width, 3), "uint8")
        spec["instruction"] = FeatureSpec((), "str")
        spec.update({"reward": FeatureSpec((), "float32"), "terminated": FeatureSpec((), "bool"),
                     "truncated": FeatureSpec((), "bool"), "success": FeatureSpec((), "bool")})
        self._observation_spec = spec

    # -- what it is ----------------------------------------------------------------------------
    @property
    def episode_steps(self) -> int:
        """Control ticks per episode (the time limit); a learner's time-feature horizon."""
        return self.config.max_episode_steps

    def _shape_observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        if self._proprio:
            return {**obs, "state": obs["state"][:PROPRIO_DIM], "privileged": obs["state"]}
        return obs

    @classmethod
    def probe(cls, name: str, params: dict[str, Any] | None = None) -> RobotHealth:
        config = TabletopRobotConfig(**(params or {}))
        reason = fault_reason(config.fault_file)
        if reason:
            return RobotHealth(False, "fault", reason)
        return RobotHealth(True, "available", f"simulated tabletop ({config.task})")
