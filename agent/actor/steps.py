"""``StepTransitions``: the per-step transition builder every stream-x actor uses.

One step of a stream: the action chosen for the current (normalized) observation, the raw result
the world returned, and from them one ``Transition``. Values that are not finite (a diverging
simulator, a broken sensor) are screened before any statistic sees them: the step is dropped,
counted, and the episode is over. Observations go through the stream-x preprocessing (running
normalization, reward scaling, time feature) here, on the actor, the only place that sees every
observation of its stream. Stream SARSA's next action is chosen here too, before the update, and
acted on at the next step.

``rill train`` (which updates in-process), ``rill actor`` / ``rill run`` workers on a gymnasium env
or simulated robot, and ``agent_node``'s learner client (fed by control-loop ticks) all build their
transitions with it; where the transition goes (an update, or the link) is the caller's choice.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from learners.streamx.base import ActResult
from learners.transition import Transition

MAX_BAD_RESETS = 10


class NonFiniteResetError(RuntimeError):
    """The environment keeps producing non-finite observations at reset."""


class StepTransitions:
    """Turns ``(chosen action, raw observation, reward, terminated, truncated)`` into transitions.

    State: ``obs`` (the normalized observation to act on; None between episodes), ``pending`` (the
    action Stream SARSA already chose for ``obs``), ``episode`` (episodes finished), ``length`` and
    ``ret`` (steps and raw return of the current episode, kept after it ends until the next
    ``begin``), ``nonfinite`` (steps and resets dropped for non-finite values).
    """

    def __init__(self, pre: Any, algo: Any) -> None:
        self.pre, self.algo = pre, algo
        self.obs: np.ndarray | None = None
        self.pending: ActResult | None = None
        self.episode = 0
        self.length = 0
        self.ret = 0.0
        self.nonfinite = 0

    @property
    def in_episode(self) -> bool:
        return self.obs is not None

    def begin(self, raw: np.ndarray) -> bool:
        """Start an episode from its first raw observation; False (counted) if it is not finite."""
        if not np.all(np.isfinite(raw)):
            self.nonfinite += 1
            return False
        self.obs = self.pre.reset(raw)
        self.ret, self.length, self.pending = 0.0, 0, None
        return True

    def rejoin(self, raw: np.ndarray) -> None:
        """Continue the current episode from ``raw`` after a gap in the data (a robot that held):
        normalized as a fresh start, counters kept, nothing learned across the gap."""
        self.obs = self.pre.reset(raw)
        self.pending = None

    def abandon(self) -> None:
        """Forget the current observation: no transition can be made from it."""
        self.obs, self.pending = None, None

    def choose(self) -> ActResult:
        """The action for ``obs``: the one Stream SARSA already chose, else the policy's."""
        return self.pending if self.pending is not None else self.algo.act(self.obs)

    def record(self, chosen: ActResult, raw: np.ndarray, reward: float, terminated: bool, truncated: bool,
               **meta: Any) -> Transition | None:
        """The transition from ``obs`` by ``chosen`` to ``raw``; None when the step is dropped.

        ``meta`` fills the transition's bookkeeping (``seq``, ``actor_id``, ``policy_version``,
        ``timestamp``, ``extras``). After an episode end (or a dropped step) ``in_episode`` is False.
        """
        self.length += 1
        if not (np.all(np.isfinite(raw)) and math.isfinite(reward)):
            self.nonfinite += 1
            self.abandon()  # the episode is not to be trusted any further
            return None
        self.ret += float(reward)
        s = self.obs
        s_next, scaled = self.pre.step(raw, reward, terminated, truncated)
        done = terminated or truncated
        next_choice = self.algo.act(s_next) if self.algo.needs_next_action and not done else None
        transition = Transition(
            s,
            chosen.action,
            scaled,
            s_next,
            bool(terminated),
            bool(truncated),
            episode=self.episode,
            step=self.length,
            behavior_logp=chosen.logp,
            next_action=None if next_choice is None else next_choice.action,
            **meta,
        )
        if done:
            self.episode += 1
            self.obs, self.pending = None, None
        else:
            self.obs, self.pending = s_next, next_choice
        return transition


class SteppingActor:
    """An actor that steps an environment (or a robot) itself, one ``StepTransitions`` stream:
    ``rill train`` (which updates in-process) and ``ActorRunner`` (which streams to a learner)."""

    builder: StepTransitions

    @property
    def episode(self) -> int:
        """Episodes finished."""
        return self.builder.episode

    @property
    def nonfinite(self) -> int:
        """Steps and resets dropped for non-finite values."""
        return self.builder.nonfinite

    def begin_episode(self, reset: Callable[[], np.ndarray], name: str) -> None:
        """Start an episode from ``reset()``, retrying a non-finite first observation a few times."""
        for _ in range(MAX_BAD_RESETS):
            if self.builder.begin(reset()):
                return
        raise NonFiniteResetError(f"{name}: {MAX_BAD_RESETS} resets in a row gave non-finite observations")
