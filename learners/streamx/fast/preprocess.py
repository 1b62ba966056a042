"""The stream-x input pipeline (docs/streamx.md, piece 5) as one compiled call per environment step.

``FastStreamXPreprocessor`` is a ``StreamXPreprocessor`` (same statistics objects, same
``state_dict``) whose ``step`` and ``reset`` run the Welford updates, the reward scaling and the
normalization in one numba call instead of a dozen small numpy ones. The arithmetic is strict
IEEE float64 in the numpy code's order, so its outputs and statistics are bit-identical to the
numpy path's; only the per-call overhead differs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from policies.streamx.normalization import EPSILON, StreamXPreprocessor


@njit(cache=True, nogil=True)
def _welford(x, count, mean, m2):
    """One Welford update of ``mean``/``m2`` in place (``count`` already includes ``x``)."""
    for i in range(x.shape[0]):
        delta = x[i] - mean[i]
        mean[i] = mean[i] + delta / count
        m2[i] = m2[i] + delta * (x[i] - mean[i])


@njit(cache=True, nogil=True)
def _normalize_into(x, count, mean, m2, out):
    for i in range(x.shape[0]):
        var = 1.0 if count < 2 else m2[i] / (count - 1)
        out[i] = np.float32((x[i] - mean[i]) / np.sqrt(var + EPSILON))


@njit(cache=True, nogil=True)
def preprocess_step(obs, count, mean, m2, update, reward, done, gamma, reward_state, out):
    """Normalize ``obs`` into ``out[:len(obs)]`` and scale ``reward``; returns the scaled reward.

    ``reward_state`` is ``[trace, count, mean, m2]`` of the reward scaler, updated in place when
    ``update``; ``count`` is the observation count *after* this sample when ``update``.
    """
    if update:
        _welford(obs, count, mean, m2)
    _normalize_into(obs, count, mean, m2, out)
    if done < 0:  # a reset: no reward
        return 0.0
    if update:
        trace = gamma * reward_state[0] * (1.0 - done) + reward
        n = reward_state[1] + 1.0
        delta = trace - reward_state[2]
        reward_state[2] = reward_state[2] + delta / n
        reward_state[3] = reward_state[3] + delta * (trace - reward_state[2])
        reward_state[0], reward_state[1] = trace, n
    var = 1.0 if reward_state[1] < 2 else reward_state[3] / (reward_state[1] - 1.0)
    return reward / np.sqrt(var + EPSILON)


class FastStreamXPreprocessor(StreamXPreprocessor):
    """``StreamXPreprocessor`` with a compiled ``step``/``reset``; same results, same state."""

    def __init__(self, obs_dim: int, gamma: float, time_limit: int | None) -> None:
        super().__init__(obs_dim, gamma, time_limit)
        self._reward_state = np.zeros(4, np.float64)

    def _run(self, obs, reward: float, done: float, update: bool) -> tuple[np.ndarray, float]:
        stats, scaler = self.obs_norm.stats, self.reward_scaler
        x = np.asarray(obs, np.float64)
        if x.shape != stats.shape:
            raise ValueError(f"RunningMeanStd of shape {stats.shape} got a sample of shape {x.shape}")
        rs = self._reward_state
        rs[0], rs[1] = scaler.trace, scaler.stats.count
        rs[2], rs[3] = scaler.stats.mean, scaler.stats.m2
        count = stats.count + 1 if update else stats.count
        out = np.empty(self.out_dim, np.float32)
        # In place: RunningMeanStd.state_dict() hands out copies, so nobody else holds these.
        scaled = preprocess_step(x, count, stats.mean, stats.m2, update, float(reward), done,
                                 scaler.gamma, rs, out)
        stats.count = count
        if update and done >= 0:
            scaler.trace, scaler.stats.count = float(rs[0]), int(rs[1])
            scaler.stats.mean, scaler.stats.m2 = np.float64(rs[2]), np.float64(rs[3])
        return out, float(scaled)

    def reset(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        out, _ = self._run(obs, 0.0, -1.0, update)
        if self.time:
            out[-1] = self.time.reset()
        return out

    def step(
        self, obs: np.ndarray, reward: float, terminated: bool, truncated: bool, update: bool = True
    ) -> tuple[np.ndarray, float]:
        out, scaled = self._run(obs, reward, float(terminated or truncated), update)
        if self.time:
            out[-1] = self.time.step()
        return out, scaled
