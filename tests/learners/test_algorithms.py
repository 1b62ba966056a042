"""Stream AC/Q/SARSA/TD(lambda): update rules checked against hand-built targets, and learning."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from learners.streamx import ConfigError, StreamAC, StreamQ, StreamSARSA, StreamTD, algorithm_config
from learners.streamx.config import StreamACConfig
from learners.transition import Transition


def _vec(rng, n=6):
    return rng.normal(size=n).astype(np.float32)


def test_stream_ac_delta_uses_current_critic_and_zero_bootstrap_when_done():
    rng = np.random.default_rng(0)
    algo = StreamAC(6, action_dim=2, seed=0)
    s, s2 = _vec(rng), _vec(rng)
    with torch.no_grad():
        v, v2 = float(algo.critic(torch.tensor(s))), float(algo.critic(torch.tensor(s2)))
    a = algo.act(s).action
    info = algo.update(Transition(s, a, 1.5, s2, False, False))
    assert info.delta == pytest.approx(1.5 + 0.99 * v2 - v, rel=1e-5)
    with torch.no_grad():
        v = float(algo.critic(torch.tensor(s)))
    info = algo.update(Transition(s, a, 1.5, s2, False, True))  # truncated counts as done
    assert info.delta == pytest.approx(1.5 - v, rel=1e-5)
    assert all(torch.count_nonzero(z) == 0 for z in algo.actor_opt.traces + algo.critic_opt.traces)


def test_stream_ac_action_logp_is_of_the_unclipped_sample():
    algo = StreamAC(4, action_dim=3, seed=1)
    s = np.zeros(4, np.float32)
    result = algo.act(s)
    with torch.no_grad():
        mu, sigma = algo.actor(torch.tensor(s))
    dist = torch.distributions.Normal(mu, sigma)
    assert result.logp == pytest.approx(float(dist.log_prob(torch.tensor(result.action)).sum()), rel=1e-5)


def test_stream_ac_discrete_acts_in_range_and_learns_signal():
    algo = StreamAC(3, n_actions=4, config=StreamACConfig(hidden=(16, 16)), seed=0)
    s = np.ones(3, np.float32)
    actions = {algo.act(s).action for _ in range(200)}
    assert actions <= {0, 1, 2, 3} and len(actions) > 1
    # Rewarding action 2 only: its probability must rise.
    with torch.no_grad():
        p_before = torch.softmax(algo.actor(torch.tensor(s)), -1)[2].item()
    for _ in range(300):
        a = algo.act(s).action
        algo.update(Transition(s, a, 1.0 if a == 2 else 0.0, s, True, False))
    with torch.no_grad():
        p_after = torch.softmax(algo.actor(torch.tensor(s)), -1)[2].item()
    assert p_after > p_before + 0.2


def test_stream_q_cuts_traces_after_nongreedy_action_only():
    rng = np.random.default_rng(0)
    algo = StreamQ(6, n_actions=3, seed=0)
    s, s2 = _vec(rng), _vec(rng)
    def greedy_and_other() -> tuple[int, int]:
        with torch.no_grad():
            q = algo.q(torch.tensor(s))
        return int(q.argmax()), int(q.argmin())

    algo.update(Transition(s, greedy_and_other()[0], 1.0, s2, False, False))
    assert any(torch.count_nonzero(z) > 0 for z in algo.opt.traces)
    algo.update(Transition(s, greedy_and_other()[1], 1.0, s2, False, False))
    assert all(torch.count_nonzero(z) == 0 for z in algo.opt.traces)


def test_stream_q_target_is_max_and_sarsa_target_is_next_action():
    rng = np.random.default_rng(1)
    s, s2 = _vec(rng), _vec(rng)
    q = StreamQ(6, n_actions=3, seed=3)
    sarsa = StreamSARSA(6, n_actions=3, seed=3)
    with torch.no_grad():
        q_s, q_s2 = q.q(torch.tensor(s)), q.q(torch.tensor(s2))
    low = int(q_s2.argmin())
    assert q.update(Transition(s, 0, 0.5, s2, False, False)).delta == pytest.approx(
        0.5 + 0.99 * float(q_s2.max()) - float(q_s[0]), rel=1e-5)
    assert sarsa.update(Transition(s, 0, 0.5, s2, False, False, next_action=low)).delta == pytest.approx(
        0.5 + 0.99 * float(q_s2[low]) - float(q_s[0]), rel=1e-5)
    with pytest.raises(ValueError, match="next_action"):
        sarsa.update(Transition(s, 0, 0.5, s2, False, False))


def test_epsilon_decays_linearly_then_holds():
    algo = StreamQ(2, n_actions=2, config=algorithm_config("stream-q", {"total_steps": 1000}), seed=0)
    s = np.zeros(2, np.float32)
    assert algo.epsilon == 1.0
    for _ in range(25):
        algo.act(s)
    assert algo.epsilon == pytest.approx(1.0 - 0.99 * 25 / 50)
    for _ in range(100):
        algo.act(s)
    assert algo.epsilon == pytest.approx(0.01)


def test_stream_td_learns_the_value_of_a_constant_reward_chain():
    """Reward 1 forever with gamma 0.9: V converges toward 1 / (1 - 0.9) = 10."""
    algo = StreamTD(2, config=algorithm_config("stream-td", {"gamma": 0.9, "hidden": [16]}), seed=0)
    s = np.array([1.0, -1.0], np.float32)
    for _ in range(3000):
        algo.update(Transition(s, None, 1.0, s, False, False))
    assert algo.predict(s) == pytest.approx(10.0, rel=0.05)


def test_overshoot_counter_sees_flips_when_the_bound_is_loosened():
    rng = np.random.default_rng(0)
    def run(kappa: float) -> int:
        algo = StreamTD(32, config=algorithm_config(
            "stream-td", {"kappa": kappa, "count_overshoots": True, "hidden": [16]}), seed=0)
        for _ in range(300):
            s, s2 = _vec(rng, 32), _vec(rng, 32)
            algo.update(Transition(s, None, float(rng.normal(0, 10)), s2, False, False))
        return algo.overshoots

    assert run(kappa=0.001) > 10  # practically unbounded steps overshoot
    assert run(kappa=2.0) == 0


@pytest.mark.parametrize(("field", "value"), [("gamma", 0.0), ("gamma", 1.2), ("lamda", -0.1),
                                              ("lamda", 1.5), ("kappa_value", 0.0), ("alpha", -1)])
def test_invalid_hyperparameters_name_field_and_value(field, value):
    with pytest.raises(ConfigError, match=rf"stream-ac\.{field}.*{value}"):
        algorithm_config("stream-ac", {field: value})


@pytest.mark.parametrize(("field", "value", "want"), [
    ("lamda", "abc", "a number"), ("gamma", [1], "a number"), ("hidden", "abc", "a list of integers"),
    ("hidden", [64, "x"], "a list of integers"), ("adaptive", "maybe", "true or false"),
    ("count_overshoots", 1, "true or false"), ("kappa_policy", None, "a number"),
])
def test_a_hyperparameter_of_the_wrong_type_is_named_with_its_value(field, value, want):
    # before: a TypeError deep in a comparison, or (adaptive: "maybe") silently taken as true
    said = rf"^stream-ac\.{field} must be {want}, got {re.escape(repr(value))}$"
    with pytest.raises(ConfigError, match=said):
        algorithm_config("stream-ac", {field: value})
    assert algorithm_config("stream-ac", {"alpha": 1, "hidden": (64, 64)}).hidden == (64, 64)  # int: a number


def test_unknown_algorithm_and_field_suggest_close_names():
    with pytest.raises(ConfigError, match="stream-ac"):
        algorithm_config("stream-acc")
    with pytest.raises(ConfigError, match="did you mean 'kappa'"):
        algorithm_config("stream-q", {"kapa": 1.0})


def test_state_dict_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    a, b = StreamAC(5, action_dim=2, seed=0), StreamAC(5, action_dim=2, seed=99)
    for _ in range(20):
        s = _vec(rng, 5)
        a.update(Transition(s, a.act(s).action, 1.0, _vec(rng, 5), False, False))
    b.load_state_dict(a.state_dict())
    s = _vec(rng, 5)
    ra, rb = a.act(s), b.act(s)
    np.testing.assert_array_equal(ra.action, rb.action)
    a.update(Transition(s, ra.action, 0.3, s, False, False))
    b.update(Transition(s, rb.action, 0.3, s, False, False))
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key
