"""``EpisodeController``: the operator's words start, end, label and reset episodes; words for
another episode are refused by name; the time limit and the robot's own end close episodes; the
reset routine goes home no faster than its speed and then waits for the operator."""

from __future__ import annotations

import re

import numpy as np
import pytest

from agent.operator import EpisodeController, OperatorConfig, OperatorEvent, OperatorEventError
from hal.errors import ConfigError


def _obs(q=(0.0, 0.0), **signals) -> dict:
    return {"state": np.asarray([*q, 0.0, 0.0], np.float32), **signals}


def _controller(**config) -> EpisodeController:
    return EpisodeController(OperatorConfig(enabled=True, **config), action_dim=2, control_hz=10.0)


def test_operator_starts_labels_and_the_next_episode_waits_for_start():
    c = _controller()
    assert c.tick(_obs(), 0.0, None).control == "hold" and c.state()["next"] == 1
    c.submit(OperatorEvent("start", 1))
    d = c.tick(_obs(), 0.1, None)
    assert d.control == "policy" and d.started and c.episode == 1 and c.phase == "running"
    c.note_intervention(True)
    c.note_intervention(True)
    c.note_intervention(False)
    c.note_intervention(True)
    assert (c.takeovers, c.intervened_steps) == (2, 3)
    c.submit(OperatorEvent.parse('{"episode": 1, "event": "success"}'))
    d = c.tick(_obs(), 2.0, None)
    end = d.ended
    assert end.outcome == "success" and end.ended_by == "operator" and end.terminated and end.success
    assert end.reward == 1.0 and end.label_source == "operator" and end.duration_s == pytest.approx(1.9)
    assert d.control == "hold" and c.phase == "waiting"  # no home pose: nothing to drive
    assert c.tick(_obs(), 5.0, None).control == "hold"  # waits for the operator's start
    c.submit(OperatorEvent("start", 2))
    assert c.tick(_obs(), 5.1, None).started and c.episode == 2 and c.takeovers == 0


def test_an_event_for_another_episode_is_refused_by_name():
    c = _controller(wait_for_start=False)
    c.tick(_obs(), 0.0, None)
    assert c.episode == 1
    c.submit(OperatorEvent("success", 3))
    c.submit(OperatorEvent("start", 1))
    d = c.tick(_obs(), 0.1, None)
    assert d.ended is None and c.phase == "running"
    assert c.refused["success"] == 1 and c.refused["start"] == 1
    assert "episode 1 is running" in c.last_refusal
    c.submit(OperatorEvent("failure", 3))
    c.tick(_obs(), 0.2, None)
    assert c.last_refusal == "failure for episode 3 refused: no episode 3; the current episode is 1 (running)"
    for bad, why in (("{", "not JSON"), ('{"event": "win", "episode": 1}', "unknown operator event 'win'"),
                     ('{"event": "success"}', "must name an 'event' and an 'episode'"),
                     ('{"event": "success", "episode": -2}', "non-negative"),
                     ('{"event": "success", "episode": 1, "by": "me"}', re.escape("unknown keys ['by']"))):
        with pytest.raises(OperatorEventError, match=why):
            OperatorEvent.parse(bad)


def test_time_limit_robot_end_stop_and_node_stop():
    c = _controller(wait_for_start=False, time_limit_s=1.0)
    c.tick(_obs(), 0.0, None)
    end = c.tick(_obs(), 1.05, None).ended
    assert (end.outcome, end.ended_by, end.terminated, end.reward) == ("timeout", "time_limit", False, 0.0)
    assert c.tick(_obs(), 1.1, None).started  # no waiting for a start: the next one runs
    end = c.tick(_obs(terminated=True, success=True), 1.2, None).ended
    assert (end.outcome, end.ended_by, end.terminated, end.label_source) == ("success", "robot", True, "")
    c.tick(_obs(), 1.3, None)
    end = c.tick(_obs(truncated=True, success=False), 1.4, None).ended
    assert (end.outcome, end.ended_by, end.terminated) == ("timeout", "robot", False)
    c.tick(_obs(), 1.5, None)
    c.submit(OperatorEvent("stop", c.episode))
    d = c.tick(_obs(), 1.6, None)
    assert d.ended.outcome == "stopped" and d.ended.ended_by == "operator" and not d.ended.terminated
    assert d.reason == "stopped by operator"
    assert c.tick(_obs(), 9.0, None).control == "hold"  # a stop waits for the operator
    c.submit(OperatorEvent("start", c.episode + 1))
    c.tick(_obs(), 9.1, None)
    end = c.finish(9.5)
    assert (end.outcome, end.ended_by, end.terminated) == ("stopped", "node_stopped", False)
    assert c.finish(9.6) is None


def test_reset_routine_goes_home_at_its_speed_then_waits_or_times_out():
    c = _controller(home_pose=[1.0, -0.5], reset_speed=2.0, wait_timeout_s=3.0)  # 0.2 per tick at 10 Hz
    c.submit(OperatorEvent("start", 1))
    c.tick(_obs(), 0.0, None)
    c.submit(OperatorEvent("reset", 1))
    sent, now, q = np.zeros(2, np.float32), 0.1, np.zeros(2)
    d = c.tick(_obs(q), now, sent)
    assert d.ended.outcome == "stopped" and d.control == "drive"
    commands = []
    while d.control == "drive":
        assert np.max(np.abs(d.action - sent)) <= 0.2 + 1e-6  # never faster than reset_speed
        sent, q = d.action, d.action  # a robot that follows exactly
        commands.append(sent)
        now += 0.1
        d = c.tick(_obs(q), now, sent)
    assert np.allclose(commands[-1], [1.0, -0.5]) and len(commands) == 5
    assert d.control == "hold" and c.phase == "waiting"
    now += 3.0  # nobody says start: the wait times out and the next episode starts
    assert c.tick(_obs(q), now, sent).started and c.episode == 2
    # A robot that cannot get there: the routine gives up after reset_timeout_s and holds.
    stuck = _controller(home_pose=[1.0, 1.0], reset_timeout_s=0.5, wait_for_start=False)
    stuck.tick(_obs(), 0.0, None)
    stuck.submit(OperatorEvent("reset", 1))
    t = 0.0
    while stuck.phase == "resetting" or t == 0.0:
        t += 0.1
        d = stuck.tick(_obs((0.0, 0.0)), t, np.zeros(2, np.float32))
        assert t < 2.0
    assert "home not reached within 0.5 s" in d.reason


def test_config_refuses_bad_values_by_name():
    for kwargs, field in (({"reset_speed": 0.0}, "operator.reset_speed"),
                          ({"time_limit_s": -1.0}, "operator.time_limit_s"),
                          ({"home_pose": [0.0, float("nan")]}, "operator.home_pose"),
                          ({"success_reward": float("inf")}, "operator.success_reward")):
        with pytest.raises(ConfigError, match=field):
            OperatorConfig(**kwargs)
    with pytest.raises(ConfigError, match=r"operator.home_pose has 3 values for a robot with 2 actions"):
        _controller(home_pose=[0.0, 0.0, 0.0])
