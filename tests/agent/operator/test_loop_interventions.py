"""The ``ControlLoop`` with a person in it, on a real simulated robot (the MuJoCo tabletop arm):
a keyboard takes over tick by tick through the robot's clamps, a source gone quiet holds the arm,
a command of the wrong width or with a NaN is refused and reported, and the keyboard's ``s`` ends
the episode, which the robot's own reset follows."""

from __future__ import annotations

import numpy as np
import pytest

import sim.robots  # noqa: F401  registers sim-tabletop
from agent.loop import ControlLoop, LoopConfig
from agent.operator import EpisodeController, Intervention, OperatorConfig
from agent.operator.keyboard import KeyboardOperator
from hal.config import RobotConfig
from hal.registry import make_robot
from policies.base import ActionChunk, Policy

POLICY_ACTION = np.array([0.2, 0.0], np.float32)


class SteadyPolicy(Policy):
    """Always the same velocity command, in two-action chunks."""

    def act(self, observation) -> ActionChunk:
        return ActionChunk(np.repeat(POLICY_ACTION[None], 2, axis=0), 0.02,
                           observed_at=float(observation["timestamp"]))


class ScriptedSource:
    """An intervention source that says what a test tells it to (a real implementation of the
    interface: the loop cannot tell it from a teleop device)."""

    def __init__(self) -> None:
        self.next = Intervention()

    def poll(self, now, last_sent) -> Intervention:
        return self.next


@pytest.fixture
def robot():
    params = {"task": "reach", "cameras": [], "max_delta": 0.3, "episode_steps": 1000}
    arm = make_robot(RobotConfig("table-op", "sim-tabletop", params))
    arm.connect()
    yield arm
    arm.disconnect()


def _loop(robot, **kwargs) -> ControlLoop:
    return ControlLoop(robot, SteadyPolicy(), LoopConfig(control_hz=50.0, paced=False, asynchronous=False),
                       **kwargs)


def test_keyboard_takes_over_through_the_clamps_and_ends_the_episode(robot):
    episodes = EpisodeController(OperatorConfig(enabled=True, wait_for_start=False), 2, 50.0,
                                 reset_robot=robot.reset)
    keys = KeyboardOperator(2, step=0.5, controller=episodes)
    loop = _loop(robot, intervention=keys, episodes=episodes)
    script = {5: " ", 6: "\x1b[C\x1b[C\x1b[C\x1b[C", 12: " ", 20: "l", 24: "s"}
    records = []

    def on_tick(record):
        records.append(record)
        if record.tick in script:
            keys.feed(script[record.tick])

    loop.on_tick = on_tick
    episode_before = robot.episode
    loop.run(ticks=30)
    by_tick = {r.tick: r for r in records}
    policy_ticks = [by_tick[t] for t in range(1, 6)]
    assert all(not r.intervened and np.allclose(r.action, POLICY_ACTION) for r in policy_ticks)
    driven = [by_tick[t] for t in range(6, 13)]
    assert all(r.intervened and r.chunk is None for r in driven)
    assert np.allclose(driven[0].action, POLICY_ACTION)  # the takeover starts where the robot was
    # Four nudges of 0.5 ask for 2.2; the robot's max_delta (0.3 a tick) clamps it to 0.5, and the
    # next nudge starts from what the robot took.
    assert np.allclose([r.action[0] for r in driven[1:5]], [0.5, 0.5, 0.5, 0.5])
    assert loop.interventions.clamped >= 1 and robot.health().clamped_actions >= 1
    assert not by_tick[14].intervened  # released: the policy again
    assert by_tick[21].intervened  # a direction key takes over again
    ended = [r for r in records if r.ended is not None]
    assert [r.tick for r in ended[:1]] == [25]
    end = ended[0].ended
    assert (end.outcome, end.ended_by, end.episode) == ("success", "operator", 1)
    last = ended[1]  # the loop's stop cut episode 2 short: it is recorded as such
    assert len(ended) == 2 and last.ended.outcome == "stopped" and last.ended.ended_by == "node_stopped"
    assert last.observation["state"].shape == robot.observation_spec["state"].shape
    assert robot.episode == episode_before + 1  # the robot's own reset followed
    assert episodes.episode == 2 and loop.interventions.takeovers == 2
    assert [r.phase for r in records[25:27]] == ["waiting", "running"]


def test_a_quiet_source_holds_and_bad_commands_are_refused(robot):
    source = ScriptedSource()
    loop = _loop(robot, intervention=source)
    assert not loop.step(0).held
    source.next = Intervention(True, None, "no command within 0.3 s")
    record = loop.step(1)
    assert record.held and record.intervened and record.reason == "intervention lost"
    assert robot.health().status == "holding" and loop.interventions.lost_ticks == 1
    for bad in (np.zeros(3, np.float32), np.array([np.nan, 0.0], np.float32)):
        source.next = Intervention(True, bad)
        record = loop.step(2)
        assert record.held and record.reason == "intervention refused" and record.action is None
    problems = loop.interventions
    assert problems.refused == 2 and "intervention command refused" in problems.last_problem
    source.next = Intervention(True, np.array([0.1, -0.1], np.float32))
    record = loop.step(3)
    assert not record.held and np.allclose(record.action, [0.1, -0.1])
    source.next = Intervention()
    assert not loop.step(4).intervened
