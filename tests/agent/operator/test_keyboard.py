"""The keyboard's key handling, fed characters as a terminal would deliver them (no terminal)."""

from __future__ import annotations

import numpy as np

from agent.operator import EpisodeController, OperatorConfig
from agent.operator.keyboard import KeyboardOperator


def test_keys_take_over_nudge_release_and_mark_episodes():
    episodes = EpisodeController(OperatorConfig(enabled=True), action_dim=3, control_hz=10.0)
    keys = KeyboardOperator(3, step=0.1, controller=episodes)
    last = np.array([0.5, 0.5, 0.5], np.float32)
    assert not keys.poll(0.0, last).active
    keys.feed(" ")
    first = keys.poll(0.0, last)
    assert first.active and np.allclose(first.command, last)  # a takeover starts where the robot is
    keys.feed("\x1b[C\x1b[C")  # two right arrows
    keys.feed("\x1b[")  # an arrow split across reads
    keys.feed("A")
    last = keys.poll(0.1, last).command  # a robot that takes each command as it is
    assert np.allclose(last, [0.7, 0.6, 0.5])
    keys.feed("]l")  # the next axis pair: axis 2 (axis 3 does not exist)
    keys.feed("i")
    last = keys.poll(0.2, last).command
    assert np.allclose(last, [0.7, 0.6, 0.6])
    clamped = np.array([0.6, 0.6, 0.6], np.float32)  # the robot took less than it was asked
    keys.feed("[k")  # back to axes 0-1; axis 1 down
    assert np.allclose(keys.poll(0.25, clamped).command, [0.6, 0.5, 0.6])  # no wind-up past the clamp
    keys.feed("x")
    assert np.allclose(keys.poll(0.3, last).command, 0.0)
    last = np.array([0.5, 0.5, 0.5], np.float32)
    keys.feed(" ")
    assert not keys.poll(0.4, last).active
    keys.feed("\x1b[D")  # a direction key takes over too
    assert np.allclose(keys.poll(0.5, last).command, [0.4, 0.5, 0.5])
    keys.feed("?z")
    assert keys.ignored == 2
    keys.feed("g")
    assert episodes.tick({"state": np.zeros(6, np.float32)}, 0.6, None).started
    keys.feed("s")
    end = episodes.tick({"state": np.zeros(6, np.float32)}, 0.7, None).ended
    assert end.outcome == "success" and end.ended_by == "operator" and episodes.refused.total() == 0
    assert "episode 1" in keys.status_line() and "YOU" in keys.status_line()


def test_a_keyboard_lost_mid_intervention_holds():
    keys = KeyboardOperator(2)
    keys.feed(" ")
    assert keys.poll(0.0, None).command is not None
    keys.lose("the terminal closed")
    person = keys.poll(0.1, None)
    assert person.active and person.holds and person.lost == "the terminal closed"
