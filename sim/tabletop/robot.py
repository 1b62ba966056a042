"""``TabletopRobot`` (type ``sim-tabletop``): the tabletop arm behind the ``hal.Robot`` interface.

Observation: ``state`` (float32), ``image.<camera>`` (uint8 HxWx3, one per camera in ``cameras``),
``instruction`` (str), and the task signals ``reward`` (float32), ``terminated``, ``truncated`` and
``success`` (bool), all declared in ``observation_spec``. Action: the pusher's planar velocity
``(ee_vx, ee_vy)`` in [-1, 1], bounded per tick by ``max_delta``; zero holds the arm.

Two ways to run, chosen by ``real_time``:

- ``false`` (default): one control tick per ``act()``, as ``sim-mujoco`` does; the simulation stands
  exactly still between actions, which is how it holds position.
- ``true``: the simulation advances on its own thread at ``control_hz``, applying the last command
  on every tick, the way a real arm keeps moving between commands; holding (watchdog, fault,
  non-finite action) commands zero velocity and the arm stops. ``observe()`` returns the newest
  tick. When an episode ends the simulation freezes until ``reset()`` or the next ``act()``, which
  starts the next episode, so a slow caller never misses the end of one.

A simulated device fault: while the file named by ``fault_file`` exists, the robot reports a fault
(health not ok, actions refused, position held), as a real driver would on an e-stop.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np

from hal.config import check_number, check_type
from hal.errors import ConfigError
from hal.registry import register_robot
from hal.robot import Observation, Robot, RobotError, RobotHealth
from hal.specs import ActionSpec, FeatureSpec
from sim.faults import fault_reason
from sim.tabletop.env import DEFAULT_COLORS, TabletopEnv
from sim.tabletop.scene import CAMERAS, PALETTE
from sim.tabletop.task import REWARDS, TASKS

log = logging.getLogger(__name__)

#: Episode length (control ticks) of each task when ``episode_steps`` is not given; the same as
#: the registered gymnasium ids (``sim.tasks``).
EPISODE_STEPS = {"push": 250, "reach": 150}
RESET_TIMEOUT_S = 5.0
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
class TabletopRobot(Robot):
    """The simulated tabletop arm; see the module docstring."""

    type_name = "sim-tabletop"
    config_class = TabletopRobotConfig

    def __init__(self, name: str, config: TabletopRobotConfig | None = None) -> None:
        self.config = c = config or TabletopRobotConfig()
        super().__init__(name, c.watchdog_timeout_s)
        base = TabletopEnv(task=c.task, colors=tuple(c.colors), cameras=tuple(c.cameras),
                           image_size=(c.image_height, c.image_width), goal_in_state=c.goal_in_state,
                           control_hz=c.control_hz, terminate_on_success=c.terminate_on_success,
                           phrasing=c.phrasing, max_speed=c.max_speed, reward=c.reward)
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
        self._obs: Observation = {}
        self._command = np.zeros(2, np.float32)
        self.episode = 0
        self.steps = 0  # control ticks simulated
        self._seed: int | None = c.seed
        # Real time: the simulation thread and how callers talk to it.
        self._sim: threading.Thread | None = None
        self._sim_lock = threading.Condition()
        self._sim_stop = threading.Event()
        self._wake = threading.Event()
        self._reset_pending = False
        self._sim_error: BaseException | None = None

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
        return float(self.config.control_hz)

    @property
    def episode_steps(self) -> int:
        """Control ticks per episode (the time limit); a learner's time-feature horizon."""
        return self.config.max_episode_steps

    # -- the simulation ------------------------------------------------------------------------
    def _start_episode(self) -> None:
        obs, info = self.env.reset(seed=self._seed)
        self._seed = None  # seeded once per connect; later episodes continue the generator
        self._set(obs, 0.0, False, False, info["success"])

    def _step(self, command: np.ndarray) -> None:
        obs, reward, terminated, truncated, info = self.env.step(command)
        self.steps += 1
        self._set(obs, float(reward), bool(terminated), bool(truncated), info["success"])

    def _set(self, obs: dict, reward: float, terminated: bool, truncated: bool, success: bool) -> None:
        if self._proprio:
            obs = {**obs, "state": obs["state"][:PROPRIO_DIM], "privileged": obs["state"]}
        self._obs = {**obs, "reward": np.float32(reward), "terminated": np.bool_(terminated),
                     "truncated": np.bool_(truncated), "success": np.bool_(success)}

    @property
    def _episode_over(self) -> bool:
        return bool(self._obs["terminated"] or self._obs["truncated"])

    def _run_sim(self) -> None:
        """Real time: advance one tick per control period with the last command, until stopped."""
        period = 1.0 / self.control_hz
        next_tick = time.monotonic()
        try:
            while not self._sim_stop.is_set():
                with self._sim_lock:
                    if self._reset_pending:
                        self._start_episode()
                        self._reset_pending = False
                        self._sim_lock.notify_all()
                        next_tick = time.monotonic()
                    elif not self._episode_over:
                        self._step(self._command)
                next_tick += period
                delay = next_tick - time.monotonic()
                if delay <= 0:
                    next_tick = time.monotonic()  # late: do not try to catch up
                    delay = 0.0
                self._wake.wait(delay)
                self._wake.clear()
        except BaseException as e:  # a simulator failure is a device fault, not a silent stop
            log.exception("robot %s: simulation thread failed", self.name)
            with self._sim_lock:
                self._sim_error = e
                self._sim_lock.notify_all()
        finally:
            self.env.close()

    def _request_episode(self, wait: bool) -> None:
        """Real time: have the simulation thread start a new episode (and wait until it has)."""
        with self._sim_lock:
            self._reset_pending = True
            self._wake.set()
            if wait and not self._sim_lock.wait_for(
                lambda: not self._reset_pending or self._sim_error is not None, RESET_TIMEOUT_S
            ):
                raise RobotError(f"robot {self.name!r}: simulation did not start an episode within "
                                 f"{RESET_TIMEOUT_S:g}s")
            if self._sim_error is not None:
                raise RobotError(f"robot {self.name!r}: simulation failed: {self._sim_error}")

    # -- the device hooks ----------------------------------------------------------------------
    def _connect(self) -> None:
        self._seed = self.config.seed
        self._command = np.zeros(2, np.float32)
        self._sim_error = None
        if not self.config.real_time:
            self._start_episode()
            return
        self._sim_stop.clear()
        self._reset_pending = True
        self._sim = threading.Thread(target=self._run_sim, name=f"sim-{self.name}", daemon=True)
        self._sim.start()
        try:
            self._request_episode(wait=True)
        except RobotError:
            self._stop_sim()
            raise

    def _stop_sim(self) -> None:
        self._sim_stop.set()
        self._wake.set()
        if self._sim is not None:
            self._sim.join(timeout=5.0)
            self._sim = None

    def _disconnect(self) -> None:
        if self.config.real_time:
            self._stop_sim()  # the thread closes the env
        else:
            self.env.close()

    def _observe(self) -> Observation:
        with self._sim_lock:
            return {k: v if isinstance(v, str) else np.array(v) for k, v in self._obs.items()}

    def _send(self, command: np.ndarray) -> None:
        if self.config.real_time:
            with self._sim_lock:
                if self._episode_over:
                    self.episode += 1  # the episode ended: this action begins the next one
                    self._request_episode(wait=True)
                self._command = command.copy()
            return
        if self._episode_over:
            self.episode += 1
            self._start_episode()
        self._step(command)

    def _hold_command(self) -> np.ndarray:
        return np.zeros(2, np.float32)

    def _hold(self) -> np.ndarray:
        # Stepped: not advancing time holds every joint exactly. Real time: zero velocity stops the
        # arm and its position actuators keep it there.
        hold = self._hold_command()
        if self.config.real_time:
            with self._sim_lock:
                self._command = hold
        return hold

    def _reset(self) -> None:
        self.episode += 1
        if self.config.real_time:
            self._request_episode(wait=True)
        else:
            self._start_episode()

    def _check_device(self) -> str | None:
        if self._sim_error is not None:
            return f"simulation failed: {self._sim_error}"
        return fault_reason(self.config.fault_file)

    def _health_extra(self) -> dict[str, Any]:
        return {"task": self.config.task, "episode": self.episode, "steps": self.steps,
                "real_time": self.config.real_time}

    @classmethod
    def probe(cls, name: str, params: dict[str, Any] | None = None) -> RobotHealth:
        config = TabletopRobotConfig(**(params or {}))
        reason = fault_reason(config.fault_file)
        if reason:
            return RobotHealth(False, "fault", reason)
        return RobotHealth(True, "available", f"simulated tabletop ({config.task})")
