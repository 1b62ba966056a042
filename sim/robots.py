"""Simulated robots: a gymnasium MuJoCo environment behind the ``hal.Robot`` interface.

``MujocoRobot`` (type ``sim-mujoco``) steps its environment once per ``act()``, so the simulation
holds exactly still while no action arrives (that is how it holds position). Its observation is
``state`` (the env's flat observation, float32) plus the task signals ``reward`` (float32),
``terminated`` and ``truncated`` (bool), all declared in ``observation_spec``; ``reset()`` starts a
new episode. With ``real_time: true`` each ``act()`` waits for the next control tick, like hardware.

A simulated device fault: while the file named by ``fault_file`` exists, the robot reports a fault
(health not ok, actions refused, position held), as a real driver would on an e-stop.

Importing this module registers the type and the discovery of simulated robots with ``hal``, and
the tabletop arm (``sim.tabletop.robot``, type ``sim-tabletop``) and Meta-World's Sawyer
(``sim.metaworld.robot``, type ``sim-metaworld``); the ``rill.robots`` /
``rill.discovery`` entry points in setup.py do the same for an installed rill.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from hal.config import RobotConfig, check_number, check_type
from hal.registry import register_discovery, register_robot
from hal.robot import Observation, Robot, RobotHealth
from hal.specs import ActionSpec, FeatureSpec
from sim.faults import fault_reason

log = logging.getLogger(__name__)

#: The simulated robots discovery always offers (name -> env id).
DISCOVERED = {"sim-hopper": "Hopper-v5"}


@dataclass
class MujocoRobotConfig:
    """``params`` of a ``sim-mujoco`` robot."""

    env_id: str = "Hopper-v5"
    control_hz: float | None = None  # None: the env's own rate (1 / dt)
    real_time: bool = False
    max_delta: float | None = None  # per-tick bound on command change; None: none
    watchdog_timeout_s: float | None = 0.5
    fault_file: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        check_type("params", "env_id", self.env_id, str)
        check_number("params", "control_hz", self.control_hz, 0, strict=True, optional=True)
        check_type("params", "real_time", self.real_time, bool)
        check_number("params", "max_delta", self.max_delta, 0, strict=True, optional=True)
        check_number("params", "watchdog_timeout_s", self.watchdog_timeout_s, 0, strict=True, optional=True)
        check_type("params", "fault_file", self.fault_file, str, optional=True)
        check_type("params", "seed", self.seed, int)


@register_robot
class MujocoRobot(Robot):
    """A gymnasium MuJoCo env (Box actions) as a robot."""

    type_name = "sim-mujoco"
    config_class = MujocoRobotConfig

    def __init__(self, name: str, config: MujocoRobotConfig | None = None) -> None:
        from sim.envs import make_env

        self.config = config or MujocoRobotConfig()
        super().__init__(name, self.config.watchdog_timeout_s)
        self.env = make_env(self.config.env_id)
        space = self.env.action_space
        if not hasattr(space, "low"):
            raise ValueError(
                f"robot {name!r}: {self.config.env_id} has a {type(space).__name__} action "
                "space; sim-mujoco needs continuous (Box) actions"
            )
        self._action_spec = ActionSpec(
            self._actuator_names(space.shape[0]), space.low, space.high, self.config.max_delta
        )
        dim = int(np.prod(self.env.observation_space.shape))
        self._observation_spec = {
            "state": FeatureSpec((dim,), "float32"),
            "reward": FeatureSpec((), "float32"),
            "terminated": FeatureSpec((), "bool"),
            "truncated": FeatureSpec((), "bool"),
        }
        self._hz = float(self.config.control_hz or 1.0 / self.env.unwrapped.dt)
        self._obs: Observation = {}
        self._next_tick = 0.0
        self.episode = 0
        self.steps = 0

    def _actuator_names(self, n: int) -> tuple[str, ...]:
        import mujoco

        model = getattr(self.env.unwrapped, "model", None)
        names = []
        for i in range(n):
            name = ""
            if model is not None and i < model.nu:
                name = model.actuator(i).name
                if not name:  # many gym models name only the joint an actuator drives
                    name = (
                        mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, int(model.actuator_trnid[i, 0]))
                        or ""
                    )
            names.append(name or f"a{i}")
        return tuple(names)

    # -- what it is ----------------------------------------------------------------------------
    @property
    def observation_spec(self) -> dict[str, FeatureSpec]:
        return self._observation_spec

    @property
    def action_spec(self) -> ActionSpec:
        return self._action_spec

    @property
    def stepped(self) -> bool:
        return not self.config.real_time

    @property
    def control_hz(self) -> float:
        return self._hz

    # -- the device ----------------------------------------------------------------------------
    def _connect(self) -> None:
        self._start_episode(self.config.seed)

    def _disconnect(self) -> None:
        self.env.close()

    def _start_episode(self, seed: int | None = None) -> None:
        state, _ = self.env.reset(seed=seed)
        self._set(state, 0.0, False, False)
        self._next_tick = time.monotonic()

    def _set(self, state, reward: float, terminated: bool, truncated: bool) -> None:
        self._obs = {
            "state": np.asarray(state, np.float32).reshape(-1),
            "reward": np.float32(reward),
            "terminated": np.bool_(terminated),
            "truncated": np.bool_(truncated),
        }

    def _observe(self) -> Observation:
        return {k: np.array(v) for k, v in self._obs.items()}

    def _send(self, command: np.ndarray) -> None:
        if self._obs["terminated"] or self._obs["truncated"]:
            self.episode += 1  # the episode ended: this action begins the next one
            self._start_episode()
        if self.config.real_time:
            self._next_tick += 1.0 / self._hz
            delay = self._next_tick - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            else:
                self._next_tick = time.monotonic()  # late: do not try to catch up
        state, reward, terminated, truncated, _ = self.env.step(command)
        self.steps += 1
        self._set(state, float(reward), bool(terminated), bool(truncated))

    def _hold_command(self) -> np.ndarray:
        return np.zeros(self._action_spec.shape, np.float32)

    def _hold(self) -> np.ndarray:
        # A stepped simulation holds every joint exactly by not advancing time.
        return self._hold_command()

    def _reset(self) -> None:
        self.episode += 1
        self._start_episode()

    def _check_device(self) -> str | None:
        return fault_reason(self.config.fault_file)

    def _health_extra(self) -> dict[str, Any]:
        return {"env_id": self.config.env_id, "episode": self.episode, "steps": self.steps}

    @classmethod
    def probe(cls, name: str, params: dict[str, Any] | None = None) -> RobotHealth:
        config = MujocoRobotConfig(**(params or {}))
        reason = fault_reason(config.fault_file)
        if reason:
            return RobotHealth(False, "fault", reason)
        return RobotHealth(True, "available", f"simulated {config.env_id}")


def discover_simulated_robots() -> list[RobotConfig]:
    """Simulated robots are always there to be found: one per entry of ``DISCOVERED``."""
    return [
        RobotConfig(name, MujocoRobot.type_name, {"env_id": env_id}) for name, env_id in DISCOVERED.items()
    ]


register_discovery("sim", discover_simulated_robots)

from sim.metaworld.robot import MetaWorldRobot  # noqa: E402  registers sim-metaworld (imports no metaworld)
from sim.tabletop.robot import TabletopRobot  # noqa: E402  registers sim-tabletop as well

__all__ = ["MetaWorldRobot", "MujocoRobot", "MujocoRobotConfig", "TabletopRobot", "discover_simulated_robots"]
