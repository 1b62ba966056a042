"""``ScriptedReachOperator``: a script standing in for the person at a stepped reach task.

It does what a person watching the tabletop arm (``sim-tabletop``, task ``reach``) would do, for an
actor that steps its world itself (``ActorRunner(..., operator=, intervention=)``, which runs
``agent.operator.stepping.OperatedSteps``):

- as an ``InterventionSource`` (``poll``): it watches the distance from the pusher to the named
  block and takes over when that distance grew ``away_steps`` steps in a row (by ``away_margin`` in
  all) while the pusher is farther than ``release_distance``; it then commands the pusher's velocity
  toward the block, ``clip(gain * (block - pusher), -1, 1)``, and releases once the pusher is within
  ``release_distance`` or has closed in ``hand_back_steps`` steps in a row (it heads right again);
- as the episode's judge (``watch``, called between steps): it says ``success`` to the
  ``EpisodeController`` once the simulator reports success, ``failure`` after ``time_limit_steps``
  steps of an episode, each at most once per episode.

What it judges by is the simulator's own view: the robot observation's ``privileged`` vector (or
``state`` when it has none) read by the names ``TabletopEnv.state_names()`` gives, and ``success``.
A real person would use their eyes. The robot should not end episodes itself
(``terminate_on_success: false`` and a long ``episode_steps``), so ends are the operator's word.

With ``take_over`` false it only watches: it counts each time it would have taken over (a
baseline: how often a policy nobody corrects heads away), once per excursion (it counts again
only after the distance has shrunk once), and never drives.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.operator.events import OperatorEvent
from agent.operator.intervention import NONE, Intervention
from hal.config import check_number
from hal.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class ScriptedReachConfig:
    """When the scripted operator takes over, how it drives, when it ends an episode (see the module
    docstring; distances in metres, as the simulator's state has them)."""

    away_steps: int = 3
    away_margin: float = 0.003
    gain: float = 8.0
    release_distance: float = 0.08
    hand_back_steps: int = 10
    time_limit_steps: int = 150
    take_over: bool = True

    def __post_init__(self) -> None:
        for name in ("away_steps", "hand_back_steps", "time_limit_steps"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"scripted_operator.{name} must be an integer >= 1, got {value!r}")
        check_number("scripted_operator", "away_margin", self.away_margin, 0)
        for name in ("gain", "release_distance"):
            check_number("scripted_operator", name, getattr(self, name), 0, strict=True)


def reach_gap(names: Sequence[str]) -> Callable[[np.ndarray], np.ndarray]:
    """A function of a state vector laid out as ``names`` giving the named block minus the pusher
    (x, y): from ``goal_dx``/``goal_dy`` (``goal_in_state: relative``), or from the goal one-hot
    (``goal_<color>``) and that block's ``<color>_dx``/``<color>_dy``."""
    index = {n: i for i, n in enumerate(names)}
    if "goal_dx" in index and "goal_dy" in index:
        dx, dy = index["goal_dx"], index["goal_dy"]
        return lambda state: np.array([state[dx], state[dy]], np.float64)
    colors = [n[len("goal_"):] for n in names if n.startswith("goal_") and f"{n[5:]}_dx" in index]
    if not colors:
        raise ConfigError("scripted operator: the state names neither goal_dx/goal_dy nor a goal one-hot "
                          f"(goal_<color>); got {list(names)}: use goal_in_state 'relative' or 'onehot'")
    onehot = [index[f"goal_{c}"] for c in colors]
    rel = np.array([[index[f"{c}_dx"], index[f"{c}_dy"]] for c in colors])

    def gap(state: np.ndarray) -> np.ndarray:
        goal = int(np.argmax([state[i] for i in onehot]))
        return np.array([state[rel[goal, 0]], state[rel[goal, 1]]], np.float64)

    return gap


class ScriptedReachOperator:
    """Takes over from the policy and ends episodes of a reach task (see the module docstring).

    ``observe()`` returns the robot's observation (``state`` or ``privileged``, and ``success``);
    ``names`` label its state vector; ``controller`` is the ``EpisodeController`` it speaks to
    (``ActorRunner.operated.controller``; set it after the runner is built, as for the keyboard).
    """

    def __init__(self, observe: Callable[[], Mapping[str, Any]], names: Sequence[str],
                 config: ScriptedReachConfig | None = None, controller: Any = None) -> None:
        self.observe, self.config, self.controller = observe, config or ScriptedReachConfig(), controller
        self.gap = reach_gap(names)
        self.active = False
        self.takeovers = 0  # in this operator's life (would-be ones when it only watches)
        self.takeovers_by_episode: dict[int, int] = {}
        self.marked: dict[str, int] = {"success": 0, "failure": 0}
        self._episode = -1
        self._steps = 0  # polls in the running episode: the steps it has taken
        self._history: list[float] = []
        self._closing = 0
        self._counted = False  # watching only: this excursion away was counted
        self._judged = -1  # the last episode it said success or failure for

    @classmethod
    def for_tabletop(cls, robot: Any, config: ScriptedReachConfig | None = None) -> ScriptedReachOperator:
        """For a connected ``TabletopRobot``: its observations, its simulator's state names."""
        return cls(robot.observe, robot.tabletop.state_names(), config)

    def _distance_and_gap(self) -> tuple[float, np.ndarray, bool]:
        obs = self.observe()
        state = np.asarray(obs["privileged"] if "privileged" in obs else obs["state"], np.float64)
        gap = self.gap(state)
        return float(np.hypot(*gap)), gap, bool(obs.get("success", False))

    def _new_episode(self, episode: int) -> None:
        self._episode, self._steps = episode, 0
        self._history.clear()
        self.active, self._closing, self._counted = False, 0, False

    # -- the InterventionSource ------------------------------------------------------------------
    def poll(self, now: float, last_sent: np.ndarray | None) -> Intervention:
        c = self.controller
        if c is None or c.phase != "running":
            self.active = False
            return NONE
        if c.episode != self._episode:
            self._new_episode(c.episode)
        self._steps += 1
        if self._judged == c.episode:  # ended in its eyes; the controller ends it at its next tick
            self.active = False
            return NONE
        distance, gap, _ = self._distance_and_gap()
        cfg = self.config
        if self.active:
            self._closing = self._closing + 1 if self._history and distance < self._history[-1] else 0
            self._history = [distance]
            if distance <= cfg.release_distance or self._closing >= cfg.hand_back_steps:
                self.active, self._closing = False, 0
                self._history.clear()
                return NONE
        else:
            h = self._history = [*self._history, distance][-(cfg.away_steps + 1):]
            if self._counted and len(h) > 1 and h[-1] < h[-2]:
                self._counted = False  # (watching) the excursion is over: it heads right again
            away = (len(h) > cfg.away_steps and all(b > a for a, b in itertools.pairwise(h))
                    and h[-1] - h[0] >= cfg.away_margin and distance > cfg.release_distance)
            if not away or self._counted:
                return NONE
            self.takeovers += 1
            self.takeovers_by_episode[c.episode] = self.takeovers_by_episode.get(c.episode, 0) + 1
            if not cfg.take_over:
                self._counted = True
                return NONE
            self._history = [distance]
            self.active, self._closing = True, 0
        return Intervention(True, np.clip(cfg.gain * gap, -1.0, 1.0).astype(np.float32))

    # -- the judge -------------------------------------------------------------------------------
    def watch(self, *_: Any) -> str | None:
        """Between steps: say ``success`` or ``failure`` for the running episode when due (at most once
        per episode); returns the event said, if any. Usable as ``ActorRunner.run(on_step=...)``."""
        c = self.controller
        if c is None or c.phase != "running" or c.episode != self._episode or self._judged == c.episode:
            return None
        _, _, success = self._distance_and_gap()
        event = "success" if success else "failure" if self._steps >= self.config.time_limit_steps else None
        if event is not None:
            self._judged = c.episode
            self.marked[event] += 1
            c.submit(OperatorEvent(event, c.episode, source="scripted"))
        return event
