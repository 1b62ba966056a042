"""``OperatedSteps``: a person in the loop of an actor that steps its world itself (``rill actor
--keyboard``), with the semantics ``agent_node`` gives its ``ControlLoop`` ticks.

Each step asks the ``EpisodeController`` what to do (``running``: act; ``resetting``: drive the
reset routine, or the source's own reset; ``waiting``: hold) and the intervention source (the
keyboard) whether a person has taken over. A person's command replaces the policy's action for
that step and goes through the source (a robot's own clamps; a gymnasium env's action space); the
step's transition is flagged ``extras["intervened"] = True`` with ``behavior_logp`` NaN (no policy
drew it). An active source without a command (the keyboard went away) holds the world.

A step's transition is recorded at the next step, once the controller has said whether the
episode ended there: an operator's ``success`` / ``failure`` makes it terminal with the outcome's
reward added, ``extras["success"]`` and ``extras["label_source"] = "operator"``; ``stop``, ``reset``
and the time limit truncate it. Each finished episode is logged with its outcome, who ended it, and
the person's takeovers and intervened steps (``episodes.csv``).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.actor.episodes import EpisodeRecord
from agent.operator.episodes import EpisodeController, EpisodeEnd, labelled_step
from agent.operator.intervention import NONE, InterventionSource
from learners.streamx.base import ActResult

log = logging.getLogger(__name__)


@dataclass
class _Step:
    """A step taken, not yet recorded: its action (and logp), and what the world returned."""

    chosen: ActResult
    raw: np.ndarray
    reward: float
    terminated: bool
    truncated: bool
    intervened: bool


class OperatedSteps:
    """Steps ``actor`` (an ``ActorRunner``: ``source``, ``builder``, ``feed``) under ``controller``
    and ``intervention``. ``step()`` returns True when the world took an action of the episode."""

    def __init__(self, actor: Any, controller: EpisodeController,
                 intervention: InterventionSource | None) -> None:
        self.actor, self.controller, self.intervention = actor, controller, intervention
        self._pending: _Step | None = None
        self._obs: dict[str, Any] = {"state": actor.source.state()}
        self._gap = False  # the world moved on while nothing was recorded: rejoin before acting
        self._was_intervened = False
        self.takeovers = self.intervened_steps = 0  # of the episode under way
        self.intervened_total = 0  # intervened transitions made
        self.held = 0  # steps the world was held (waiting, a lost keyboard)

    @property
    def phase(self) -> str:
        return self.controller.phase

    def step(self) -> bool:
        a, now = self.actor, time.monotonic()
        source, builder = a.source, a.builder
        directive = self.controller.tick(self._obs, now, source.last_sent)
        person = self.intervention.poll(now, source.last_sent) if self.intervention is not None else NONE
        running = directive.phase == "running"
        if running:
            self.controller.note_intervention(person.active)
            self._count(person.active)
        self._settle(directive.ended)
        if directive.started:  # from where the world is now (after the reset routine, if any)
            raw = source.state()
            self._obs = {"state": raw}
            builder.begin(raw)
            self._gap = False
        if person.active and person.command is None:
            return self._hold(f"intervention lost: {person.lost}")
        if person.active:
            action = np.asarray(person.command, np.float32)
        elif directive.control == "policy":
            action = None
        elif directive.control == "drive":
            self._observe(*source.step(directive.action))
            self._gap = True
            return False
        else:
            return self._hold(directive.reason)
        if not running:  # a person drives outside an episode: the world moves, nothing is learned
            self._observe(*source.step(action))
            self._gap = True
            return False
        if not builder.in_episode:
            builder.begin(source.state())
        elif self._gap:  # the world moved while held: nothing is learned across the gap
            builder.rejoin(source.state())
        self._gap = False
        chosen = builder.choose() if action is None else None
        raw, reward, terminated, truncated = source.step(chosen.action if chosen is not None else action)
        if chosen is None:
            chosen = ActResult(np.asarray(source.last_sent, np.float32).copy(), float("nan"))
            builder.pending = None  # a next action chosen for the policy was not taken
        self._pending = _Step(chosen, raw, reward, terminated, truncated, person.active)
        self._observe(raw, reward, terminated, truncated)
        return True

    @property
    def unrecorded(self) -> int:
        """Steps taken but not yet handed to the stream (0 or 1): the last one waits for the next
        step, which may end its episode and label it."""
        return int(self._pending is not None)

    def _observe(self, raw: np.ndarray, reward: float, terminated: bool, truncated: bool) -> None:
        self._obs = {**getattr(self.actor.source, "signals", {}), "state": raw, "reward": reward,
                     "terminated": terminated, "truncated": truncated}

    def _hold(self, reason: str) -> bool:
        self._gap = self.actor.source.hold(reason) or self._gap
        self.held += 1
        return False

    def _count(self, intervened: bool) -> None:
        self.intervened_steps += intervened
        self.takeovers += intervened and not self._was_intervened
        self._was_intervened = intervened

    def _settle(self, end: EpisodeEnd | None) -> None:
        """Record the step taken last, labelled by the end of its episode if one came."""
        a, step, self._pending = self.actor, self._pending, None
        b = a.builder
        if step is None or not b.in_episode:
            if end is not None:
                if b.in_episode:
                    self._log(end, None)
                b.abandon()
            return
        reward, terminated, truncated, extras = labelled_step(step.reward, step.terminated, step.truncated,
                                                              end, step.intervened)
        t = b.record(step.chosen, step.raw, reward, terminated, truncated, actor_id=a.config.actor_id,
                     policy_version=max(a.version, 0), timestamp=time.time(), extras=extras)
        if t is None:  # a non-finite step: dropped and counted, the episode abandoned
            if end is not None:
                self._log(end, None)
            return
        a.feed.emit(t)
        self.intervened_total += step.intervened
        if t.done:
            self._log(end, t.seq)

    def _log(self, end: EpisodeEnd | None, seq: int | None) -> None:
        a, b = self.actor, self.actor.builder
        episode = end.episode if end is not None else b.episode
        a.feed.log_episode(EpisodeRecord(
            a.steps, episode, b.ret, b.length, a.elapsed_s, seq=seq,
            success=None if end is None else end.success, policy_version=a.version,
            outcome=None if end is None else end.outcome, ended_by=None if end is None else end.ended_by,
            takeovers=self.takeovers, intervened_steps=self.intervened_steps))
        log.info("episode %d: %s (%s), return %.3f over %d steps, %d takeovers, %d intervened steps",
                 episode, end.outcome if end else "-", end.ended_by if end else "-", b.ret, b.length,
                 self.takeovers, self.intervened_steps)
        self.takeovers = self.intervened_steps = 0
        self._was_intervened = False

    def status(self) -> str:
        """A short line for the live display: who drives, the episode, its interventions so far."""
        c = self.controller
        last = c.last_end.outcome if c.last_end else "-"
        who = "YOU" if getattr(self.intervention, "active", False) else "policy"
        return (f"{who} | ep {c.episode} {c.phase} | takeovers {self.takeovers} "
                f"intervened {self.intervened_steps} | last {last}")
