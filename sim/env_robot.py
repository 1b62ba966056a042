"""``EnvRobot``: a simulated task (a gymnasium env with dict observations) behind the ``hal.Robot``
interface, stepped or in real time. The tabletop arm (``sim-tabletop``) and Meta-World's Sawyer
(``sim-metaworld``) are both one.

The env's observations are dicts (``state``, ``image.<camera>``, ``instruction``, ...); its
``info`` carries ``success``. The robot adds the task signals ``reward`` (float32),
``terminated``, ``truncated`` and ``success`` (bool) to each observation.

Two ways to run, chosen by the config's ``real_time``:

- ``false``: one control tick per ``act()``; the simulation stands exactly still between actions,
  which is how it holds position (``stepped``).
- ``true``: the simulation advances on its own thread at ``control_hz``, applying the last command
  on every tick, the way a real arm keeps moving between commands; holding (watchdog, fault,
  non-finite action) commands ``_hold_command()``. ``observe()`` returns the newest tick. When an
  episode ends the simulation freezes until ``reset()`` or the next ``act()``, which starts the
  next episode, so a slow caller never misses the end of one.

A simulated device fault: while the file named by the config's ``fault_file`` exists, the robot
reports a fault (health not ok, actions refused, position held), as a real driver would on an
e-stop. Episodes are seeded once per ``connect()`` (the config's ``seed``); later episodes continue
the env's generator.

A subclass builds its env (``self.env``, time limit included) and its specs (``self._observation_spec``,
``self._action_spec``) in ``__init__``, and may
override ``_shape_observation`` (to split proprioception from a simulator's privileged view) and
``_hold_command``.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import gymnasium as gym
import numpy as np

from hal.robot import Observation, Robot, RobotError
from hal.specs import ActionSpec, FeatureSpec
from sim.faults import fault_reason

log = logging.getLogger(__name__)

RESET_TIMEOUT_S = 5.0


class EnvRobot(Robot):
    """A simulated task as a robot; see the module docstring. The config must have ``real_time``,
    ``control_hz``, ``seed`` and ``fault_file``."""

    env: gym.Env
    _observation_spec: dict[str, FeatureSpec]
    _action_spec: ActionSpec

    def __init__(self, name: str, config: Any, action_dim: int) -> None:
        super().__init__(name, config.watchdog_timeout_s)
        self.config = config
        self._obs: Observation = {}
        self._command = np.zeros(action_dim, np.float32)
        self.episode = 0
        self.steps = 0  # control ticks simulated
        self._seed: int | None = config.seed
        # Real time: the simulation thread and how callers talk to it.
        self._sim: threading.Thread | None = None
        self._sim_lock = threading.Condition()
        self._sim_stop = threading.Event()
        self._wake = threading.Event()
        self._reset_pending = False
        self._sim_error: BaseException | None = None

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

    def _shape_observation(self, obs: dict[str, Any]) -> dict[str, Any]:
        """The env's observation as the robot reports it (default: as it is)."""
        return obs

    # -- the simulation ------------------------------------------------------------------------
    def _start_episode(self) -> None:
        obs, info = self.env.reset(seed=self._seed)
        self._seed = None  # seeded once per connect; later episodes continue the generator
        self._set(obs, 0.0, False, False, bool(info.get("success", False)))

    def _step(self, command: np.ndarray) -> None:
        obs, reward, terminated, truncated, info = self.env.step(command)
        self.steps += 1
        self._set(obs, float(reward), bool(terminated), bool(truncated), bool(info.get("success", False)))

    def _set(self, obs: dict, reward: float, terminated: bool, truncated: bool, success: bool) -> None:
        self._obs = {**self._shape_observation(obs), "reward": np.float32(reward),
                     "terminated": np.bool_(terminated), "truncated": np.bool_(truncated),
                     "success": np.bool_(success)}

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
        self._command = np.zeros_like(self._command)
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
        self._command = command.copy()

    def _hold_command(self) -> np.ndarray:
        return np.zeros_like(self._command)

    def _hold(self) -> np.ndarray:
        # Stepped: not advancing time holds every joint exactly. Real time: the hold command (zero
        # velocity) stops the arm and its position actuators keep it there.
        hold = np.asarray(self._hold_command(), np.float32)
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
