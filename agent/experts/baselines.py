"""Goal-ignoring reference policies for the tabletop arm: what a policy that neither sees nor reads
would score, the floor a learned policy must clear. Each acts on the proprioceptive state alone
(``pusher x/y`` at indices 4 and 5 of a ``sim-tabletop`` state) and never looks at the camera or
the instruction.

- ``RandomPolicy``: uniformly random velocity commands, a new one per chunk (seeded); any action
  width (Meta-World's too).
- ``ForwardPolicy``: drive straight away from the arm (+y) at a fixed speed.
- ``MiddlePolicy``: head for the middle of the region where blocks are placed, and stop there.
"""

from __future__ import annotations

import numpy as np

from policies.base import ActionChunk, Observation, Policy
from sim.tabletop.task import TabletopTask

PUSHER = slice(4, 6)


class _Baseline(Policy):
    action_dim = 2

    def __init__(self, chunk_size: int = 2, period_s: float = 0.02) -> None:
        self.chunk_size, self.period_s = chunk_size, period_s

    def _action(self, observation: Observation) -> np.ndarray:
        raise NotImplementedError

    def act(self, observation: Observation) -> ActionChunk:
        action = np.clip(self._action(observation), -1.0, 1.0).astype(np.float32)
        return ActionChunk(np.repeat(action[None], self.chunk_size, axis=0), self.period_s)


class RandomPolicy(_Baseline):
    """Uniform in [-1, 1]^``action_dim`` (any robot whose actions are normalised so)."""

    def __init__(self, seed: int = 0, action_dim: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.action_dim = action_dim
        self.rng = np.random.default_rng(seed)

    def _action(self, observation: Observation) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.action_dim)


class ForwardPolicy(_Baseline):
    def __init__(self, speed: float = 0.5, **kwargs) -> None:
        super().__init__(**kwargs)
        self.speed = speed

    def _action(self, observation: Observation) -> np.ndarray:
        return np.array([0.0, self.speed])


class MiddlePolicy(_Baseline):
    GAIN = 12.0  # action units per metre: full speed from about 8 cm away

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.middle = np.array([np.mean(TabletopTask.REGION_X), np.mean(TabletopTask.REGION_Y)])

    def _action(self, observation: Observation) -> np.ndarray:
        pusher = np.asarray(observation["state"], np.float64)[PUSHER]
        return self.GAIN * (self.middle - pusher)
