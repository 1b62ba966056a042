"""The control loop with a real simulated robot: never waits for the policy, joins chunks within
the blending bound, holds and reports when the policy fails or the sensor data is stale."""

from __future__ import annotations

import itertools
import threading
import time

import numpy as np
import pytest

from agent.loop import ChunkSchedule, ControlLoop, LoopConfig
from agent.testing.policies import ReplanningPolicy
from hal.errors import ConfigError
from policies.base import ActionChunk
from sim.robots import MujocoRobot, MujocoRobotConfig


def _robot(cls=MujocoRobot) -> MujocoRobot:
    return cls("hopper", MujocoRobotConfig(env_id="Hopper-v5", watchdog_timeout_s=None))


class _ThreadRecordingPolicy(ReplanningPolicy):
    def __init__(self, *a, **k) -> None:
        super().__init__(*a, **k)
        self.threads: list[int] = []

    def act(self, observation):
        self.threads.append(threading.get_ident())
        return super().act(observation)


def _run(asynchronous: bool, ticks: int = 120, blend: str = "linear", policy=None):
    robot = _robot()
    policy = policy or _ThreadRecordingPolicy(3, chunk_size=25, latency_s=0.06)
    records = []
    loop = ControlLoop(
        robot,
        policy,
        LoopConfig(control_hz=50, asynchronous=asynchronous, blend=blend),
        on_tick=records.append,
    )
    with robot:
        loop_thread = threading.get_ident()
        stats = loop.run(ticks=ticks)
    return loop, stats, records, policy, loop_thread


def test_asynchronous_loop_never_runs_the_policy_on_the_control_thread():
    _loop, stats, records, policy, control = _run(asynchronous=True)
    assert stats.ticks == 120 and len(records) == 120
    assert policy.calls >= 3 and control not in policy.threads
    # In each episode the robot held only until that episode's first chunk arrived, never after.
    for episode in {r.episode for r in records}:
        ticks = [r for r in records if r.episode == episode]
        acted = [r.tick for r in ticks if not r.held]
        if acted:
            # (the tick that observes the episode's end sends nothing: the robot is reset after it)
            assert all(not r.held for r in ticks if r.tick > acted[0] and not r.episode_end), episode
    assert {r.reason for r in records if r.held and not r.episode_end} <= {"no chunk"}
    assert {r.reason for r in records if r.episode_end} <= {"episode ended"}
    assert stats.policy_failures == 0 and stats.late_chunks == 0


def test_synchronous_loop_blocks_on_the_policy_and_misses_deadlines():
    _, stats, _, policy, control = _run(asynchronous=False)
    assert set(policy.threads) == {control}
    # A 60 ms policy inside a 20 ms tick overruns at every new chunk: at least one miss per chunk.
    assert stats.deadline_misses >= policy.calls


def test_linear_blend_bounds_the_jump_at_a_join():
    for blend, ticks in (("linear", 4), ("none", 0)):
        schedule = ChunkSchedule(blend, ticks)
        schedule.add(ActionChunk(np.zeros((10, 2)), 0.02), start_tick=0, now_tick=0)
        executed = [schedule.action(t) for t in range(3)]
        schedule.add(ActionChunk(np.ones((10, 2)), 0.02), start_tick=1, now_tick=3)  # arrives 2 ticks late
        executed += [schedule.action(t) for t in range(3, 10)]
        jumps = [float(np.max(np.abs(b - a))) for a, b in itertools.pairwise(executed)]
        bound = 1.0 / (ticks + 1)
        assert max(jumps) == pytest.approx(bound), blend
        assert executed[-1].tolist() == [1.0, 1.0]


def test_a_chunk_entirely_in_the_past_is_dropped():
    schedule = ChunkSchedule()
    assert not schedule.add(ActionChunk(np.zeros((3, 1)), 0.02), start_tick=0, now_tick=5)
    assert schedule.action(5) is None


def test_failing_policy_makes_the_robot_hold_and_the_loop_report_it():
    policy = ReplanningPolicy(3, chunk_size=10, latency_s=0.01, fail_after=2)
    loop, stats, records, _, _ = _run(asynchronous=True, ticks=100, policy=policy)
    assert stats.ticks == 100 and stats.policy_failures > 0
    assert "injected" in stats.last_failure
    held = [r for r in records if r.held]
    assert held and held[-1].reason == "policy failing" and loop.state == "holding: policy failing"
    # Once the good chunks ran out, nothing but holds: the robot never acted on a failed policy.
    last_action = max(r.tick for r in records if not r.held)
    assert all(r.held for r in records if r.tick > last_action)


class _LaggingSensorHopper(MujocoRobot):
    """A Hopper whose sensor delivers data one second old (a stalled driver)."""

    def _observe(self):
        obs = super()._observe()
        obs["timestamp"] = time.monotonic() - 1.0
        return obs


def test_stale_observations_are_flagged_and_never_acted_on():
    robot = _robot(_LaggingSensorHopper)
    sent = []
    original = robot._send
    robot._send = lambda cmd: (sent.append(cmd.copy()), original(cmd))
    records = []
    loop = ControlLoop(
        robot, ReplanningPolicy(3, latency_s=0.0), LoopConfig(control_hz=100), on_tick=records.append
    )
    with robot:
        stats = loop.run(ticks=30)
    assert stats.stale_observations == 30 and all(r.held and r.reason == "stale observation" for r in records)
    hold = robot._hold_command()
    assert all(np.array_equal(cmd, hold) for cmd in sent)  # only hold commands ever reached the robot


def test_episode_end_resets_the_robot_and_drops_old_plans():
    robot = _robot()
    records = []
    loop = ControlLoop(
        robot,
        ReplanningPolicy(3, chunk_size=40, latency_s=0.005, amplitude=1.0),
        LoopConfig(control_hz=200),
        on_tick=records.append,
    )
    with robot:
        loop.run(ticks=600)
    ends = [r for r in records if r.episode_end]
    assert ends, "a Hopper under a random-ish policy falls within 600 ticks"
    assert loop.episode == len(ends)
    episodes = [r.episode for r in records]
    assert episodes == sorted(episodes)  # episodes only move forward
    # After each reset the first ticks hold until a chunk planned in the new episode arrives.
    for end in ends:
        following = [r for r in records if r.episode == end.episode + 1]
        if following:
            assert following[0].held and following[0].reason == "no chunk"


def test_an_invalid_observation_holds_the_robot_and_is_counted():
    from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig

    class _BrokenCamera(TabletopRobot):
        """A tabletop arm whose camera driver delivers frames of the wrong size."""

        def _observe(self):
            obs = super()._observe()
            obs["image.front"] = obs["image.front"][:10]
            return obs

    robot = _BrokenCamera("tab", TabletopRobotConfig(task="reach", watchdog_timeout_s=None))
    records = []
    loop = ControlLoop(
        robot, ReplanningPolicy(2, latency_s=0.0), LoopConfig(control_hz=100), on_tick=records.append
    )
    with robot:
        stats = loop.run(ticks=20)
    assert stats.ticks == 20 and stats.bad_observations == 20
    assert all(r.held and r.reason == "bad observation" for r in records)
    assert "image.front" in stats.last_failure


def test_an_unpaced_loop_must_run_the_policy_inside_the_tick():
    with pytest.raises(ConfigError, match=r"loop.paced false .* needs loop.asynchronous false"):
        LoopConfig(control_hz=50, paced=False)
    config = LoopConfig(control_hz=0.2, paced=False, asynchronous=False)  # 5 s a tick, were it paced
    with MujocoRobot("hopper", MujocoRobotConfig(env_id="Hopper-v5", watchdog_timeout_s=None)) as robot:
        policy = ReplanningPolicy(robot.action_spec.dim, chunk_size=4, period_s=5.0)
        stats = ControlLoop(robot, policy, config).run(ticks=40)
    # Every tick acted (the policy ran inside the ticks that needed a chunk), none waited for a clock.
    assert stats.ticks == 40 and stats.holds == 0 and stats.deadline_misses == 0
    assert not stats.jitter_s and len(stats.inference_s) >= 10


def test_a_loop_runs_once_and_says_so_when_run_again():
    robot = _robot()
    loop = ControlLoop(robot, ReplanningPolicy(3, latency_s=0.0), LoopConfig(control_hz=100))
    with robot:
        assert loop.run(ticks=5).ticks == 5
        with pytest.raises(RuntimeError, match=r"this loop has run and stopped .* build a new ControlLoop"):
            loop.run(ticks=5)
