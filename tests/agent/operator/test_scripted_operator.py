"""``ScriptedReachOperator`` on the real MuJoCo tabletop arm (``sim-tabletop``, reach): it takes over
only when the pusher heads away from the named block, drives it back through velocity commands
within [-1, 1], hands back when it heads right again or is close, and ends episodes through a real
``EpisodeController``: ``success`` once the simulator reports it, ``failure`` at its time limit,
once per episode."""

from __future__ import annotations

import numpy as np
import pytest

from agent.operator import EpisodeController, OperatorConfig
from agent.operator.scripted import ScriptedReachConfig, ScriptedReachOperator, reach_gap
from hal.errors import ConfigError
from sim.tabletop.robot import TabletopRobot, TabletopRobotConfig


@pytest.fixture
def arm():
    robot = TabletopRobot("arm", TabletopRobotConfig(task="reach", cameras=[], goal_in_state="relative",
                                                     terminate_on_success=False, episode_steps=10_000,
                                                     watchdog_timeout_s=None, seed=3))
    robot.connect()
    yield robot
    robot.disconnect()


def _operated(robot, **config):
    operator = ScriptedReachOperator.for_tabletop(robot, ScriptedReachConfig(**config))
    controller = EpisodeController(OperatorConfig(enabled=True, wait_for_start=False), 2, 50.0,
                                   reset_robot=robot.reset)
    operator.controller = controller
    return operator, controller


def _step(robot, operator, controller, policy_action):
    """One step as ``OperatedSteps`` takes it: the controller's tick, the operator's poll, the act."""
    directive = controller.tick({"state": robot.observe()["state"]}, 0.0, None)
    person = operator.poll(0.0, None)
    robot.act(person.command if person.active else policy_action)
    return directive, person


def _gap(robot) -> np.ndarray:
    state = robot.observe()["state"]
    names = robot.tabletop.state_names()
    return np.array([state[names.index("goal_dx")], state[names.index("goal_dy")]])


def test_takes_over_when_heading_away_and_hands_back_when_heading_right(arm):
    operator, controller = _operated(arm, away_steps=3, hand_back_steps=5, release_distance=0.03)
    persons, distances = [], []
    for _ in range(40):
        away = -np.clip(8.0 * _gap(arm), -1.0, 1.0).astype(np.float32)  # a policy heading away
        _, person = _step(arm, operator, controller, away)
        persons.append(person)
        distances.append(float(np.hypot(*_gap(arm))))
    active = [p.active for p in persons]
    first = active.index(True)
    assert first == 3  # three growths of the distance in a row (four samples): not before
    held = active[first:].index(False)
    # It drives until the pusher closed in five steps in a row (the first command or two only
    # brake the arm's motion away: the velocity changes by at most max_delta a tick), then hands back.
    assert 5 < held <= 8
    assert distances[first + held - 1] < distances[first - 1]  # its commands brought the pusher back
    assert True in active[first + held:]  # the policy heads away again: it takes over again
    for p in persons:
        if p.active:
            assert p.command.shape == (2,) and np.all(np.abs(p.command) <= 1.0)
    assert operator.takeovers == sum(a and not b for a, b in zip(active, [False, *active[:-1]])) >= 2
    assert operator.takeovers_by_episode == {1: operator.takeovers}


def test_watching_only_it_counts_each_excursion_away_once_and_never_drives(arm):
    operator, controller = _operated(arm, take_over=False)
    persons = []
    for leg in (+1, -1, -1, +1, -1, -1):  # away, back, back, away, back, back: 10 steps each
        for _ in range(10):
            toward = np.clip(8.0 * _gap(arm), -1.0, 1.0).astype(np.float32)
            persons.append(_step(arm, operator, controller, -leg * toward)[1])
    assert not any(p.active for p in persons)
    assert operator.takeovers == 2 and operator.takeovers_by_episode == {1: 2}


def test_a_policy_heading_right_is_left_alone_and_success_ends_the_episode(arm):
    operator, controller = _operated(arm)
    said = []
    for _ in range(300):
        toward = np.clip(8.0 * _gap(arm), -1.0, 1.0).astype(np.float32)  # a policy that reaches
        directive, person = _step(arm, operator, controller, toward)
        assert not person.active
        said.append(operator.watch())
        if directive.ended is not None:
            break
    end = directive.ended
    assert end is not None
    assert (end.outcome, end.ended_by, end.label_source) == ("success", "operator", "operator")
    assert [s for s in said if s] == ["success"] and operator.marked == {"success": 1, "failure": 0}
    assert controller.phase == "waiting"  # the robot was reset on that tick; the next one starts by itself
    directive, _ = _step(arm, operator, controller, np.zeros(2, np.float32))
    assert directive.started and controller.episode == 2 and operator.watch() is None


def test_failure_at_the_time_limit_once_per_episode(arm):
    operator, controller = _operated(arm, time_limit_steps=20)
    ends, said = [], []
    for _ in range(45):
        directive, _ = _step(arm, operator, controller, np.zeros(2, np.float32))  # the arm stays put
        said.append(operator.watch())
        said.append(operator.watch())  # asked twice between steps (a heartbeat): said once
        if directive.ended is not None:
            ends.append(directive.ended)
    assert [(e.episode, e.outcome, e.terminated) for e in ends] == [(1, "failure", True),
                                                                    (2, "failure", True)]
    assert said.count("failure") == 2 and operator.marked["failure"] == 2
    assert said.index("failure") == 2 * 19  # after the 20th step of the episode


def test_the_goal_is_read_from_a_one_hot_as_from_the_relative_vector(arm):
    names = arm.tabletop.state_names()
    state = arm.observe()["state"]
    onehot = [n for n in names if not n.startswith(("goal_d", "goal_to", "approach"))]
    by_onehot = reach_gap(onehot)(np.array([state[names.index(n)] for n in onehot]))
    np.testing.assert_allclose(by_onehot, reach_gap(names)(state), atol=1e-6)
    with pytest.raises(ConfigError, match="goal_in_state"):
        reach_gap(names[:8])
    with pytest.raises(ConfigError, match="away_steps must be an integer >= 1, got 0"):
        ScriptedReachConfig(away_steps=0)
