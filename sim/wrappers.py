"""Thin gymnasium wrappers around the stream-x normalizers of ``policies.streamx.normalization``.

For gymnasium users who want the stream-x recipe on any env. Order (docs/streamx.md, piece 5):
make -> flatten -> episode statistics -> clip action -> scale reward -> normalize observation ->
add time feature. ``make_streamx_env`` applies exactly that. rill's own training loop uses the
plain ``StreamXPreprocessor`` instead, so that it can screen non-finite values before any
statistic sees them.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from policies.streamx.normalization import ObservationNormalizer, RewardScaler, TimeFeature
from sim.envs import make_env, time_limit


class NormalizeObservation(gym.ObservationWrapper):
    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.normalizer = ObservationNormalizer(env.observation_space.shape)

    def observation(self, observation):
        return self.normalizer(observation).astype(np.float32)


class ScaleReward(gym.Wrapper):
    def __init__(self, env: gym.Env, gamma: float = 0.99) -> None:
        super().__init__(env)
        self.scaler = RewardScaler(gamma)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return obs, self.scaler(reward, terminated or truncated), terminated, truncated, info


class AddTimeFeature(gym.Wrapper):
    def __init__(self, env: gym.Env, limit: int | None = None) -> None:
        super().__init__(env)
        self.time = TimeFeature(limit or time_limit(env))
        low = np.append(env.observation_space.low, -np.inf).astype(np.float32)
        high = np.append(env.observation_space.high, np.inf).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return np.append(obs, self.time.reset()).astype(np.float32), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return np.append(obs, self.time.step()).astype(np.float32), reward, terminated, truncated, info


def make_streamx_env(env_id: str, gamma: float = 0.99, time_feature: bool | None = None) -> gym.Env:
    """An env wrapped in the stream-x recipe; the time feature defaults on for continuous control."""
    env = make_env(env_id)
    env = gym.wrappers.RecordEpisodeStatistics(env)
    continuous = isinstance(env.action_space, gym.spaces.Box)
    if continuous:
        env = gym.wrappers.ClipAction(env)
    env = ScaleReward(env, gamma)
    env = NormalizeObservation(env)
    if continuous if time_feature is None else time_feature:
        env = AddTimeFeature(env)
    return env
