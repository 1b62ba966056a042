"""``ChunkTransitions``: from control ticks to the learner's transitions, one per executed chunk.

For a policy that acts in chunks (the VLA with stream-x residual heads): a chunk is one decision
of the residual actor (one residual for all its actions), so the learner sees a semi-MDP step:
``obs`` = the chunk's features, ``action`` = its residual, ``reward`` = the sum of the rewards its
actions earned (scaled as stream-x scales rewards), ``next_obs`` = the features of the chunk that
took over. A tick's observation carries the reward of the *previous* tick's action, so rewards are
credited to the chunk that was executing one tick earlier. Episode ends close the segment as
terminal (or truncated). Chunks without a residual (a plain policy) make no transitions.
A transition's ``step`` is the episode's ticks executed when it closed (rising within an episode,
as every actor's steps do); ``extras["ticks"]`` the ticks its own chunk ran.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from agent.loop.control import TickRecord
from learners.transition import Transition
from policies.base import ActionChunk
from policies.streamx.normalization import RewardScaler


class ChunkTransitions:
    """``on_tick(record)`` returns the transition a tick completed, or None.

    ``keep_images``: the transition's ``obs`` is a dict of the features (``state``) and the chunk's
    camera frames (``image.*``), so the learner's cache keeps what the policy saw.
    """

    def __init__(self, gamma: float, actor_id: str = "local", keep_images: bool = False) -> None:
        self.scaler = RewardScaler(gamma)
        self.actor_id, self.keep_images = actor_id, keep_images
        self.episode = 0
        self._chunk: ActionChunk | None = None  # executing as of the previous tick
        self._reward = 0.0
        self._ticks = 0  # of the chunk executing
        self._episode_ticks = 0

    def _close(self, next_features: np.ndarray, terminated: bool, truncated: bool,
               success: bool) -> Transition | None:
        chunk = self._chunk
        if chunk is None or "residual" not in chunk.extras:
            return None
        scaled = self.scaler(self._reward, terminated or truncated)
        obs: Any = chunk.features
        next_obs: Any = next_features
        if self.keep_images and "images" in chunk.extras:
            obs = {"state": chunk.features, **chunk.extras["images"]}
            next_obs = {"state": next_features}
        return Transition(obs, chunk.extras["residual"], scaled, next_obs, terminated, truncated,
                          actor_id=self.actor_id, episode=self.episode, step=self._episode_ticks,
                          policy_version=chunk.version, behavior_logp=chunk.logp, timestamp=time.time(),
                          extras={"raw_reward": self._reward, "ticks": self._ticks, "success": success})

    def on_tick(self, record: TickRecord) -> Transition | None:
        obs = record.observation
        if self._chunk is not None:
            self._reward += float(obs.get("reward", 0.0))
        current = None if record.held else record.chunk
        made = None
        if record.episode_end:
            if self._chunk is not None:
                terminated = bool(obs.get("terminated", False))
                made = self._close(self._chunk.features, terminated,
                                   bool(obs.get("truncated", False)) and not terminated,
                                   bool(obs.get("success", False)))
            self.episode += 1
            self._chunk, self._reward, self._ticks, self._episode_ticks = None, 0.0, 0, 0
            return made
        if current is not None and current is not self._chunk:
            if self._chunk is not None:
                made = self._close(current.features, False, False, False)
            self._chunk, self._reward, self._ticks = current, 0.0, 0
        if self._chunk is not None and not record.held:
            self._ticks += 1
            self._episode_ticks += 1
        return made
