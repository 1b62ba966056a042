"""Streaming normalization of a policy's features, so the stream-x heads see what they expect.

The frozen backbone's pooled features have arbitrary scales; stream-x networks want standardized
inputs (docs/streamx.md, piece 5). The normalizer runs where the features are made (the inference
thread of the actor), and the normalized vector is both what the residual actor acts on and what
the learner receives, so actor and learner always agree.

With an episode time limit ``T`` the recipe's time feature follows them, not normalized: ``-0.5``
when the episode starts and ``1/T`` more per tick (``-0.5 + k/T`` at the observation's
``episode_tick`` ``k``, which the control loop adds), so that ending an episode at its time limit,
which stream-x treats as terminal, is something the critic can see coming.

What the residual sees besides the time feature is a ``ResidualInputs`` (``agent.vla.inputs``): the
VLA's features, chosen entries of a simulator's ``privileged`` ground truth (a diagnostic: "is
perception what holds the residual back?"), chosen entries of the robot's ``state``, and a
``MarkerLocator``'s pixel. The extra entries are appended before the standardization.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from agent.vla.inputs import ResidualInputs
from policies.base import EPISODE_TICK, ActionChunk, Observation, Policy, PolicyInputError
from policies.streamx.normalization import ObservationNormalizer, TimeFeature


class NormalizedFeatures(Policy):
    """Wraps ``base``: each chunk's ``features`` replaced by their running standardization (plus
    the time feature, with ``time_limit``), and its actions multiplied by ``action_scale`` (0 mutes
    an untrained action head: the residual heads then drive alone, from the VLA's features).
    ``frozen``: the statistics no longer move (evaluating what an actor learned). ``inputs``: what
    the residual sees besides the time (default: the VLA's features alone); its locator is loaded
    here unless ``locator`` gives it loaded. ``out_dim`` is what the residual heads see
    (``inputs.dim``)."""

    def __init__(self, base: Policy, feature_dim: int, action_scale: float = 1.0,
                 frozen: bool = False, time_limit: int | None = None,
                 inputs: ResidualInputs | None = None, locator: Any = None) -> None:
        if time_limit is not None and (type(time_limit) is not int or time_limit < 1):
            raise ValueError(f"NormalizedFeatures: time_limit must be a positive integer or None, "
                             f"got {time_limit!r}")
        self.inputs = inputs = inputs if inputs is not None else ResidualInputs()
        if locator is not None and not inputs.locator:
            raise ValueError("NormalizedFeatures: a locator was given, but the inputs name none")
        self.privileged, self.state_inputs = inputs.privileged, inputs.state
        self.vla_features = inputs.vla_features
        self.locator = locator if locator is not None else inputs.load_locator()
        self.base = base
        self.frozen = bool(frozen)
        self.action_scale = float(action_scale)
        self.action_dim, self.chunk_size = base.action_dim, base.chunk_size
        self.feature_dim = int(feature_dim)
        self.time_limit = time_limit
        self.clock = TimeFeature(time_limit) if time_limit is not None else None
        # what the statistics cover
        self.normalized_dim = inputs.dim(self.feature_dim)
        self.out_dim = self.normalized_dim + (time_limit is not None)
        self.action_low = getattr(base, "action_low", None)
        self.action_high = getattr(base, "action_high", None)
        self.normalizer = ObservationNormalizer((self.normalized_dim,))
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
        features = chunk.features if self.vla_features else np.zeros(0)
        if self.privileged:
            features = np.concatenate([features, self.ground_truth(observation)])
        if self.state_inputs:
            features = np.concatenate([features, self.state_entries(observation)])
        if self.locator is not None:
            features = np.concatenate([features, self.located(observation)])
        with self._lock:
            normed = self.normalizer(features, update=not self.frozen).astype(np.float32)
        if self.clock is not None:
            normed = np.append(normed, np.float32(self.time(observation)))
        actions = chunk.actions if self.action_scale == 1.0 else chunk.actions * np.float32(self.action_scale)
        return dataclasses.replace(chunk, features=normed, actions=actions)

    def ground_truth(self, observation: Observation) -> np.ndarray:
        """The chosen entries of the observation's ``privileged`` vector."""
        return _entries(observation, "privileged", self.privileged, " (only a simulator gives one)")

    def state_entries(self, observation: Observation) -> np.ndarray:
        """The chosen entries of the observation's ``state`` (say, the hand's position)."""
        return _entries(observation, "state", self.state_inputs)

    def located(self, observation: Observation) -> np.ndarray:
        """Where the locator finds its marker in the observation's frame: (row, column) in pixels."""
        key = f"image.{self.locator.config.camera}"
        frame = observation.get(key)
        if not isinstance(frame, np.ndarray):
            raise PolicyInputError(f"the residual's locator reads {key!r}, which the observation lacks")
        try:
            return self.locator.locate(frame).astype(np.float64)
        except ValueError as e:
            raise PolicyInputError(str(e)) from None

    def time(self, observation: Observation) -> float:
        """The time feature of ``observation``: ``-0.5 + k/T`` at episode tick ``k`` (held at 0.5
        past the limit; ``TimeFeature.at``)."""
        tick = observation.get(EPISODE_TICK)
        if isinstance(tick, np.integer):
            tick = int(tick)
        if type(tick) is not int or tick < 0:
            raise PolicyInputError(f"a time feature needs the observation's {EPISODE_TICK!r} (ticks into the "
                                   f"episode, which the control loop adds): got {tick!r}")
        if self.clock is None:
            raise RuntimeError("NormalizedFeatures.time: no time limit, hence no time feature")
        return self.clock.at(tick)

    def state_dict(self) -> dict[str, Any]:
        with self._lock:
            return self.normalizer.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with self._lock:
            self.normalizer.load_state_dict(state)


def _entries(observation: Observation, key: str, indices: tuple[int, ...], hint: str = "") -> np.ndarray:
    """``observation[key][indices]`` as float64; ``PolicyInputError`` when the vector is missing, too
    short or not finite there."""
    vector = observation.get(key)
    if not isinstance(vector, np.ndarray) or vector.ndim != 1:
        raise PolicyInputError(f"the residual was configured with {key} inputs, but the observation has no "
                               f"'{key}' vector{hint}")
    if max(indices) >= vector.shape[0]:
        raise PolicyInputError(f"{key} index {max(indices)} is outside the observation's "
                               f"{vector.shape[0]}-entry '{key}' vector")
    out = vector[list(indices)].astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise PolicyInputError(f"the observation's '{key}' entries are not finite")
    return out
