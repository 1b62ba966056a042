"""Streaming normalization of a policy's features, so the stream-x heads see what they expect.

The frozen backbone's pooled features have arbitrary scales; stream-x networks want standardized
inputs (docs/streamx.md, piece 5). The normalizer runs where the features are made (the inference
thread of the actor), and the normalized vector is both what the residual actor acts on and what
the learner receives, so actor and learner always agree.

With an episode time limit ``T`` the recipe's time feature follows them, not normalized: ``-0.5``
when the episode starts and ``1/T`` more per tick (``-0.5 + k/T`` at the observation's
``episode_tick`` ``k``, which the control loop adds), so that ending an episode at its time limit,
which stream-x treats as terminal, is something the critic can see coming.

``privileged`` (a simulation-only diagnostic) appends chosen entries of the observation's
``privileged`` vector (a simulator's ground truth: object and goal positions) to the features,
before they are standardized: the residual then knows what the VLA may fail to see. It answers
"is perception what holds the residual back?"; a policy built with it cannot run on a real robot,
which has no such vector. With ``vla_features=False`` as well, the residual sees those entries
alone (and the time), not the VLA's features: what it learns is then told apart from how many
inputs it learns from.

``state_inputs`` (chosen entries of the robot's ``state``, e.g. the hand's position) and
``locator`` (a ``policies.vla.locator.MarkerLocator``: where a marker such as the task's goal is in
the camera frame, two pixel coordinates) are inputs a real robot has too: with them and without
the VLA's features, the residual learns from a few numbers read from the robot and from pixels.
"""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import numpy as np

from policies.base import EPISODE_TICK, ActionChunk, Observation, Policy, PolicyInputError
from policies.streamx.normalization import ObservationNormalizer, TimeFeature


def residual_inputs_problem(privileged: Any, vla_features: Any, state: Any = (), locator: bool = False,
                            names: tuple[str, str, str, str] = ("privileged", "vla_features", "state_inputs",
                                                                "locator")) -> str | None:
    """What is wrong with a residual's choice of inputs, or ``None``: ``privileged`` and ``state``
    must be lists of distinct non-negative indices, and a residual without the VLA's features must
    see something else. One check for the run's config (``names`` its fields) and for direct users
    of this module."""
    p, v, st, loc = names
    for name, indices in ((p, privileged), (st, state)):
        if not isinstance(indices, (list, tuple)) or not all(type(i) is int and i >= 0 for i in indices) \
                or len(set(indices)) != len(indices):
            return f"{name} must be a list of distinct non-negative indices, got {indices!r}"
    if not isinstance(vla_features, bool):
        return f"{v} must be true or false, got {vla_features!r}"
    if not vla_features and not (privileged or state or locator):
        return f"{v}: false needs {p}, {st} or {loc} (the residual would see nothing)"
    return None


def residual_input_dim(feature_dim: int, privileged: tuple[int, ...] | list[int] = (),
                       vla_features: bool = True, time_limit: int | None = None,
                       state: tuple[int, ...] | list[int] = (), locator: bool = False) -> int:
    """How many numbers the residual heads see: the VLA's ``feature_dim`` (none without
    ``vla_features``), the privileged entries, the state entries, the locator's (row, column), and
    the time feature where episodes have a limit."""
    return (int(feature_dim) * bool(vla_features) + len(privileged) + len(state) + 2 * bool(locator)
            + (time_limit is not None))


class NormalizedFeatures(Policy):
    """Wraps ``base``: each chunk's ``features`` replaced by their running standardization (plus
    the time feature, with ``time_limit``), and its actions multiplied by ``action_scale`` (0 mutes
    an untrained action head: the residual heads then drive alone, from the VLA's features).
    ``frozen``: the statistics no longer move (evaluating what an actor learned). ``out_dim`` is
    what the residual heads see: ``feature_dim`` (none without ``vla_features``), plus
    ``len(privileged)`` and ``len(state_inputs)``, plus two with a ``locator``, plus one with a time
    limit (``residual_input_dim``)."""

    def __init__(self, base: Policy, feature_dim: int, action_scale: float = 1.0,
                 frozen: bool = False, time_limit: int | None = None,
                 privileged: tuple[int, ...] = (), vla_features: bool = True,
                 state_inputs: tuple[int, ...] = (), locator: Any = None) -> None:
        if time_limit is not None and (type(time_limit) is not int or time_limit < 1):
            raise ValueError(f"NormalizedFeatures: time_limit must be a positive integer or None, "
                             f"got {time_limit!r}")
        problem = residual_inputs_problem(privileged, vla_features, state_inputs, locator is not None)
        if problem:
            raise ValueError(f"NormalizedFeatures: {problem}")
        privileged, state_inputs = tuple(privileged), tuple(state_inputs)
        self.privileged, self.vla_features = privileged, bool(vla_features)
        self.state_inputs, self.locator = state_inputs, locator
        self.base = base
        self.frozen = bool(frozen)
        self.action_scale = float(action_scale)
        self.action_dim, self.chunk_size = base.action_dim, base.chunk_size
        self.feature_dim = int(feature_dim)
        self.time_limit = time_limit
        self.clock = TimeFeature(time_limit) if time_limit is not None else None
        # what the statistics cover
        extra = {"state": state_inputs, "locator": locator is not None}
        self.normalized_dim = residual_input_dim(self.feature_dim, privileged, self.vla_features, **extra)
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
