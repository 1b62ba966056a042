"""``TickTransitions``: per-step transitions from control-loop ticks, streamed to a learner.

For a robot driven by the ``ControlLoop`` with a one-action-per-tick policy (``agent_node``'s
learner client). Tick ``k`` observed ``o_k`` and sent ``a_k``; tick ``k+1``'s observation
``o_{k+1}`` (with the reward the robot reports by then) completes the transition
``(o_k, a_k, r_{k+1}, o_{k+1})``, built by the same ``StepTransitions`` as every stream-x actor and
handed to the actor's ``TransitionStream``: ``on_tick`` never waits on the network. A tick that
held the robot sent nothing, so it starts no transition; a stale observation ends the chain
(nothing is learned across a gap in the data). A change of instruction ends an episode
(``truncated``): the task changed.

With an operator (``agent/operator``): a tick whose person drove makes a transition flagged
``extras["intervened"] = True`` with ``behavior_logp`` NaN (no policy drew it); the tick that ends
an episode (``TickRecord.ended``) completes the last transition as terminal (success, failure) or
truncated (timeout, stopped), its reward raised by the operator's label, with
``extras["success"]`` and ``extras["label_source"] = "operator"``; ticks of the reset routine and
of waiting make none. Without an operator, an episode the robot reports over (``terminated`` /
``truncated``: a simulator's task, or a ``RewardedRobot``'s reward model) ends the same way, with
``ended_by`` ``robot`` or ``reward_model``. Each finished episode is logged with its outcome, who
ended it, and the person's takeovers and intervened steps.

``keep_images``: each transition also carries the camera frames its step acted on (``obs`` a dict
of ``state`` and ``image.*``), the last of an episode the final frames in ``next_obs``, and
``extras["instruction"]``: with the operator's labels, what a reward model learns from (``rill
reward train`` reads them from the learner's cache).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

import numpy as np

from agent.actor.config import LearnerClientConfig
from agent.actor.episodes import EpisodeRecord
from agent.actor.feed import LearnerFeed
from agent.actor.steps import StepTransitions
from agent.actor.streamx_policy import StreamXPolicy
from agent.operator.episodes import labelled_step, robot_end
from agent.supervision import EpisodeTally
from learners.streamx.base import ActResult

log = logging.getLogger(__name__)

# Holds after which the next tick still continues the chain: the robot sent nothing new, but the
# data stream itself is intact.
_CHAIN_KEEPING_HOLDS = ("no chunk", "policy failing")


class TickTransitions:
    """Builds transitions from ``TickRecord``s and streams them to the learner at ``config.endpoint``."""

    def __init__(self, config: LearnerClientConfig, obs_dim: int, action_dim: int) -> None:
        from learners.streamx import algorithm_config, build_algorithm, build_preprocessor

        self.config = c = config
        self.pre = build_preprocessor(obs_dim, c.gamma, None)  # numpy path: no compile at start-up
        hyper = algorithm_config(c.algo, {"gamma": c.gamma})
        # The acting network: the learner's weight shapes, and what a stream-x policy acts with.
        self.algo = build_algorithm(c.algo, self.pre.out_dim, action_dim=action_dim, config=hyper)
        self.spec = {"obs_dim": self.pre.out_dim, "action_dim": action_dim, "n_actions": None, "algo": c.algo}
        acting = StreamXPolicy(self.algo, lambda x: self.pre.obs_norm(x, update=False), action_dim)
        self.feed = LearnerFeed.from_config(c, self.spec, acting)
        acting.take_weights = self.feed.take_weights  # at the start of each act (in the tick: per-step)
        self.stream, self.link = self.feed.stream, self.feed.link
        self.builder = StepTransitions(self.pre, self.algo)
        # A restarted node counts on: steps (the log's ``step``: transitions made, which include
        # those of an episode it never finished) and episode numbers continue, never given twice.
        steps, self.builder.episode = self.feed.count_on()
        self.made = max(steps, self.feed.stream.kept_steps())
        if self.made or self.builder.episode:
            log.info("learner client %s counts on from step %d, episode %d", c.actor_id, self.made,
                     self.builder.episode)
        self.broken_chains = 0
        self._sent: ActResult | None = None  # the action the previous tick sent, and its logp
        self._sent_intervened = False  # ... sent by a person who took over
        self._sent_frames: dict[str, np.ndarray] = {}  # ... and the frames it acted on (keep_images)
        self.intervened_made = 0  # transitions of a person's actions
        self.takeovers = self.intervened_steps = 0  # of the episode under way
        self._was_intervened = False
        self._version = 0
        self._instruction = ""
        self._t0 = time.monotonic()
        self.tally = EpisodeTally()  # the finished episodes, for agent_node's status (any thread reads)
        self.feed.start()
        log.info("learner link to %s as actor %s (obs_dim %d, action_dim %d, %s)",
                 c.endpoint, c.actor_id, self.pre.out_dim, action_dim, c.algo)

    @property
    def seq(self) -> int:
        return self.feed.seq

    @property
    def episode(self) -> int:
        return self.builder.episode

    def policy(self, period_s: float, deterministic: bool = False) -> StreamXPolicy:
        """The stream-x policy acting with this client's network, statistics and incoming weights."""
        acting = self.feed.policy
        acting.period_s, acting.deterministic = period_s, deterministic
        return acting

    def on_tick(self, record: Any) -> None:
        """Called by the control loop after every tick (on the loop's thread; cheap, never blocks)."""
        obs = record.observation
        end = getattr(record, "ended", None)
        running = getattr(record, "phase", "running") == "running"
        if end is None and running and record.episode_end:  # no operator: the robot or its reward model
            end = robot_end(obs, self.builder.episode)
        if running:
            self._count(bool(getattr(record, "intervened", False)))
        if end is None and (not running or (record.held and record.reason not in _CHAIN_KEEPING_HOLDS)):
            if self._sent is not None:  # stale or missing data: no honest next observation
                self.broken_chains += 1
            self._sent = None
            return
        b = self.builder
        raw = np.asarray(obs.get("state", ()), np.float32)
        reward = float(obs.get("reward", 0.0))
        instruction = str(obs.get("instruction", ""))
        if raw.size == 0 or not (np.all(np.isfinite(raw)) and math.isfinite(reward)):
            self._sent = None
            self.broken_chains += 1
            if end is not None:
                self._end_without_transition(end)
            return
        if self._sent is None:
            if end is not None:
                self._end_without_transition(end)
                return
            if b.in_episode:
                b.rejoin(raw)
            else:
                b.begin(raw)
        else:
            self._complete(raw, reward, instruction, end, obs)
        if end is not None:
            self._sent = None
            return
        if record.held or record.action is None:
            self._sent = None
            return
        intervened = bool(getattr(record, "intervened", False))
        chunk = None if intervened else record.chunk
        action = np.asarray(record.action, np.float32)
        logp = float("nan")  # a person's action: its probability under any behaviour policy is unknown
        if chunk is not None and chunk.horizon == 1 and np.array_equal(action, chunk.actions[0]):
            logp = float(chunk.logp)  # the sent action is the one the policy drew: its logp holds
        if chunk is not None:
            self._version = max(int(chunk.version), 0)
        self._sent = ActResult(action, logp)
        self._sent_intervened = intervened
        if self.config.keep_images:  # copied: a sensor intake may reuse its buffers
            self._sent_frames = {k: np.array(v) for k, v in obs.items() if k.startswith("image.")}
        self._instruction = instruction

    def _complete(self, raw: np.ndarray, reward: float, instruction: str, end: Any, obs: dict) -> None:
        """The transition of the action sent last, ending at ``raw``; an operator's end labels it."""
        b = self.builder
        # A new task ends the episode; the first instruction to arrive is no change of task.
        new_task = bool(self._instruction) and instruction != self._instruction
        reward, terminated, truncated, extras = labelled_step(reward, False, new_task, end,
                                                              self._sent_intervened)
        if self.config.keep_images:
            extras["instruction"] = self._instruction
        t = b.record(self._sent, raw, reward, terminated, truncated, actor_id=self.config.actor_id,
                     policy_version=self._version, timestamp=time.time(), extras=extras)
        if t is None:
            return
        t.next_action = None  # the robot's next action is the one the next tick sends
        if self.config.keep_images and self._sent_frames:
            # what the step acted on and, at an episode's end, what the robot saw once done: with an
            # operator's label, the frames a reward model learns success from (agent.reward.data)
            t.obs = {"state": t.obs, **self._sent_frames}
            if t.done:
                t.next_obs = {"state": t.next_obs, **{k: np.array(v) for k, v in obs.items()
                                                     if k.startswith("image.")}}
        self.feed.emit(t)
        self.made += 1
        self.intervened_made += self._sent_intervened
        if t.done:
            self._log_episode(end, b.episode, b.ret, b.length, t.seq)
            if end is None:
                b.begin(raw)

    def _end_without_transition(self, end: Any) -> None:
        """An episode ended with no action in flight (held, or no next observation): log it as is."""
        b = self.builder
        if b.in_episode:
            self._log_episode(end, end.episode, b.ret, b.length, None)
        b.abandon()

    def _count(self, intervened: bool) -> None:
        self.intervened_steps += intervened
        self.takeovers += intervened and not self._was_intervened
        self._was_intervened = intervened

    def _log_episode(self, end: Any, episode: int, ret: float, length: int, seq: int | None) -> None:
        record = EpisodeRecord(
            self.made, end.episode if end is not None else episode, ret, length, time.monotonic() - self._t0,
            seq=seq, success=None if end is None else end.success, policy_version=self._version,
            outcome=None if end is None else end.outcome, ended_by=None if end is None else end.ended_by,
            takeovers=self.takeovers, intervened_steps=self.intervened_steps)
        self.feed.log_episode(record)
        self.tally.add(record)
        self.takeovers = self.intervened_steps = 0
        self._was_intervened = False

    def stats(self) -> dict[str, Any]:
        return {"endpoint": self.config.endpoint, "actor_id": self.config.actor_id, "made": self.made,
                "seq": self.seq, "acked_seq": self.link.acked_seq, "backlog": self.link.backlog,
                "connected": self.link.connected, "weights_version": self.link.weights_version,
                "broken_chains": self.broken_chains, "episodes": self.episode,
                "intervened_made": self.intervened_made, "takeovers": self.takeovers,
                "intervened_steps": self.intervened_steps,
                "link_errors": dict(self.link.errors)}

    def close(self, drain_s: float = 2.0) -> None:
        """Stop the link after up to ``drain_s`` for the learner to acknowledge what is spooled."""
        self.feed.close(drain_s)
