"""A per-step policy (stream-x: one action per chunk) in the default asynchronous loop, on the real
simulated tabletop arm: it acts on nearly every tick, each action answering that tick's own
observation, while a chunking policy keeps its inference thread."""

from __future__ import annotations

import threading

import numpy as np

from agent.actor.streamx_policy import StreamXPolicy
from agent.loop import ControlLoop, LoopConfig
from agent.testing.policies import ReplanningPolicy
from learners.streamx import algorithm_config, build_algorithm, build_preprocessor
from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig


def _arm() -> TabletopRobot:
    return TabletopRobot("arm", TabletopRobotConfig(task="reach", cameras=[], watchdog_timeout_s=None))


class _ThreadNoting(StreamXPolicy):
    """A stream-x policy (an untrained Stream AC network) that notes the thread it runs on."""

    def __init__(self, obs_dim: int, action_dim: int) -> None:
        pre = build_preprocessor(obs_dim, 0.99, None)
        algo = build_algorithm("stream-ac", pre.out_dim, action_dim=action_dim,
                               config=algorithm_config("stream-ac", {}), seed=0)
        super().__init__(algo, lambda s: pre.obs_norm(s, update=False), action_dim, period_s=0.02)
        self.threads: list[int] = []

    def act(self, observation):
        self.threads.append(threading.get_ident())
        return super().act(observation)


def test_a_streamx_policy_acts_on_nearly_every_tick_of_the_asynchronous_loop():
    robot = _arm()
    records = []
    with robot:
        obs_dim = int(np.prod(robot.observation_spec["state"].shape))
        policy = _ThreadNoting(obs_dim, robot.action_spec.dim)
        config = LoopConfig(control_hz=50)
        assert config.asynchronous  # the default loop, as agent_node runs it
        loop = ControlLoop(robot, policy, config, on_tick=records.append)
        assert loop.infers_in_tick
        control = threading.get_ident()
        stats = loop.run(ticks=100)
    acted = [r for r in records if not r.held]
    assert stats.ticks == 100 and stats.late_chunks == 0
    assert len(acted) >= 95, f"{stats.holds} holds: {sorted({r.reason for r in records if r.held})}"
    # Each action answers the observation of the tick that sent it, drawn on the control thread.
    assert all(r.chunk is not None and r.chunk.observed_at == r.observation["timestamp"] for r in acted)
    assert set(policy.threads) == {control}
    # The robot moved: the actions were not all holds in disguise.
    assert len({tuple(np.round(r.action, 6)) for r in acted}) > 50


def test_a_chunking_policy_still_infers_on_its_own_thread():
    robot = _arm()
    with robot:
        policy = ReplanningPolicy(robot.action_spec.dim, chunk_size=10, latency_s=0.005)
        loop = ControlLoop(robot, policy, LoopConfig(control_hz=50))
        assert not loop.infers_in_tick
        stats = loop.run(ticks=30)
    assert stats.ticks == 30 and len(stats.inference_s) >= 1


def test_a_finished_episode_is_sent_nothing_and_the_robot_is_reset_once():
    """The tick that observes the end of an episode plans nothing and sends nothing: the loop resets
    the robot right after it, so an action there would only start (and waste) a scene of its own."""
    robot = TabletopRobot("arm", TabletopRobotConfig(task="reach", cameras=[], watchdog_timeout_s=None,
                                                     episode_steps=10))
    records = []
    with robot:
        obs_dim = int(np.prod(robot.observation_spec["state"].shape))
        policy = _ThreadNoting(obs_dim, robot.action_spec.dim)
        loop = ControlLoop(robot, policy, LoopConfig(control_hz=50, asynchronous=False, paced=False),
                           on_tick=records.append)
        loop.run(ticks=33)  # three whole episodes of 10 steps (11 ticks each: 10 actions, one end)
        ends = [r for r in records if r.episode_end]
        assert len(ends) == 3 and robot.episode == 3  # one reset an episode, by the loop
        assert all(r.held and r.action is None and r.reason == "episode ended" for r in ends)
        assert loop.stats.holds == 0  # the robot was not told to hold: it was reset
        assert len(policy.threads) == 30 and robot.steps == 30  # one act and one step per action
        assert [r.episode for r in ends] == [0, 1, 2]
