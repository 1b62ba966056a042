"""``agent_node``'s learner client and stream-x policy, without ROS: transitions built from control
ticks reach a real learner on loopback and are acknowledged; the stream-x policy acts with the
weights the learner publishes, and its behaviour log-probabilities travel with the transitions."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from agent.actor.ticks import TickTransitions
from agent.loop import TickRecord
from agent.ros.agent_config import LearnerClientConfig, PolicyConfig
from agent.ros.policy_factory import build_policy
from learners.cache import ReplayCache
from learners.service import LearnerConfig, LearnerService


def _wait(condition, timeout=20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not condition():
        time.sleep(0.02)
    return bool(condition())


def test_ticks_become_acknowledged_transitions_and_streamx_acts_with_learned_weights(tmp_path):
    service = LearnerService(LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=4,
                                           action_dim=2, durability="os-buffered",
                                           publish_every_updates=20)).start()
    client = TickTransitions(LearnerClientConfig(endpoint=service.endpoint, actor_id="arm-1",
                                                 run_dir=str(tmp_path / "agent"), durability="os-buffered"),
                             obs_dim=4, action_dim=2)
    try:
        policy = build_policy(PolicyConfig(type="streamx"), 4, 2, 0.05, client)
        rng = np.random.default_rng(0)
        instruction = "reach the target at x=0.1 y=0.1"
        tick, deadline, since_weights = 0, time.monotonic() + 30, 0
        # Tick on until learned weights arrived and a few transitions were completed with them (a
        # tick completes the previous tick's transition).
        while (tick < 120 or since_weights < 3) and time.monotonic() < deadline:
            tick += 1
            since_weights += policy.version > 0
            time.sleep(0.005)  # a control rate: the learner's weights arrive while the loop runs
            if tick == 60:
                instruction = "reach the target at x=-0.1 y=0.1"  # a new task: the episode ends
            obs = {"state": rng.normal(size=4).astype(np.float32), "reward": np.float32(-0.1),
                   "instruction": instruction, "timestamp": time.monotonic()}
            if tick in (30, 31):  # a stale observation: no transition across the gap
                client.on_tick(TickRecord(tick, obs, None, None, True, "stale observation"))
                continue
            chunk = policy.act(obs)
            client.on_tick(TickRecord(tick, obs, chunk.actions[0], chunk, False))
        assert policy.version > 0, "no learned weights reached the stream-x policy"
        assert _wait(lambda: client.link.acked_seq == client.seq)
    finally:
        client.close(drain_s=5.0)
        service.stop()
    # Each tick completes the previous tick's transition; the first tick, the two stale ones and the
    # one that starts again after them complete none.
    made = tick - 4
    assert client.made == made and client.broken_chains == 1 and client.episode == 1
    assert service.server.durable_seq == {"arm-1": made}
    cache = ReplayCache(tmp_path / "learner" / "cache")
    records = [t for _, t in cache.iter_transitions()]
    cache.close()
    assert [t.seq for t in records] == list(range(1, made + 1))
    assert sum(t.truncated for t in records) == 1
    assert all(t.obs.shape == (4,) and t.action.shape == (2,) for t in records)
    assert all(math.isfinite(t.behavior_logp) for t in records)  # the policy's own draws
    assert max(t.policy_version for t in records) > 0  # later actions came from learned weights


def _one_episode(client: TickTransitions, policy, rng, ticks: int, instruction: str) -> None:
    """``ticks`` ticks on ``instruction``; the first tick of the next call, on another instruction,
    ends this episode (a change of task)."""
    for _ in range(ticks):
        obs = {"state": rng.normal(size=4).astype(np.float32), "reward": np.float32(-0.1),
               "instruction": instruction, "timestamp": time.monotonic()}
        chunk = policy.act(obs)
        client.on_tick(TickRecord(0, obs, chunk.actions[0], chunk, False))


def test_a_restarted_client_counts_steps_and_episodes_on_from_its_episode_log(tmp_path):
    from agent.actor.episodes import read_episodes

    service = LearnerService(LearnerConfig(bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=4,
                                           action_dim=2, durability="os-buffered")).start()
    config = LearnerClientConfig(endpoint=service.endpoint, actor_id="arm-1", run_dir=str(tmp_path / "agent"),
                                 durability="os-buffered")
    rng = np.random.default_rng(1)
    try:
        lives = []
        for life, tasks in enumerate((("a", "b", "c"), ("d", "e"))):
            client = TickTransitions(config, obs_dim=4, action_dim=2)
            try:
                policy = build_policy(PolicyConfig(type="streamx"), 4, 2, 0.05, client)
                start = (client.made, client.episode)
                for task in tasks:
                    _one_episode(client, policy, rng, 10, f"task {life}{task}")
                assert _wait(lambda c=client: c.link.acked_seq == c.seq)
                lives.append((start, client.made, client.episode, client.seq))
            finally:
                client.close(drain_s=5.0)
    finally:
        service.stop()
    # The first life ends two episodes (a->b, b->c; c is under way when it closes), 29 steps.
    assert lives[0][0] == (0, 0) and lives[0][1:3] == (29, 2)
    # The second counts on: its steps from the transitions made (episode c's included) and its
    # episode numbers from the log; episode c's transitions went out under number 3, so the next
    # episode is 4 and no number is given twice.
    assert lives[1][0] == (29, 3)
    assert lives[1][1:] == (29 + 19, 4, 29 + 19)  # steps, episodes, sequence numbers: one per step
    logged = read_episodes(tmp_path / "agent" / "actors" / "arm-1" / "episodes.csv")
    assert [(e.episode, e.step) for e in logged] == [(1, 10), (2, 20), (4, 39)]


def test_an_operators_episode_numbers_start_where_they_are_told():
    from agent.operator.config import OperatorConfig
    from agent.operator.episodes import EpisodeController

    assert EpisodeController(OperatorConfig(enabled=True), 2, 20.0, first_episode=5).state()["next"] == 5
    with pytest.raises(ValueError, match="first_episode"):
        EpisodeController(OperatorConfig(enabled=True), 2, 20.0, first_episode=0)
