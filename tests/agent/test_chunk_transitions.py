"""Ticks become one transition per executed chunk, with rewards credited to the acting chunk."""

from __future__ import annotations

import numpy as np
import pytest

from agent.actor.chunks import ChunkTransitions
from agent.loop.control import TickRecord
from policies.base import ActionChunk


def _chunk(tag: float) -> ActionChunk:
    return ActionChunk(
        np.zeros((4, 2)),
        0.02,
        version=int(tag),
        features=np.full(3, tag, np.float32),
        logp=-1.0,
        extras={"residual": np.full(2, tag, np.float32)},
    )


def _tick(t: int, chunk, reward: float, held=False, terminated=False, truncated=False, success=False):
    obs = {"reward": reward, "terminated": terminated, "truncated": truncated, "success": success}
    return TickRecord(t, obs, None if held else np.zeros(2), chunk, held)


def test_rewards_go_to_the_chunk_that_acted_and_segments_close_at_handover_and_episode_end():
    b = ChunkTransitions(gamma=0.99, actor_id="arm")
    a, c = _chunk(1), _chunk(2)
    ticks = [
        _tick(0, None, 0.0, held=True),  # no chunk yet: nothing to credit
        _tick(1, a, 5.0),  # a starts; this reward belongs to the hold before it
        _tick(2, a, 1.0),  # reward of a's first action
        _tick(3, a, 1.0),
        _tick(4, c, 2.0),  # handover: the reward in this observation is still a's
        _tick(5, c, 3.0, terminated=True, success=True),
    ]
    steps = [t for t in map(b.on_tick, ticks) if t is not None]
    assert len(steps) == 2
    first, second = steps
    assert np.array_equal(first.obs, a.features) and np.array_equal(first.action, a.extras["residual"])
    assert first.policy_version == 1 and first.extras["raw_reward"] == 4.0 and first.extras["ticks"] == 3
    assert np.array_equal(first.next_obs, c.features) and not (first.terminated or first.truncated)
    assert np.array_equal(second.obs, c.features) and second.policy_version == 2
    assert second.extras["raw_reward"] == 3.0 and second.terminated and second.extras["success"]
    assert first.episode == second.episode == 0 and b.episode == 1 and first.actor_id == "arm"
    assert (first.step, second.step) == (3, 4)  # the episode's ticks executed as each closed: rising
    # Reward scaling: no mean subtraction, the sign survives.
    assert second.reward > 0 and first.reward == pytest.approx(4.0)  # var 1 at first sample


def test_a_chunk_without_a_residual_makes_no_transition():
    b = ChunkTransitions(gamma=0.99)
    plain = ActionChunk(np.zeros((2, 1)), 0.02, features=np.zeros(3, np.float32))
    assert b.on_tick(_tick(0, plain, 0.0)) is None
    assert b.on_tick(_tick(1, _chunk(1), 1.0)) is None
