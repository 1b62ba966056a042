"""Policies with known behaviour, for exercising the control loop: slow, failing, re-planning.

``ReplanningPolicy`` follows a smooth reference trajectory but, like a real policy re-planning
from a new observation, each chunk carries its own small offset: consecutive chunks disagree
where they overlap, which is exactly what a chunk join must hide.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from policies.base import ActionChunk, Observation, Policy


class ReplanningPolicy(Policy):
    def __init__(
        self,
        action_dim: int,
        chunk_size: int = 25,
        period_s: float = 0.02,
        latency_s: float = 0.06,
        offset_scale: float = 0.1,
        amplitude: float = 0.5,
        freq_hz: float = 0.5,
        seed: int = 0,
        fail_after: int | None = None,
    ) -> None:
        self.action_dim, self.chunk_size, self.period_s = action_dim, chunk_size, period_s
        self.latency_s, self.offset_scale, self.amplitude, self.freq_hz = (
            latency_s,
            offset_scale,
            amplitude,
            freq_hz,
        )
        self.rng = np.random.default_rng(seed)
        self.fail_after = fail_after
        self.calls = 0
        self._lock = threading.Lock()

    def act(self, observation: Observation) -> ActionChunk:
        with self._lock:
            self.calls += 1
            calls = self.calls
            offset = self.rng.normal(0.0, self.offset_scale, self.action_dim)
        if self.fail_after is not None and calls > self.fail_after:
            raise RuntimeError(f"policy fault injected after {self.fail_after} chunks")
        t_obs = float(observation.get("timestamp", time.monotonic()))
        time.sleep(self.latency_s)  # the model thinking
        t = t_obs + self.period_s * np.arange(self.chunk_size)
        phase = 2 * np.pi * self.freq_hz * t[:, None] + np.arange(self.action_dim)[None, :]
        actions = self.amplitude * np.sin(phase) + offset[None, :]
        return ActionChunk(actions.astype(np.float32), self.period_s, version=calls, observed_at=t_obs)


def tiny_residual_vla(state_dim: int = 4, action_dim: int = 2, chunk_size: int = 8, seed: int = 0,
                      deterministic: bool = True) -> Policy:
    """The tiny untrained VLA with stream-x residual heads (``actor.*`` weights), built from plain
    arguments: a factory a ``PolicyProcess`` can name. Same arguments, same weights."""
    from policies.vla import ResidualPolicy, VLAPolicy, tiny_vla

    vla = VLAPolicy(tiny_vla(state_dim, action_dim, chunk_size, seed))
    return ResidualPolicy(vla, vla.feature_dim, scale=0.5, low=-np.ones(action_dim), high=np.ones(action_dim),
                          hidden=(16, 16), seed=seed, deterministic=deterministic)
