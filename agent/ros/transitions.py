"""``TickTransitions``: the learner client of ``agent_node``, fed by the control loop's ticks.

Tick ``k`` observed ``o_k`` and sent ``a_k``; tick ``k+1``'s observation ``o_{k+1}`` (with the
reward the robot reports by then) completes the transition ``(o_k, a_k, r_{k+1}, o_{k+1})``. The
state goes through the stream-x preprocessing (running normalization, reward scaling), as in
``rill actor``; each transition is appended to the actor's local spool and handed to ``ActorLink``,
which sends it once durable and resends what the learner has not acknowledged: ``on_tick`` never
waits on the network. A tick that held the robot sent nothing, so it starts no transition; a
stale observation ends the chain (nothing is learned across a gap in the data). A change of
instruction ends an episode (``truncated``): the task changed.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.ros.agent_config import LearnerClientConfig

log = logging.getLogger(__name__)


@dataclass
class _Pending:
    s: np.ndarray
    action: np.ndarray
    logp: float
    version: int
    instruction: str


class TickTransitions:
    """Builds transitions from ``TickRecord``s and streams them to the learner at ``endpoint``."""

    def __init__(self, config: LearnerClientConfig, obs_dim: int, action_dim: int) -> None:
        from learners.link.batcher import SpoolBatcher
        from learners.link.client import ActorLink
        from learners.link.security import CurveClient
        from learners.link.spool import open_spool
        from learners.service.updater import acting_module
        from learners.streamx import algorithm_config, build_algorithm, build_preprocessor

        self.config = c = config
        self.pre = build_preprocessor(obs_dim, c.gamma, None)  # numpy path: no compile at start-up
        hyper = algorithm_config(c.algo, {"gamma": c.gamma})
        # The acting network, for the learner's weight shapes (and for a stream-x policy to act with).
        self.algo = build_algorithm(c.algo, self.pre.out_dim, action_dim=action_dim, config=hyper)
        self.module_name, self.module = acting_module(self.algo)
        shapes = {f"{self.module_name}.{k}": tuple(v.shape) for k, v in self.module.state_dict().items()}
        self.spec = {"obs_dim": self.pre.out_dim, "action_dim": action_dim, "n_actions": None,
                     "algo": c.algo}
        self.dir = Path(c.run_dir) / "actors" / c.actor_id
        self.dir.mkdir(parents=True, exist_ok=True)
        self.spool, pending, last_seq = open_spool(self.dir / "spool", c.actor_id, c.durability)
        curve = CurveClient(Path(c.curve_secret), Path(c.learner_key)) if c.curve_secret else None
        self.link = ActorLink(c.endpoint, c.actor_id, self.spec, self.spool, weight_shapes=shapes,
                              curve=curve, insecure=c.insecure)
        for first, last, offset in pending:
            self.link.enqueue(first, last, offset, None)
        self.link.last_seq = self.seq = last_seq
        self.batcher = SpoolBatcher(self.spool, self.link)
        self.episode = 0
        self.step = 0
        self.made = 0
        self.broken_chains = 0
        self._pending: _Pending | None = None
        self.link.start()
        log.info("learner link to %s as actor %s (obs_dim %d, action_dim %d, %s); %d unsent from the spool",
                 c.endpoint, c.actor_id, self.pre.out_dim, action_dim, c.algo, len(pending))

    @property
    def mailbox(self):
        """Where the link puts the newest weights the learner published."""
        return self.link.mailbox

    def on_tick(self, record: Any) -> None:
        """Called by the control loop after every tick (on the loop's thread; cheap, never blocks)."""
        from learners.transition import Transition

        obs = record.observation
        if record.held and record.reason != "no chunk" and record.reason != "policy failing":
            if self._pending is not None:  # stale or missing data: no honest next observation
                self.broken_chains += 1
            self._pending = None
            return
        raw = np.asarray(obs["state"], np.float32)
        reward = float(obs.get("reward", 0.0))
        instruction = str(obs.get("instruction", ""))
        if not (np.all(np.isfinite(raw)) and math.isfinite(reward)):
            self._pending = None
            self.broken_chains += 1
            return
        p = self._pending
        if p is None:
            s = self.pre.reset(raw)
        else:
            truncated = instruction != p.instruction
            s, scaled = self.pre.step(raw, reward, False, truncated)
            self.seq += 1
            self.step += 1
            t = Transition(p.s, p.action, scaled, s, False, truncated, actor_id=self.config.actor_id,
                           seq=self.seq, episode=self.episode, step=self.step, policy_version=p.version,
                           behavior_logp=p.logp, timestamp=time.time(), extras={"raw_reward": reward})
            self.batcher.add(t)
            self.made += 1
            if truncated:
                self.episode += 1
                self.step = 0
                s = self.pre.reset(raw)
        if record.held or record.action is None:
            self._pending = None
            return
        chunk = record.chunk
        action = np.asarray(record.action, np.float32)
        logp = float("nan")
        if chunk is not None and chunk.horizon == 1 and np.array_equal(action, chunk.actions[0]):
            logp = float(chunk.logp)  # the sent action is the one the policy drew: its logp holds
        version = int(chunk.version) if chunk is not None else 0
        self._pending = _Pending(s, action, logp, max(version, 0), instruction)

    def stats(self) -> dict[str, Any]:
        return {"endpoint": self.config.endpoint, "actor_id": self.config.actor_id, "made": self.made,
                "seq": self.seq, "acked_seq": self.link.acked_seq, "backlog": self.link.backlog,
                "connected": self.link.connected, "weights_version": self.link.weights_version,
                "broken_chains": self.broken_chains, "episodes": self.episode,
                "link_errors": dict(self.link.errors)}

    def close(self, drain_s: float = 2.0) -> None:
        """Stop the link after up to ``drain_s`` for the learner to acknowledge what is spooled."""
        self.link.stop(drain_s)
        self.spool.flush()
        self.spool.close()
