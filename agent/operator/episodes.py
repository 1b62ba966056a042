"""``EpisodeController``: episodes started, ended, labelled and reset by an operator.

The ``ControlLoop`` asks it every tick what to do (``tick`` returns a ``Directive``) and sends
everything through the robot's own ``act`` / ``hold``, so the robot's clamps and watchdog apply
to the reset motion as to the policy. Phases:

- ``waiting``: the robot holds until the operator says ``start`` for the next episode (or by
  itself when ``wait_for_start`` is false, or after ``wait_timeout_s``);
- ``running``: the policy (or a person who took over) acts. The episode ends on the operator's
  ``success`` / ``failure`` (labelled: the last transition is terminal with that outcome's
  reward), ``stop`` (outcome ``stopped``; the robot then holds and waits for ``start``) or
  ``reset`` (outcome ``stopped``, then the reset routine), on ``time_limit_s`` (``timeout``,
  truncated), or when the robot itself reports an end (its ``terminated`` / ``truncated`` /
  ``success``);
- ``resetting``: to ``home_pose`` at ``reset_speed`` units/s (never more per tick than that, and
  the robot's ``max_delta`` clamps again), until the measured position is within
  ``home_tolerance`` or ``reset_timeout_s`` passes (then it holds and says so); with no home pose,
  the robot's own ``reset()``. Then ``waiting``.

Events are queued by any thread (``submit``) and applied at the next tick, on the control thread;
one that names an episode other than the one it may act on is refused, counted and logged with
both numbers. ``finish`` ends an episode under way when the node stops (``stopped``,
``node_stopped``).
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.operator.config import OperatorConfig
from agent.operator.events import OperatorEvent
from hal.errors import ConfigError

log = logging.getLogger(__name__)

PHASES = ("waiting", "running", "resetting")
OUTCOMES = ("success", "failure", "timeout", "stopped")
ENDED_BY = ("robot", "reward_model", "operator", "time_limit", "node_stopped")


def robot_ender(obs: dict) -> str:
    """Who ended an episode the robot reported over: its reward model (``agent.reward``), or itself."""
    return "reward_model" if "reward_confidence" in obs and bool(obs.get("terminated", False)) else "robot"


def robot_end(obs: dict, episode: int, duration_s: float = 0.0) -> EpisodeEnd:
    """The end of an episode the robot (or its reward model) reported in ``obs``, with no operator."""
    terminated = bool(obs.get("terminated", False))
    success = obs.get("success")
    outcome = "success" if success is not None and bool(success) else "failure" if terminated else "timeout"
    return EpisodeEnd(episode, outcome, robot_ender(obs), terminated, duration_s=duration_s)


@dataclass(frozen=True)
class EpisodeEnd:
    """How an episode ended. ``reward`` is added to its last transition (an operator's label);
    ``terminated`` false means truncated (the value after it is bootstrapped)."""

    episode: int
    outcome: str  # one of OUTCOMES
    ended_by: str  # one of ENDED_BY
    terminated: bool
    reward: float = 0.0
    label_source: str = ""  # "operator" when a person said success or failure
    duration_s: float = 0.0

    @property
    def success(self) -> bool | None:
        if self.outcome == "success":
            return True
        return False if self.outcome == "failure" else None


def labelled_step(reward: float, terminated: bool, truncated: bool, end: EpisodeEnd | None,
                  intervened: bool) -> tuple[float, bool, bool, dict[str, Any]]:
    """A step's ``(reward, terminated, truncated, extras)`` once it is known whether ``end`` closed
    its episode: an operator's outcome reward added, its terminal flag, ``success`` and
    ``label_source``; ``intervened`` when a person drove it. The one rule every operated actor uses."""
    extras: dict[str, Any] = {}
    if end is not None:
        reward += float(end.reward)  # the operator's success / failure reward
        terminated, truncated = bool(end.terminated), not end.terminated
        if end.success is not None:
            extras["success"] = bool(end.success)
        if end.label_source:
            extras["label_source"] = end.label_source
    extras["raw_reward"] = reward
    if intervened:
        extras["intervened"] = True
    return reward, terminated, truncated, extras


@dataclass(frozen=True)
class Directive:
    """What the loop does this tick: ``policy`` (act as usual), ``drive`` (send ``action``) or
    ``hold`` (with ``reason``). ``ended``: the episode that ended on this tick; ``started``: a new
    episode began on this tick (the loop forgets its old plans)."""

    control: str
    phase: str
    action: np.ndarray | None = None
    reason: str = ""
    ended: EpisodeEnd | None = None
    started: bool = False


class EpisodeController:
    """Runs episodes for ``config`` on a robot with ``action_dim`` actions at ``control_hz``.

    ``reset_robot``: the robot's own reset (used when ``home_pose`` is empty); ``measure``: the
    robot's measured position in action space from an observation (default: the first
    ``action_dim`` entries of ``state``, joint positions on a ``Ros2Robot``).
    """

    def __init__(self, config: OperatorConfig, action_dim: int, control_hz: float,
                 reset_robot: Callable[[], Any] | None = None,
                 measure: Callable[[dict], np.ndarray | None] | None = None,
                 on_start: Callable[[], Any] | None = None, first_episode: int = 1) -> None:
        self.config = c = config
        self.on_start = on_start  # told when an episode starts (a reward model forgets the last one)
        if c.home_pose and len(c.home_pose) != action_dim:
            raise ConfigError(f"operator.home_pose has {len(c.home_pose)} values for a robot with "
                              f"{action_dim} actions: {c.home_pose}")
        self.home = np.asarray(c.home_pose, np.float32) if c.home_pose else None
        self.step_size = c.reset_speed / control_hz
        self.action_dim = action_dim
        self.reset_robot = reset_robot
        self.measure = measure or (lambda obs: np.asarray(obs["state"], np.float32)[:action_dim])
        self.phase = "waiting"
        if type(first_episode) is not int or first_episode < 1:
            raise ValueError(f"EpisodeController: first_episode must be an integer >= 1, "
                             f"got {first_episode!r}")
        # The episode under way, or the last one that ended; a restarted node counts on from its
        # episode log (``first_episode``), so that an operator never starts a number twice.
        self.episode = first_episode - 1
        self.last_end: EpisodeEnd | None = None
        self.takeovers = self.intervened_steps = 0  # of the episode under way (or last)
        self.refused: collections.Counter[str] = collections.Counter()
        self.last_refusal = ""
        self.changes = 0  # bumped on every change of phase or episode (for publishers)
        self._events: collections.deque[OperatorEvent] = collections.deque()
        self._lock = threading.Lock()
        self._since = time.monotonic()  # when the current phase began
        self._hold_reason = "waiting for operator"
        self._must_wait = c.wait_for_start
        self._reset_cmd: np.ndarray | None = None
        self._was_intervened = False

    # -- the operator's side (any thread) ---------------------------------------------------------
    def submit(self, event: OperatorEvent) -> None:
        """Queue ``event``; it is applied (or refused) at the next tick."""
        with self._lock:
            self._events.append(event)

    def state(self) -> dict[str, Any]:
        """The episode state as an operator sees it (published, shown, written to status files)."""
        end = self.last_end
        return {"episode": self.episode, "next": self.episode + 1, "phase": self.phase,
                "outcome": end.outcome if end else "", "ended_by": end.ended_by if end else "",
                "takeovers": self.takeovers, "intervened_steps": self.intervened_steps,
                "phase_s": round(time.monotonic() - self._since, 2), "refused": sum(self.refused.values()),
                "last_refusal": self.last_refusal}

    # -- the control thread ----------------------------------------------------------------------
    def note_intervention(self, intervened: bool) -> None:
        """Count this tick's intervention (the loop calls it each running tick)."""
        if intervened and self.phase == "running":
            self.intervened_steps += 1
            self.takeovers += not self._was_intervened
        self._was_intervened = intervened

    def tick(self, obs: dict, now: float, last_sent: np.ndarray | None) -> Directive:
        """What to do this tick, given the newest observation and the robot's last command."""
        with self._lock:
            events, self._events = list(self._events), collections.deque()
        ended, started = None, False
        for event in events:
            result = self._apply(event, now)
            if isinstance(result, EpisodeEnd):
                ended = result
        if self.phase == "running" and ended is None:
            ended = self._check_end(obs, now)
            if ended is not None:
                self._after_end("resetting", now)
        if self.phase == "waiting" and self._start_due(now):
            self._start(now)
            started = True
        if self.phase == "running":
            return Directive("policy", "running", ended=ended, started=started)
        if self.phase == "resetting":
            action = self._reset_step(obs, now, last_sent)
            if action is not None:
                return Directive("drive", "resetting", action, "reset", ended=ended)
        return Directive("hold", self.phase, reason=self._hold_reason, ended=ended)

    def finish(self, now: float) -> EpisodeEnd | None:
        """End the episode under way because the node stops; None when none runs."""
        if self.phase != "running":
            return None
        end = self._end("stopped", "node_stopped", now)
        self._after_end("waiting", now, "node stopped")
        return end

    # -- events ----------------------------------------------------------------------------------
    def _refuse(self, event: OperatorEvent, why: str) -> None:
        self.refused[event.event] += 1
        self.last_refusal = f"{event.event} for episode {event.episode} refused: {why}"
        log.warning("operator (%s): %s", event.source, self.last_refusal)

    def _apply(self, event: OperatorEvent, now: float) -> EpisodeEnd | None:
        name, n = event.event, event.episode
        if name == "start":
            if self.phase == "running":
                return self._refuse(event, f"episode {self.episode} is running")
            if n != self.episode + 1:
                return self._refuse(event, f"no episode {n} to start; the next episode is {self.episode + 1}")
            if self.phase == "resetting":
                self._reset_cmd = None  # the operator starts before the reset finished: their call
            self._after_end("waiting", now)
            self._must_wait = False
            return None
        if n != self.episode:
            return self._refuse(event, f"no episode {n}; the current episode is {self.episode} "
                                       f"({self.phase})")
        if name in ("success", "failure"):
            if self.phase != "running":
                return self._refuse(event, f"episode {n} is not running ({self.phase}, ended "
                                           f"{self.last_end.outcome if self.last_end else 'never started'})")
            end = self._end(name, "operator", now)
            self._after_end("resetting", now)
            return end
        end = self._end("stopped", "operator", now) if self.phase == "running" else None
        if name == "stop":
            self._after_end("waiting", now, "stopped by operator")
            self._must_wait = True
        else:  # reset
            self._after_end("resetting", now)
        return end

    # -- phases ----------------------------------------------------------------------------------
    def _set_phase(self, phase: str, now: float) -> None:
        self.phase, self._since = phase, now
        self.changes += 1

    def _check_end(self, obs: dict, now: float) -> EpisodeEnd | None:
        c = self.config
        if bool(obs.get("terminated", False)) or bool(obs.get("truncated", False)):
            terminated = bool(obs.get("terminated", False))
            success = obs.get("success")
            outcome = ("success" if success is not None and bool(success)
                       else "failure" if terminated else "timeout")
            return self._end(outcome, robot_ender(obs), now, terminated=terminated)
        if c.time_limit_s and now - self._since >= c.time_limit_s:
            return self._end("timeout", "time_limit", now)
        return None

    def _end(self, outcome: str, ended_by: str, now: float, terminated: bool | None = None) -> EpisodeEnd:
        c = self.config
        labelled = ended_by == "operator" and outcome in ("success", "failure")
        reward = (c.success_reward if outcome == "success" else c.failure_reward) if labelled else 0.0
        if terminated is None:
            terminated = outcome in ("success", "failure")
        end = EpisodeEnd(self.episode, outcome, ended_by, terminated, reward, "operator" if labelled else "",
                         round(now - self._since, 3))
        self.last_end = end
        log.info("episode %d ended: %s (by %s) after %.1f s, %d takeovers, %d intervened steps", end.episode,
                 outcome, ended_by, end.duration_s, self.takeovers, self.intervened_steps)
        return end

    def _after_end(self, phase: str, now: float, reason: str = "waiting for operator") -> None:
        self._hold_reason = reason
        self._reset_cmd = None
        if phase == "resetting":
            self._must_wait = self.config.wait_for_start
        self._set_phase(phase, now)

    def _start_due(self, now: float) -> bool:
        if not self._must_wait:
            return True
        timeout = self.config.wait_timeout_s
        if timeout and now - self._since >= timeout:
            log.info("no start from the operator within %.1f s: episode %d starts", timeout, self.episode + 1)
            return True
        return False

    def _start(self, now: float) -> None:
        self.episode += 1
        self.takeovers = self.intervened_steps = 0
        self._was_intervened = False
        self._must_wait = self.config.wait_for_start
        self._set_phase("running", now)
        if self.on_start is not None:
            self.on_start()
        log.info("episode %d started", self.episode)

    def _reset_step(self, obs: dict, now: float, last_sent: np.ndarray | None) -> np.ndarray | None:
        """The next command of the reset routine; None once it is over (the phase is then waiting)."""
        if self.home is None:
            if self.reset_robot is not None:
                self.reset_robot()
            self._after_end("waiting", now)
            return None
        measured = self._measured(obs)
        if self._reset_cmd is None:
            start = last_sent if last_sent is not None else measured
            if start is None:
                return self._reset_over(now, "reset: no position known to start from; holding")
            self._reset_cmd = np.asarray(start, np.float32).copy()
        gap = self.home - self._reset_cmd
        tolerance = self.config.home_tolerance
        settled = measured is None or float(np.max(np.abs(measured - self.home))) <= tolerance
        if float(np.max(np.abs(gap))) <= 1e-6 and settled:
            return self._reset_over(now)
        if now - self._since > self.config.reset_timeout_s:
            off = "?" if measured is None else f"{float(np.max(np.abs(measured - self.home))):.3f}"
            return self._reset_over(now, f"reset: home not reached within {self.config.reset_timeout_s} s "
                                         f"(off by {off}); holding")
        self._reset_cmd = (self._reset_cmd + np.clip(gap, -self.step_size, self.step_size)).astype(np.float32)
        return self._reset_cmd.copy()

    def _reset_over(self, now: float, problem: str = "") -> None:
        if problem:
            log.warning("episode %d: %s", self.episode, problem)
        self._after_end("waiting", now, problem or "waiting for operator")
        return None

    def _measured(self, obs: dict) -> np.ndarray | None:
        try:
            measured = self.measure(obs)
        except (KeyError, ValueError, TypeError):
            return None
        if measured is None:
            return None
        measured = np.asarray(measured, np.float32)
        return measured if measured.shape == (self.action_dim,) and np.all(np.isfinite(measured)) else None
