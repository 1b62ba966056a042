"""Ticks become one transition per executed chunk, with rewards credited to the acting chunk."""

from __future__ import annotations

import numpy as np
import pytest

from agent.loop.control import TickRecord
from agent.vla.transitions import ChunkTransitionBuilder
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
    steps = []
    b = ChunkTransitionBuilder(gamma=0.99, emit=steps.append)
    a, c = _chunk(1), _chunk(2)
    b.on_tick(_tick(0, None, 0.0, held=True))  # no chunk yet: nothing to credit
    b.on_tick(_tick(1, a, 5.0))  # a starts; this reward belongs to the hold before it
    b.on_tick(_tick(2, a, 1.0))  # reward of a's first action
    b.on_tick(_tick(3, a, 1.0))
    b.on_tick(_tick(4, c, 2.0))  # handover: the reward in this observation is still a's
    b.on_tick(_tick(5, c, 3.0, terminated=True, success=True))
    assert len(steps) == 2
    first, second = steps
    assert first.chunk is a and first.raw_reward == 4.0 and first.ticks == 3
    assert np.array_equal(first.next_features, c.features) and not (first.terminated or first.truncated)
    assert second.chunk is c and second.raw_reward == 3.0 and second.terminated and second.success
    # Reward scaling: no mean subtraction, the sign survives.
    assert second.scaled_reward > 0 and first.scaled_reward == pytest.approx(4.0)  # var 1 at first sample


def test_a_chunk_without_a_residual_makes_no_transition():
    steps = []
    b = ChunkTransitionBuilder(gamma=0.99, emit=steps.append)
    plain = ActionChunk(np.zeros((2, 1)), 0.02, features=np.zeros(3, np.float32))
    b.on_tick(_tick(0, plain, 0.0))
    b.on_tick(_tick(1, _chunk(1), 1.0))
    assert steps == []
