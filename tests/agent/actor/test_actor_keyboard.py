"""``rill actor --keyboard``: a person at a terminal runs the actor's episodes and takes over.

The real parts: the tabletop arm (``sim-tabletop``) behind ``RobotSource``, a learner on loopback,
and ``TerminalKeys`` reading a pseudo-terminal (``os.openpty``) into a ``KeyboardOperator``; the test
types on the terminal's other end and steps the actor itself, so nothing depends on timing."""

from __future__ import annotations

import math
import os
import time

import numpy as np
import pytest

from agent.actor import ActorConfig, ActorRunner
from agent.actor.episodes import read_episodes
from agent.actor.sources import RobotSource
from agent.operator.config import OperatorConfig
from agent.operator.keyboard import KeyboardOperator
from agent.operator.terminal import TerminalKeys
from hal.errors import ConfigError
from learners.cache import ReplayCache
from learners.service import LearnerConfig, LearnerService
from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig


class Terminal:
    """The person's end of a pseudo-terminal whose other end ``TerminalKeys`` reads."""

    def __init__(self, keyboard: KeyboardOperator) -> None:
        self.master, slave = os.openpty()
        self.keyboard = keyboard
        self.keys = TerminalKeys(keyboard, fd=slave).start()
        self.typed = 0

    def type(self, keys: str) -> None:
        """Type ``keys`` and wait until the keyboard has handled them all."""
        os.write(self.master, keys.encode())
        self.typed += len(keys)
        deadline = time.monotonic() + 10
        while self.keyboard.keys < self.typed:
            assert time.monotonic() < deadline, f"keyboard handled {self.keyboard.keys} of {self.typed} keys"
            time.sleep(0.005)

    def close(self) -> None:
        self.keys.close()
        os.close(self.master)


def _steps(runner: ActorRunner, n: int) -> list[bool]:
    return [runner.step() for _ in range(n)]


def test_a_person_takes_over_and_labels_episodes_of_the_actor_on_the_arm(tmp_path):
    robot = TabletopRobot("arm", TabletopRobotConfig(task="reach", cameras=[], watchdog_timeout_s=None,
                                                     episode_steps=100_000))
    robot.connect()
    source = RobotSource(robot, episode_steps=None)
    learner = LearnerService(LearnerConfig(
        bind="tcp://127.0.0.1:0", run_dir=tmp_path / "learner", obs_dim=source.obs_dim,
        action_dim=robot.action_spec.dim, durability="os-buffered")).start()
    keyboard = KeyboardOperator(robot.action_spec.dim, step=0.3)
    config = ActorConfig(learner=learner.endpoint, env="sim-tabletop", actor_id="keys",
                         run_dir=tmp_path / "actor", durability="os-buffered")
    runner = ActorRunner(config, source, operator=OperatorConfig(enabled=True), intervention=keyboard)
    keyboard.controller = runner.operated.controller
    terminal = Terminal(keyboard)
    try:
        runner.link.start()
        assert _steps(runner, 3) == [False] * 3 and runner.operated.phase == "waiting"  # until `g`
        terminal.type("g")
        assert all(_steps(runner, 4))  # the policy acts
        terminal.type("l")  # nudge axis 0: a takeover
        assert all(_steps(runner, 3))
        driven = runner.source.last_sent.copy()
        terminal.type(" ")  # release
        assert all(_steps(runner, 3))
        terminal.type("s")  # success
        assert not runner.step() and runner.operated.controller.last_end.outcome == "success"
        _steps(runner, 2)
        terminal.type("g")
        terminal.type("ll")
        assert all(_steps(runner, 2))
        terminal.type("f")
        _steps(runner, 2)
        terminal.type(" ")  # release (a takeover outlasts the episode it began in)
        terminal.type("g")
        assert all(_steps(runner, 2))
        terminal.type("q")  # stop: ends the episode, holds until `g`
        assert _steps(runner, 2) == [False, False]
        summary = runner.summary()
        runner.close(drain_s=10.0)
        deadline = time.monotonic() + 30
        while learner.updater.applied.get("keys", 0) < runner.seq and time.monotonic() < deadline:
            time.sleep(0.05)
        applied = learner.updater.applied.get("keys", 0)
    finally:
        terminal.close()
        learner.stop()
        robot.disconnect()
    assert applied == runner.seq == summary["seq"]
    # The person's command went through the robot's clamps: axis 0 nudged up from the last action.
    assert driven[0] > -1.0 and np.all(np.abs(driven) <= 1.0)

    cache = ReplayCache(tmp_path / "learner" / "cache")
    records = [t for _, t in cache.iter_transitions()]
    cache.close()
    assert [t.seq for t in records] == list(range(1, len(records) + 1))
    intervened = [t for t in records if t.extras.get("intervened")]
    own = [t for t in records if not t.extras.get("intervened")]
    assert len(intervened) == summary["intervened"] == 3 + 2 + 0
    assert all(math.isnan(t.behavior_logp) for t in intervened)
    assert own and all(math.isfinite(t.behavior_logp) for t in own)
    labelled = [t for t in records if t.extras.get("label_source") == "operator"]
    assert [(t.extras["success"], t.terminated) for t in labelled] == [(True, True), (False, True)]
    assert labelled[0].extras["raw_reward"] > 0.5  # the success reward (1.0) on a small step reward
    stopped = [t for t in records if t.truncated]
    assert len(stopped) == 1 and "success" not in stopped[0].extras

    episodes = read_episodes(tmp_path / "actor" / "actors" / "keys" / "episodes.csv")
    assert [(e.episode, e.outcome, e.ended_by, e.takeovers, e.intervened_steps) for e in episodes] == [
        (1, "success", "operator", 1, 3), (2, "failure", "operator", 1, 2), (3, "stopped", "operator", 0, 0)]
    assert [e.length for e in episodes] == [10, 2, 2]


def test_on_a_gym_env_the_keyboard_is_clipped_to_the_action_space(tmp_path):
    keyboard = KeyboardOperator(1, step=1.5)
    config = ActorConfig(learner="tcp://127.0.0.1:9", env="Pendulum-v1", actor_id="pend", run_dir=tmp_path,
                         durability="none")
    runner = ActorRunner(config, operator=OperatorConfig(enabled=True, wait_for_start=False),
                         intervention=keyboard)
    keyboard.controller = runner.operated.controller
    terminal = Terminal(keyboard)
    try:
        runner.step()  # the episode starts by itself; the policy acts
        terminal.type("llll")  # +6 on a pendulum whose torque is within [-2, 2]
        runner.step()
        assert runner.source.last_sent.tolist() == [2.0]
        terminal.type("x")  # zero the command
        runner.step()
        assert runner.source.last_sent.tolist() == [0.0]
    finally:
        terminal.close()
        runner.close()


def test_a_person_cannot_take_over_discrete_actions(tmp_path):
    config = ActorConfig(learner="tcp://127.0.0.1:9", env="CartPole-v1", actor_id="cart", run_dir=tmp_path,
                         algo="stream-q", durability="none")
    with pytest.raises(ConfigError, match="CartPole-v1 has 2 discrete actions"):
        ActorRunner(config, operator=OperatorConfig(enabled=True), intervention=KeyboardOperator(1))
