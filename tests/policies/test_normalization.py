"""Streaming normalizers against float64 references; reward-scaling recursion; time feature."""

from __future__ import annotations

import numpy as np
import pytest

from policies.streamx.normalization import (
    ObservationNormalizer,
    RewardScaler,
    RunningMeanStd,
    StreamXPreprocessor,
    TimeFeature,
)


@pytest.mark.parametrize("seed", range(3))
def test_welford_matches_two_pass_float64(seed):
    rng = np.random.default_rng(seed)
    data = rng.normal(loc=rng.normal(0, 100, 7), scale=rng.uniform(0.01, 50, 7), size=(5000, 7))
    stats = RunningMeanStd((7,))
    for i, x in enumerate(data, start=1):
        stats.update(x)
        if i in (1, 2, 10, 4999):
            np.testing.assert_allclose(stats.mean, data[:i].mean(0), rtol=1e-10)
            expected = np.ones(7) if i < 2 else data[:i].var(0, ddof=1)
            np.testing.assert_allclose(stats.var, expected, rtol=1e-8)


def test_observation_counts_current_sample_first_so_first_output_is_zero():
    norm = ObservationNormalizer((3,))
    first = norm(np.array([5.0, -2.0, 7.0]))
    np.testing.assert_array_equal(first, np.zeros(3))
    second = norm(np.array([7.0, -2.0, 9.0]))
    # mean [6, -2, 8], sample var [2, 0, 2]
    np.testing.assert_allclose(second, [1 / np.sqrt(2 + 1e-8), 0.0, 1 / np.sqrt(2 + 1e-8)])
    frozen = norm(np.array([6.0, -2.0, 8.0]), update=False)
    np.testing.assert_allclose(frozen, 0.0, atol=1e-12)
    assert norm.stats.count == 2


def test_reward_scaling_recursion_at_terminal_and_truncated_steps():
    gamma = 0.9
    scaler = RewardScaler(gamma)
    rewards = [1.0, 2.0, -1.0, 3.0, 0.5, 4.0]
    dones = [False, True, False, False, True, False]  # one terminal-or-truncated per episode end
    u, traces, outs = 0.0, [], []
    for r, d in zip(rewards, dones):
        u = gamma * u * (1.0 - d) + r
        traces.append(u)
        var = np.var(traces, ddof=1) if len(traces) >= 2 else 1.0
        outs.append(r / np.sqrt(var + 1e-8))
    got = [scaler(r, d) for r, d in zip(rewards, dones)]
    np.testing.assert_allclose(got, outs, rtol=1e-12)
    assert scaler.trace == pytest.approx(traces[-1])
    # No mean subtraction: a reward of zero stays exactly zero.
    assert scaler(0.0, False) == 0.0


def test_time_feature_values():
    tf = TimeFeature(4)
    assert tf.reset() == -0.5
    assert [tf.step() for _ in range(4)] == pytest.approx([-0.25, 0.0, 0.25, 0.5])
    assert tf.reset() == -0.5
    with pytest.raises(ValueError, match="time_limit"):
        TimeFeature(0)


def test_preprocessor_appends_unnormalized_time_and_round_trips_state():
    rng = np.random.default_rng(0)
    pre = StreamXPreprocessor(3, gamma=0.99, time_limit=10)
    out = pre.reset(rng.normal(size=3))
    assert out.dtype == np.float32 and out.shape == (4,) and out[-1] == -0.5
    for _ in range(5):
        out, _ = pre.step(rng.normal(size=3), 1.0, False, False)
    assert out[-1] == pytest.approx(-0.5 + 5 / 10)
    clone = StreamXPreprocessor(3, gamma=0.99, time_limit=10)
    clone.load_state_dict(pre.state_dict())
    x = rng.normal(size=3)
    a, ra = pre.step(x, 2.0, True, False)
    b, rb = clone.step(x, 2.0, True, False)
    np.testing.assert_array_equal(a, b)
    assert ra == rb
