"""Env creation errors, the stream-x wrapper order, and exact MuJoCo snapshots."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from sim import snapshot
from sim.envs import UnknownEnvError, make_env
from sim.wrappers import AddTimeFeature, NormalizeObservation, ScaleReward, make_streamx_env


def test_unknown_env_names_it_and_lists_close_matches():
    with pytest.raises(UnknownEnvError, match=r"'Hoper-v5'.*Hopper-v5"):
        make_env("Hoper-v5")


def test_streamx_wrapper_order_matches_the_recipe():
    env = make_streamx_env("Hopper-v5")
    chain = []
    while isinstance(env, gym.Wrapper):
        chain.append(type(env))
        env = env.env
    # outermost first
    assert chain[:5] == [AddTimeFeature, NormalizeObservation, ScaleReward, gym.wrappers.ClipAction,
                         gym.wrappers.RecordEpisodeStatistics]
    discrete = make_streamx_env("CartPole-v1")
    assert not isinstance(discrete, AddTimeFeature)


def test_wrapped_env_normalizes_and_appends_time():
    env = make_streamx_env("Hopper-v5")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (12,) and obs[-1] == -0.5
    np.testing.assert_array_equal(obs[:-1], 0.0)  # first normalized observation
    obs, *_ = env.step(env.action_space.sample())
    assert obs[-1] == pytest.approx(-0.5 + 1 / 1000)


def test_mujoco_snapshot_restores_exactly_mid_episode():
    env = make_env("Hopper-v5")
    env.reset(seed=3)
    rng = np.random.default_rng(0)
    for _ in range(37):
        env.step(rng.uniform(-1, 1, 3))
    state, arrays = snapshot.capture(env, mid_episode=True)
    actions = rng.uniform(-1, 1, (50, 3))
    first = [env.step(a)[:2] for a in actions]
    other = make_env("Hopper-v5")
    other.reset(seed=99)
    snapshot.restore(other, state, arrays)
    second = [other.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(first, second):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2
    assert other.unwrapped.np_random.bit_generator.state == env.unwrapped.np_random.bit_generator.state


def test_non_mujoco_env_cannot_be_snapshotted_mid_episode():
    env = make_env("CartPole-v1")
    env.reset(seed=0)
    assert not snapshot.supports_mid_episode(env)
    with pytest.raises(ValueError, match="mid-episode"):
        snapshot.capture(env, mid_episode=True)
