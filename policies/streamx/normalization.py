"""Streaming normalization (docs/streamx.md, piece 5) as plain numpy classes.

These run anywhere a stream of observations and rewards exists: the gymnasium wrappers in
``sim.wrappers``, the training loop, a real robot's control loop. Statistics are float64 Welford
estimates; every class round-trips through ``state_dict()`` / ``load_state_dict()`` exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

EPSILON = 1e-8


class RunningMeanStd:
    """Welford mean and sample variance of a stream of arrays, in float64.

    The variance reads 1 until two samples have been seen; afterwards it is ``M2 / (n - 1)``.
    """

    def __init__(self, shape: tuple[int, ...] = ()) -> None:
        self.shape = tuple(shape)
        self.count = 0
        self.mean = np.zeros(self.shape, np.float64)
        self.m2 = np.zeros(self.shape, np.float64)

    @property
    def var(self) -> np.ndarray:
        if self.count < 2:
            return np.ones(self.shape, np.float64)
        return self.m2 / (self.count - 1)

    def update(self, x: np.ndarray | float) -> None:
        x = np.asarray(x, np.float64)
        if x.shape != self.shape:
            raise ValueError(f"RunningMeanStd of shape {self.shape} got a sample of shape {x.shape}")
        self.count += 1
        delta = x - self.mean
        self.mean = self.mean + delta / self.count
        self.m2 = self.m2 + delta * (x - self.mean)

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean.copy(), "m2": self.m2.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mean = np.asarray(state["mean"], np.float64).reshape(self.shape)
        m2 = np.asarray(state["m2"], np.float64).reshape(self.shape)
        self.count, self.mean, self.m2 = int(state["count"]), mean.copy(), m2.copy()


class ObservationNormalizer:
    """``o' = (o - mu) / sqrt(var + 1e-8)`` with the current sample counted *before* normalizing.

    So the very first normalized observation is all zeros. Call with ``update=False`` to normalize
    with frozen statistics (evaluation, acting on a robot with shipped statistics).
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.stats = RunningMeanStd(shape)

    def __call__(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        if update:
            self.stats.update(obs)
        return (np.asarray(obs, np.float64) - self.stats.mean) / np.sqrt(self.stats.var + EPSILON)

    def state_dict(self) -> dict[str, Any]:
        return self.stats.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stats.load_state_dict(state)


class RewardScaler:
    """Scale rewards by the standard deviation of a discounted return trace; no mean subtraction.

    ``u <- gamma * u * (1 - done_t) + r_t`` (``done_t``: the episode ended at this very step),
    ``u`` feeds a Welford estimator, and the emitted reward is ``r / sqrt(var_u + 1e-8)``.
    """

    def __init__(self, gamma: float) -> None:
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"RewardScaler: gamma must be in (0, 1], got {gamma!r}")
        self.gamma = gamma
        self.trace = 0.0
        self.stats = RunningMeanStd(())

    def __call__(self, reward: float, done: bool, update: bool = True) -> float:
        if update:
            self.trace = self.gamma * self.trace * (1.0 - float(done)) + float(reward)
            self.stats.update(self.trace)
        return float(reward / np.sqrt(self.stats.var + EPSILON))

    def state_dict(self) -> dict[str, Any]:
        return {"trace": self.trace, **self.stats.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.trace = float(state["trace"])
        self.stats.load_state_dict(state)


class TimeFeature:
    """One un-normalized feature telling the agent how far into the episode it is.

    ``-0.5`` at reset, then ``+1/T`` after each step (``T`` = the episode step limit), so after
    step ``k`` the feature is ``-0.5 + k / T``. ``reset``/``step`` count as the reference code does
    (one addition a step, its float rounding included); ``at(k)`` is the same feature for a consumer
    that knows the step, not a counter (the VLA's residual heads, told ``episode_tick``).
    """

    def __init__(self, time_limit: int) -> None:
        if time_limit <= 0:
            raise ValueError(f"TimeFeature: time_limit must be > 0, got {time_limit!r}")
        self.time_limit = int(time_limit)
        self.value = -0.5

    def reset(self) -> float:
        self.value = -0.5
        return self.value

    def step(self) -> float:
        self.value += 1.0 / self.time_limit
        return self.value

    def at(self, k: int) -> float:
        """The feature after step ``k`` of an episode, in closed form; held at ``0.5`` past ``T``
        (an episode the robot let run over its limit is no later than one at its limit)."""
        return -0.5 + min(k, self.time_limit) / self.time_limit

    def state_dict(self) -> dict[str, Any]:
        return {"value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.value = float(state["value"])


class StreamXPreprocessor:
    """The whole stream-x input pipeline for one environment stream, in the reference order.

    Raw reward -> reward scaling; raw observation -> normalization -> time feature appended.
    ``reset(obs)`` starts an episode, ``step(obs, reward, terminated, truncated)`` processes one
    transition's outcome. Outputs are float32 vectors ready for the networks.
    """

    def __init__(self, obs_dim: int, gamma: float, time_limit: int | None) -> None:
        self.obs_norm = ObservationNormalizer((obs_dim,))
        self.reward_scaler = RewardScaler(gamma)
        self.time = TimeFeature(time_limit) if time_limit else None
        self.out_dim = obs_dim + (1 if self.time else 0)

    def _finish(self, normed: np.ndarray, t: float | None) -> np.ndarray:
        out = np.empty(self.out_dim, np.float32)
        if t is None:
            out[:] = normed
        else:
            out[:-1] = normed
            out[-1] = t
        return out

    def reset(self, obs: np.ndarray, update: bool = True) -> np.ndarray:
        t = self.time.reset() if self.time else None
        return self._finish(self.obs_norm(obs, update), t)

    def step(
        self, obs: np.ndarray, reward: float, terminated: bool, truncated: bool, update: bool = True
    ) -> tuple[np.ndarray, float]:
        scaled = self.reward_scaler(reward, terminated or truncated, update)
        t = self.time.step() if self.time else None
        return self._finish(self.obs_norm(obs, update), t), scaled

    def state_dict(self) -> dict[str, Any]:
        state = {"obs": self.obs_norm.state_dict(), "reward": self.reward_scaler.state_dict()}
        if self.time:
            state["time"] = self.time.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.obs_norm.load_state_dict(state["obs"])
        self.reward_scaler.load_state_dict(state["reward"])
        if self.time:
            self.time.load_state_dict(state["time"])
