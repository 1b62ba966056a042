"""The policy contract (docs/design.md): ``act(observation) -> ActionChunk``.

A policy maps the newest observation — ``state`` (float32 vector), ``image.<camera>`` (HxWx3 uint8),
``instruction`` (str), ``timestamp`` — to a chunk of ``H`` future actions for a given control
period. The control loop adds ``episode_tick`` (``EPISODE_TICK``, int): ticks since the policy first
acted in the current episode, for a policy that needs a time input (stream-x's time feature).
The control loop executes a chunk one action per tick and joins consecutive chunks smoothly; the
learner ships weights by name through ``state_dict`` / ``load_state_dict``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Observation = dict[str, Any]
EPISODE_TICK = "episode_tick"  # added by the control loop: ticks into the episode under way


class PolicyInputError(ValueError):
    """An observation a policy cannot act on (wrong image shape or dtype, empty instruction...)."""


@dataclass
class ActionChunk:
    """``actions[h]`` is meant for control tick ``h`` after the observation it was computed from.

    ``features`` are what the policy saw (e.g. a frozen backbone's pooled embedding plus state):
    the learner's stream-x heads learn from them. ``logp`` is the behaviour log-probability of the
    chunk's stochastic part, if any. ``period_s`` is the control period the chunk was made for;
    ``observed_at`` the observation's monotonic timestamp.
    """

    actions: np.ndarray  # float32 [H, A]
    period_s: float
    version: int = 0
    features: np.ndarray | None = None  # float32 [F]
    logp: float = float("nan")
    observed_at: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.actions = np.asarray(self.actions, np.float32)
        if self.actions.ndim != 2 or self.actions.shape[0] < 1:
            raise ValueError(f"ActionChunk.actions must be [H, A] with H >= 1, got {self.actions.shape}")

    @property
    def horizon(self) -> int:
        return int(self.actions.shape[0])


class Policy(abc.ABC):
    """What the control loop needs of a policy. ``act`` may be slow (a VLA on a CPU): the loop
    calls it from an inference thread and never waits for it on the control path."""

    action_dim: int
    chunk_size: int

    @abc.abstractmethod
    def act(self, observation: Observation) -> ActionChunk: ...

    @property
    def version(self) -> int:
        return 0

    def state_dict(self) -> dict[str, Any]:
        """The weights a learner updates, by the names it publishes them under."""
        return {}

    def load_state_dict(self, state: dict[str, Any], version: int | None = None) -> None:
        """Load weights by name; ``version`` (the learner's count of publications) becomes the
        policy's ``version``. Every actor takes the learner's weights through this method."""
        if state:
            raise ValueError(f"{type(self).__name__} has no loadable state")
