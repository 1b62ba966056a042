"""``DemoRecorder``: control-loop ticks in, demonstration episodes (``agent.demos.episodes``) out.

It is the control loop's ``on_tick`` consumer, like an online actor's transition builder, so a
demonstration is recorded by the same loop that runs a policy on the robot: tick ``k`` observed
``o_k`` and sent ``a_k``; tick ``k+1``'s observation (with the reward and success the robot
reports by then) completes step ``(o_k, a_k)``. Ticks that held the robot sent nothing and record
nothing: a demonstration never holds an action the robot did not receive.

When the acting side fails (``policy failing``: a teleoperator's topic went quiet, a scripted
expert refused) the episode so far is closed as ``aborted`` and the robot reset: a recorder never
makes up actions to fill a gap. Whole episodes go to the cache; ``episodes`` counts them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.demos.episodes import IMAGE_PREFIX, demo_actor
from agent.loop.control import TickRecord
from learners.cache import ReplayCache
from learners.transition import Transition

log = logging.getLogger(__name__)

# What a demonstration keeps of an observation besides frames. ``privileged`` (a simulator's own
# view of the scene, where the robot has one) is kept for training signals beyond imitation.
_KEEP = ("state", "instruction", "privileged")
_NOT_FRESH = ("stale observation", "bad observation")  # ticks whose observation is not a new one


def _frames(obs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obs.items() if k.startswith(IMAGE_PREFIX)}


def _acted_on(obs: dict[str, Any]) -> dict[str, Any]:
    kept = {k: obs[k] for k in _KEEP if k in obs}
    kept.update(_frames(obs))
    return kept


@dataclass
class RecordStats:
    episodes: int = 0
    successful: int = 0
    aborted: int = 0
    steps: int = 0
    lengths: list[int] = field(default_factory=list)


class DemoRecorder:
    """Writes demonstration episodes of ``source`` into ``cache`` (an open ``ReplayCache``).

    ``episode`` numbers continue after the ones the cache already holds for this source, so more
    recording sessions add to a set. ``on_episode(stats)`` is called after each written episode.
    ``want_reset`` is set when an episode was aborted: the driver should start a new one.
    """

    def __init__(self, cache: ReplayCache, source: str, *, control_hz: float | None = None,
                 on_episode: Callable[[RecordStats], None] | None = None) -> None:
        self.cache, self.source, self.actor_id = cache, source, demo_actor(source)
        self.control_hz = control_hz
        self.on_episode = on_episode
        self.want_reset = False
        self.stats = RecordStats()
        self.episode, self.seq = self._continue_after()
        self._steps: list[Transition] = []
        # (o_k, a_k, the source's clean label for a_k or None, its counterfactual labels or None),
        # awaiting o_{k+1}
        self._pending: tuple[dict[str, Any], np.ndarray, np.ndarray | None, dict | None] | None = None
        self._loop_episode: int | None = None

    def _continue_after(self) -> tuple[int, int]:
        episode = seq = 0
        for _offset, t in self.cache.iter_transitions(actor_id=self.actor_id):
            episode, seq = max(episode, t.episode + 1), max(seq, t.seq)
        return episode, seq

    def on_tick(self, record: TickRecord) -> None:
        obs = record.observation
        if self._loop_episode is not None and record.episode != self._loop_episode:
            self._drop_open("the loop started a new episode")
        self._loop_episode = record.episode
        fresh = record.reason not in _NOT_FRESH
        if self._pending is not None and fresh:  # o_{k+1} (and what the robot reports of a_k) is here
            self._close_step(obs, done=False)
        if fresh and record.episode_end and self._steps:  # ended after a tick that sent nothing
            last = self._steps[-1]
            last.terminated = bool(obs.get("terminated", False))
            last.truncated = not last.terminated
            last.extras["success"] = bool(obs.get("success", False))
            last.next_obs = {"state": np.asarray(obs.get("state", last.next_obs["state"]), np.float32),
                             **_frames(obs)}
            self._write_episode(aborted=False)
        if record.held:
            if record.reason == "policy failing" and self._steps:
                self._finish(aborted=True)
            return  # nothing was sent: nothing to record
        if not record.episode_end:  # at an episode's end the robot is reset: what it was sent is moot
            extras = record.chunk.extras if record.chunk is not None else {}
            label = extras.get("expert_action")
            self._pending = (_acted_on(obs), np.asarray(record.action, np.float32).copy(),
                             None if label is None else np.asarray(label, np.float32).copy(),
                             extras.get("counterfactual"))

    def _close_step(self, obs: dict[str, Any], done: bool) -> None:
        prev, action, label, counterfactual = self._pending
        self._pending = None
        terminated = bool(obs.get("terminated", False))
        truncated = bool(obs.get("truncated", False)) or (done and not terminated)
        extras = {"source": self.source, "success": bool(obs.get("success", False))}
        if label is not None:  # an expert acting with noise: what it meant, to imitate (DART)
            extras["label"] = label
        if counterfactual:  # what it would have done had the instruction named another goal
            extras["counterfactual"] = {str(k): np.asarray(v, np.float32) for k, v in counterfactual.items()}
        if self.control_hz is not None:
            extras["control_hz"] = float(self.control_hz)  # the rate exports play the episode at
        self.seq += 1
        next_obs = {"state": np.asarray(obs.get("state", prev["state"]), np.float32)}
        if terminated or truncated:
            next_obs.update(_frames(obs))  # the final frame: no later step will hold it
        self._steps.append(Transition(
            obs=prev, action=action, reward=float(obs.get("reward", 0.0)),
            next_obs=next_obs,
            terminated=terminated, truncated=truncated, actor_id=self.actor_id, seq=self.seq,
            episode=self.episode, step=len(self._steps), timestamp=time.time(), extras=extras))
        if terminated or truncated:
            self._write_episode(aborted=False)

    def _finish(self, aborted: bool) -> None:
        """End the open episode at its last whole step (the acting side failed) and reset."""
        last = self._steps[-1]
        last.truncated = last.truncated or not last.terminated
        self._write_episode(aborted=aborted)
        log.warning("demonstration episode aborted: the acting side stopped answering")
        self.want_reset = True

    def _drop_open(self, why: str) -> None:
        if self._steps or self._pending:
            log.warning("demonstration: %d recorded steps dropped: %s", len(self._steps), why)
            self.seq -= len(self._steps)
        self._steps, self._pending = [], None

    def _write_episode(self, aborted: bool) -> None:
        steps, self._steps = self._steps, []
        if not steps:
            return
        last = steps[-1]
        if not last.done:
            last.truncated = True
        if aborted:
            last.extras["aborted"] = True
        self.cache.append_many(steps)
        self.cache.flush()
        s = self.stats
        s.episodes, s.steps = s.episodes + 1, s.steps + len(steps)
        s.successful += bool(last.extras.get("success"))
        s.aborted += aborted
        s.lengths.append(len(steps))
        log.info("demonstration episode %d (%s): %d steps, %s", self.episode, self.source, len(steps),
                 "aborted" if aborted else ("success" if last.extras.get("success") else "no success"))
        self.episode += 1
        if self.on_episode is not None:
            self.on_episode(s)

    def close(self) -> None:
        """Drop an episode still open (it is not a whole demonstration) and flush the cache."""
        self._drop_open("recording stopped mid-episode")
        self.cache.flush()
