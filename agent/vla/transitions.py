"""From control ticks to the learner's transitions: one transition per executed chunk.

A chunk is one decision of the residual actor (one residual for all its actions), so the learner
sees a semi-MDP step: ``obs`` = the chunk's features, ``action`` = its residual, ``reward`` = the
sum of the rewards its actions earned, ``next_obs`` = the features of the chunk that took over.
A tick's observation carries the reward of the *previous* tick's action, so rewards are credited
to the chunk that was executing one tick earlier. Episode ends close the segment as terminal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from agent.loop.control import TickRecord
from policies.base import ActionChunk
from policies.streamx.normalization import RewardScaler


@dataclass
class ChunkStep:
    """One finished chunk segment, ready to become a ``Transition``."""

    chunk: ActionChunk
    next_features: np.ndarray
    raw_reward: float
    scaled_reward: float
    terminated: bool
    truncated: bool
    ticks: int
    success: bool


class ChunkTransitionBuilder:
    def __init__(self, gamma: float, emit: Callable[[ChunkStep], None]) -> None:
        self.scaler = RewardScaler(gamma)
        self.emit = emit
        self._chunk: ActionChunk | None = None  # executing as of the previous tick
        self._reward = 0.0
        self._ticks = 0

    def _close(self, next_features: np.ndarray, terminated: bool, truncated: bool, success: bool) -> None:
        chunk = self._chunk
        if chunk is None or "residual" not in chunk.extras:
            return
        done = terminated or truncated
        scaled = self.scaler(self._reward, done)
        self.emit(
            ChunkStep(chunk, next_features, self._reward, scaled, terminated, truncated, self._ticks, success)
        )

    def on_tick(self, record: TickRecord) -> None:
        obs = record.observation
        if self._chunk is not None:
            self._reward += float(obs.get("reward", 0.0))
        end = record.episode_end
        current = None if record.held else record.chunk
        if end:
            if self._chunk is not None:
                self._close(
                    self._chunk.features,
                    bool(obs.get("terminated", False)),
                    bool(obs.get("truncated", False)) and not obs.get("terminated", False),
                    bool(obs.get("success", False)),
                )
            self._chunk, self._reward, self._ticks = None, 0.0, 0
            return
        if current is not None and current is not self._chunk:
            if self._chunk is not None:
                self._close(current.features, False, False, False)
            self._chunk, self._reward, self._ticks = current, 0.0, 0
        if self._chunk is not None and not record.held:
            self._ticks += 1
