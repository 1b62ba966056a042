"""The learner's update side: one trace set per actor, truncated importance weights, staleness."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from pytest import approx

from learners.cache import CacheConfig, ReplayCache
from learners.link.weights import WeightsBox
from learners.service.config import LearnerConfig
from learners.service.updater import Updater
from learners.streamx import StreamAC, build_algorithm
from learners.transition import Transition


def _updater(tmp_path, **overrides):
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=4, action_dim=2,
                           **overrides)
    (tmp_path / "metrics").mkdir(parents=True, exist_ok=True)
    cache = ReplayCache(tmp_path / "cache", CacheConfig(durability="none"))
    algo = StreamAC(4, action_dim=2, seed=0)
    return Updater(config, cache, algo, WeightsBox()), cache, algo


def _t(actor, seq, done=False, logp=float("nan"), version=0):
    rng = np.random.default_rng(seq)
    return Transition(rng.normal(size=4).astype(np.float32), rng.normal(size=2).astype(np.float32), 1.0,
                      rng.normal(size=4).astype(np.float32), done, False, actor_id=actor, seq=seq,
                      behavior_logp=logp, policy_version=version)


def test_each_actor_has_its_own_traces(tmp_path):
    up, cache, algo = _updater(tmp_path)
    up.apply(_t("a", 1))
    a_traces = [z.clone() for z in algo.critic_opt.traces]
    up.apply(_t("b", 1, done=True))  # b's episode ends: only b's traces are cut
    algo.select_stream("a")
    assert all(torch.equal(z, w) for z, w in zip(algo.critic_opt.traces, a_traces))
    assert any(torch.count_nonzero(z) for z in algo.critic_opt.traces)
    algo.select_stream("b")
    assert all(torch.count_nonzero(z) == 0 for z in algo.critic_opt.traces)
    assert up.applied == {"a": 1, "b": 1}
    cache.close()


def test_importance_weight_is_truncated_ratio_of_current_to_behaviour_policy(tmp_path):
    up, cache, algo = _updater(tmp_path)
    t = _t("a", 1)
    logp_now = algo.log_prob(t.obs, t.action)
    t.behavior_logp = logp_now + math.log(4.0)  # the behaviour policy liked this action 4x more
    assert up.learning.importance_weight(t) == approx(0.25, rel=1e-5)
    t.behavior_logp = logp_now - 3.0  # more likely now than then: truncated at 1
    assert up.learning.importance_weight(t) == 1.0
    assert up.stats.importance_clipped == 1
    t.behavior_logp = float("nan")  # no behaviour log-probability recorded: on-policy weight
    assert up.learning.importance_weight(t) == 1.0
    off, cache2, _ = _updater(tmp_path / "off", importance_clip=None)
    t.behavior_logp = logp_now + 5.0
    assert off.learning.importance_weight(t) == 1.0
    cache.close()
    cache2.close()


@pytest.mark.parametrize("fast", [False, True])
def test_policy_weight_scales_only_the_policy_gradient(tmp_path, fast):
    t = _t("a", 1)
    full, part = (build_algorithm("stream-ac", 4, action_dim=2, seed=0, fast=fast) for _ in range(2))
    full.config.entropy_coeff = part.config.entropy_coeff = 0.0
    full.update(t, policy_weight=1.0)
    part.update(t, policy_weight=0.25)
    torch.testing.assert_close(part.actor_opt.traces[0], 0.25 * full.actor_opt.traces[0])
    torch.testing.assert_close(part.critic_opt.traces[0], full.critic_opt.traces[0])


def test_staleness_is_recorded(tmp_path):
    up, cache, _ = _updater(tmp_path)
    up.version = 10
    up.apply(_t("a", 1, version=4))
    up.apply(_t("a", 2, version=10))
    row = up.write_stats()
    assert row["staleness_max"] == 6 and row["staleness_mean"] == 3.0
    cache.close()


@pytest.mark.parametrize("discrete", [False, True])
def test_fast_log_prob_matches_autograd(discrete):
    layout = {"n_actions": 4} if discrete else {"action_dim": 2}
    slow, fast = (build_algorithm("stream-ac", 4, seed=3, fast=f, **layout) for f in (False, True))
    rng = np.random.default_rng(0)
    for _ in range(20):
        obs = rng.normal(size=4).astype(np.float32)
        action = int(rng.integers(4)) if discrete else rng.normal(size=2).astype(np.float32)
        assert fast.log_prob(obs, action) == approx(slow.log_prob(obs, action), rel=1e-5, abs=1e-6)


def test_a_checkpoint_between_records_of_one_poll_claims_only_what_was_applied(tmp_path):
    from learners.cache.batch import encode_batch
    from learners.cache.format import KIND_BATCH

    up, cache, _ = _updater(tmp_path, checkpoint_every_updates=4)
    for first, last in ((1, 2), (3, 4), (5, 5), (6, 6)):  # one poll takes all four records
        cache.log.append(encode_batch([_t("a", s) for s in range(first, last + 1)]), KIND_BATCH)
    cache.flush()
    assert up.step(timeout=1.0) == 4 and up.applied == {"a": 6}
    _, _, state = up.store.load_latest()  # taken after the second record, at update 4
    assert state["updates"] == 4 and state["consumer_position"] == 2 and state["applied"] == {"a": 4}
    up.journal.close()
    # A crash here loses the updates after the checkpoint: a restarted updater applies them again.
    again = Updater(up.config, cache, StreamAC(4, action_dim=2, seed=0), WeightsBox())
    assert again.applied == {"a": 4}
    assert again.step(timeout=1.0) == 2 and again.applied == {"a": 6}
    again.journal.close()
    cache.close()


def test_weights_are_published_every_n_updates_and_episodes_survive_a_restart(tmp_path):
    from learners.cache.batch import encode_batch
    from learners.cache.format import KIND_BATCH

    up, cache, algo = _updater(tmp_path, publish_every_updates=3, publish_every_ms=1e9)
    assert up.weights.latest().version == 0 and up.version == 0  # published at start
    for first, last in ((1, 2), (3, 4), (5, 5)):  # 2 updates: too few; 4: published; 5: too few
        cache.log.append(encode_batch([_t("a", s, done=s == 3) for s in range(first, last + 1)]), KIND_BATCH)
    cache.flush()
    assert up.step(timeout=1.0) == 3
    assert up.version == 4 and up.weights.latest().version == 4 and algo.updates == 5
    assert up.episodes == 1 and len(up.recent) == 1 and up.position == 3
    up.close()
    again = Updater(up.config, cache, StreamAC(4, action_dim=2, seed=0), WeightsBox())
    assert again.episodes == 1 and again.applied == {"a": 5} and again.version == 5
    again.journal.close()
    cache.close()


def _in_episode(actor, seq, episode, step, done=False):
    t = _t(actor, seq, done=done)
    t.episode, t.step = episode, step
    return t


@pytest.mark.parametrize("fast", [False, True])
def test_an_episode_broken_off_by_a_restart_does_not_lend_its_traces_to_the_next(tmp_path, fast):
    """Actor a is killed mid-episode 3 and comes back with episode 4: the first transition of 4 is
    learned from zero traces, exactly as from a fresh trace set; actor b's traces are untouched."""
    config = LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path, obs_dim=4, action_dim=2)
    (tmp_path / "metrics").mkdir(parents=True, exist_ok=True)
    cache = ReplayCache(tmp_path / "cache", CacheConfig(durability="none"))
    algo = build_algorithm("stream-ac", 4, action_dim=2, seed=0, fast=fast)
    up = Updater(config, cache, algo, WeightsBox())
    twin = build_algorithm("stream-ac", 4, action_dim=2, seed=0, fast=fast)
    for seq, step in ((1, 7), (2, 8), (3, 9)):
        up.apply(_in_episode("a", seq, 3, step))
    up.apply(_in_episode("b", 1, 0, 0))
    b_traces = [z.clone() for z in algo.critic_opt.traces]
    assert up.stats.episode_returns["a"] == approx(3.0)
    # the twin: the same weights, a's traces from zero, then the same transition
    twin.load_state_dict(algo.state_dict())
    twin.select_stream("a")
    twin.reset_traces()
    first = _in_episode("a", 4, 4, 0)
    twin.update(_in_episode("a", 4, 4, 0), policy_weight=1.0)
    up.apply(first)
    algo.select_stream("a")
    for mine, theirs in zip(algo.critic_opt.traces + algo.actor_opt.traces,
                            twin.critic_opt.traces + twin.actor_opt.traces):
        torch.testing.assert_close(mine, theirs)
    assert up.stats.interrupted == 1 and up.stats.episode_returns["a"] == approx(1.0)  # 3 dropped
    algo.select_stream("b")
    assert all(torch.equal(z, w) for z, w in zip(algo.critic_opt.traces, b_traces))
    # an episode that ended, or one that goes on, breaks nothing
    up.apply(_in_episode("a", 5, 4, 1, done=True))
    up.apply(_in_episode("a", 6, 5, 0))
    up.apply(_in_episode("a", 7, 5, 1))
    assert up.stats.interrupted == 1
    # the same episode number but its steps starting over is a restart too
    up.apply(_in_episode("a", 8, 5, 0))
    assert up.stats.interrupted == 2
    cache.close()


def test_a_declared_gap_is_counted_as_skipped(tmp_path):
    up, cache, _ = _updater(tmp_path)
    up.apply(_t("a", 1))
    up.apply(_t("a", 5))
    assert up.skipped == 3 and up.applied == {"a": 5}
    assert up.stats.row(2, 0)["skipped"] == 3
    cache.close()


def test_a_learner_restarted_between_the_break_and_the_restart_still_sees_it(tmp_path):
    """The learner checkpoints the episode, step and end of each actor's last applied transition:
    restarted, it tells actor a's broken-off episode from the next one as it would have running."""
    up, cache, _ = _updater(tmp_path)
    up.apply(_in_episode("a", 1, 3, 7))
    up.apply(_in_episode("a", 2, 3, 8))
    up.close()  # a checkpoint
    _, _, state = up.store.load_latest()
    assert state["last_steps"] == {"a": [3, 8, False]}
    again = Updater(up.config, cache, StreamAC(4, action_dim=2, seed=0), WeightsBox())
    again.apply(_in_episode("a", 3, 4, 1))
    assert again.stats.interrupted == 1
    again.journal.close()
    cache.close()


def test_a_checkpoint_with_a_malformed_last_steps_is_refused_by_name(tmp_path):
    from learners.service.checkpoints import _last_steps

    assert _last_steps("c", {}) == {} and _last_steps("c", {"a": [1, 2, True]}) == {"a": (1, 2, True)}
    for bad in ({"a": [1, 2]}, {"a": ["1", 2, False]}, {"a": [1, 2, 0]}, [1, 2, 3]):
        with pytest.raises(ValueError, match=r"learner checkpoint c: last_steps must map each actor"):
            _last_steps("c", bad)
