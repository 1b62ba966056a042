"""ResidualPolicy: a stream-x Gaussian residual on the VLA's chunk, weights shipped by name."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pytest
import torch

from learners.streamx.stream_ac import StreamAC
from policies.vla import ResidualPolicy, ResidualWeightsError, VLAPolicy, tiny_vla

LOW = np.array([-1.0, -2.0, 0.0, -0.1], np.float32)
HIGH = np.array([1.0, 0.5, 3.0, 0.1], np.float32)


@pytest.fixture(scope="module")
def base():
    return VLAPolicy(tiny_vla(state_dim=6, action_dim=4, chunk_size=5, seed=0, action_low=LOW.tolist(),
                              action_high=HIGH.tolist()))


def _obs(seed=0):
    rng = np.random.default_rng(seed)
    return {"state": rng.standard_normal(6).astype(np.float32),
            "image.front": rng.integers(0, 256, (96, 96, 3), dtype=np.uint8),
            "instruction": "wipe the table", "timestamp": 3.0}


def _learner_actor_weights(feature_dim, seed):
    algo = StreamAC(obs_dim=feature_dim, action_dim=4, seed=seed)
    return algo, {f"actor.{k}": v for k, v in algo.actor.state_dict().items()}


def test_actions_are_the_clipped_sum_and_logp_is_of_the_unclipped_residual(base):
    policy = ResidualPolicy(base, scale=[3.0, 3.0, 3.0, 30.0], seed=1)
    chunk = policy.act(_obs())
    r = chunk.extras["residual"]
    base_actions = chunk.extras["base_actions"]
    assert r.shape == (4,) and chunk.actions.shape == (5, 4)
    np.testing.assert_array_equal(chunk.actions, np.clip(base_actions + policy.scale * r, LOW, HIGH))
    assert (chunk.actions >= LOW).all() and (chunk.actions <= HIGH).all()
    assert np.abs(base_actions + policy.scale * r).max(axis=0)[3] > HIGH[3]  # dim 3 really was clipped
    mu, sigma = policy.actor(torch.from_numpy(chunk.features))
    expected = torch.distributions.Normal(mu, sigma).log_prob(torch.from_numpy(r)).sum()
    assert chunk.logp == pytest.approx(float(expected), rel=1e-5, abs=1e-5)
    assert chunk.features is not None and chunk.features.shape == (base.feature_dim,)
    assert chunk.observed_at == 3.0 and chunk.period_s == base.period_s


def test_seeded_sampling_is_reproducible_and_deterministic_mode_uses_the_mean(base):
    a, b = ResidualPolicy(base, seed=4), ResidualPolicy(base, seed=4)
    for seed in range(3):
        ra, rb = a.act(_obs(seed)).extras["residual"], b.act(_obs(seed)).extras["residual"]
        np.testing.assert_array_equal(ra, rb)
    det = ResidualPolicy(base, seed=4, deterministic=True)
    chunk = det.act(_obs())
    mu, _ = det.actor(torch.from_numpy(chunk.features))
    np.testing.assert_allclose(chunk.extras["residual"], mu.detach().numpy(), rtol=1e-6)


def test_learner_weights_load_by_name_and_agree_with_the_learner(base):
    policy = ResidualPolicy(base, seed=2)
    before = policy.act(_obs())
    algo, state = _learner_actor_weights(base.feature_dim, seed=9)
    for k in state:
        state[k] = state[k] + 0.05 * torch.randn(state[k].shape)  # as if trained
    algo.actor.load_state_dict({k[len("actor."):]: v for k, v in state.items()})
    policy.load_state_dict(state, version=17)
    policy.generator.manual_seed(2)  # same noise as before: only the weights differ
    after = policy.act(_obs())
    assert after.version == 17 and policy.version == 17
    assert not np.allclose(after.extras["residual"], before.extras["residual"])
    assert set(policy.state_dict()) == set(state)
    # The learner's log pi(residual | features) is the behaviour logp the actor reported.
    assert algo.log_prob(after.features, after.extras["residual"]) == pytest.approx(after.logp, rel=1e-5)
    policy.load_state_dict(policy.state_dict())
    assert policy.version == 18


def _nan_first(s):
    s["actor.mu.weight"].view(-1)[0] = float("nan")


@pytest.mark.parametrize("corrupt, message", [
    (lambda s: s.pop("actor.mu.bias"), r"missing \['actor.mu.bias'\]"),
    (lambda s: s.update({"critic.head.bias": torch.zeros(1)}), r"unexpected \['critic.head.bias'\]"),
    (lambda s: s.update({"actor.sigma.weight": torch.zeros(4, 64)}), r"'actor\.sigma\.weight' has shape"),
    (_nan_first, r"'actor\.mu\.weight' is not a finite"),
])
def test_bad_weights_are_refused_whole(base, corrupt, message):
    policy = ResidualPolicy(base, seed=0)
    old = policy.state_dict()
    _, state = _learner_actor_weights(base.feature_dim, seed=3)
    state = {k: v.clone() for k, v in state.items()}
    corrupt(state)
    with pytest.raises(ResidualWeightsError, match=message):
        policy.load_state_dict(state)
    for k, v in policy.state_dict().items():
        assert torch.equal(v, old[k]), k
    assert policy.version == 0


def test_a_non_finite_residual_falls_back_to_the_base_actions(base):
    policy = ResidualPolicy(base, seed=0)
    state = policy.state_dict()
    state["actor.mu.weight"] = torch.full_like(state["actor.mu.weight"], 3e38)
    policy.load_state_dict(state)
    chunk = policy.act(_obs())
    np.testing.assert_array_equal(chunk.actions, chunk.extras["base_actions"])
    assert np.isnan(chunk.logp) and policy.nonfinite == 1 and not chunk.extras["residual"].any()


def test_construction_checks(base):
    with pytest.raises(ValueError, match="scale must be > 0"):
        ResidualPolicy(base, scale=0.0)
    with pytest.raises(ValueError, match="low < high"):
        ResidualPolicy(base, low=1.0, high=1.0)
    with pytest.raises(RuntimeError, match=r"features of shape \(\d+,\), expected \(10,\)"):
        ResidualPolicy(base, feature_dim=10).act(_obs())
