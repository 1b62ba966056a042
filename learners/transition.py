"""The Transition record: what an actor streams to the learner (docs/design.md, "Contracts")."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

Observation = dict[str, Any]
"""An observation: ``dict[str, numpy.ndarray | str]``, or a plain feature vector."""


@dataclass
class Transition:
    """One step of experience, ``(s, a, r, s')`` plus the bookkeeping that makes delivery exact.

    ``(actor_id, seq)`` identifies a transition: ``seq`` increases strictly per actor and is never
    reused across restarts, so the learner applies each one at most once and in order.
    ``obs`` / ``next_obs`` are either a plain vector (policy features, already normalized for
    stream-x) or an observation dict. ``next_action`` is set only for on-policy targets that need
    the action already chosen for ``next_obs`` (Stream SARSA).
    """

    obs: np.ndarray | Observation
    action: np.ndarray | int
    reward: float
    next_obs: np.ndarray | Observation
    terminated: bool
    truncated: bool
    actor_id: str = "local"
    seq: int = 0
    episode: int = 0
    step: int = 0
    policy_version: int = 0
    behavior_logp: float = float("nan")
    next_action: np.ndarray | int | None = None
    timestamp: float = 0.0
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """True when the episode ended here, by termination or by time limit."""
        return bool(self.terminated or self.truncated)
