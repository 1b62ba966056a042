"""Streaming normalization of a policy's features, so the stream-x heads see what they expect.

The frozen backbone's pooled features have arbitrary scales; stream-x networks want standardized
inputs (docs/streamx.md, piece 5). The normalizer runs where the features are made (the inference
thread of the actor), and the normalized vector is both what the residual actor acts on and what
the learner receives, so actor and learner always agree.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from policies.base import ActionChunk, Observation, Policy
from policies.streamx.normalization import ObservationNormalizer


class NormalizedFeatures(Policy):
    """Wraps ``base``: each chunk's ``features`` replaced by their running standardization, and its
    actions multiplied by ``action_scale`` (0 mutes an untrained action head: the residual heads
    then drive alone, from the VLA's features). ``frozen``: the statistics no longer move
    (evaluating what an actor learned)."""

    def __init__(self, base: Policy, feature_dim: int, action_scale: float = 1.0,
                 frozen: bool = False) -> None:
        self.base = base
        self.frozen = bool(frozen)
        self.action_scale = float(action_scale)
        self.action_dim, self.chunk_size = base.action_dim, base.chunk_size
        self.feature_dim = int(feature_dim)
        self.action_low = getattr(base, "action_low", None)
        self.action_high = getattr(base, "action_high", None)
        self.normalizer = ObservationNormalizer((self.feature_dim,))
        self._lock = threading.Lock()

    @property
    def version(self) -> int:
        return self.base.version

    def act(self, observation: Observation) -> ActionChunk:
        chunk = self.base.act(observation)
        if chunk.features is None or chunk.features.shape != (self.feature_dim,):
            raise RuntimeError(
                f"base policy features of shape {getattr(chunk.features, 'shape', None)}, "
                f"expected ({self.feature_dim},)"
            )
        with self._lock:
            normed = self.normalizer(chunk.features, update=not self.frozen).astype(np.float32)
        actions = chunk.actions if self.action_scale == 1.0 else chunk.actions * np.float32(self.action_scale)
        return dataclasses.replace(chunk, features=normed, actions=actions)

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return self.normalizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.normalizer.load_state_dict(state)
