"""A person at the controls: their command in place of the policy's, tick by tick.

The ``ControlLoop`` polls its ``InterventionSource`` every tick and, while a person has taken over,
hands the tick here: their command goes through ``robot.act`` (clamped like any action) and the
tick is flagged ``intervened``; a source gone quiet, or a command the robot refuses, holds the
robot. What happened is counted in ``stats`` (``InterventionStats``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from agent.loop.ticks import TickRecord
from agent.operator.episodes import EpisodeController, EpisodeEnd
from agent.operator.intervention import InterventionStats
from hal.robot import Robot, RobotError
from policies.base import Observation

log = logging.getLogger(__name__)


class Takeover:
    """Sends a person's commands to ``robot`` and counts takeovers, lost and refused commands."""

    def __init__(self, robot: Robot, episodes: EpisodeController | None = None) -> None:
        self.robot, self.episodes = robot, episodes
        self.stats = InterventionStats()

    def note(self, person: Any, phase: str) -> None:
        """What the intervention source said this tick (``person``: its poll), taken over or not."""
        st = self.stats
        if person.active and not st.active:
            st.takeovers += 1
            log.info("a person took over (%s)", "holding: " + person.lost if person.lost else "driving")
        elif st.active and not person.active:
            log.info("the person released the robot to the policy")
        st.active = person.active
        if self.episodes is not None and phase == "running":
            self.episodes.note_intervention(person.active)

    def drive(self, tick: int, obs: Observation, person: Any, phase: str, ended: EpisodeEnd | None,
              episode: int) -> TickRecord:
        """Send the person's command (clamped by the robot). The record is ``held`` when their source
        went quiet or the robot refused the command: the loop then holds the robot."""
        st = self.stats
        st.ticks += 1
        if person.command is None:
            st.lost_ticks += 1
            st.last_problem = f"intervention lost: {person.lost}"
            return TickRecord(tick, obs, None, None, True, "intervention lost", episode, intervened=True,
                              phase=phase, ended=ended)
        command = np.asarray(person.command, np.float32)
        try:
            sent = self.robot.act(command)
        except (ValueError, RobotError) as e:  # a wrong width or a NaN that got through: refuse, hold
            st.refused += 1
            st.last_problem = f"intervention command refused: {e}"
            log.warning("%s (%d so far)", st.last_problem, st.refused)
            return TickRecord(tick, obs, None, None, True, "intervention refused", episode,
                              intervened=True, phase=phase, ended=ended)
        if command.shape == sent.shape and not np.array_equal(command, sent):
            st.clamped += 1
            if st.clamped == 1 or st.clamped % 100 == 0:
                log.warning("intervention command clamped by the robot's limits (%d so far): %s -> %s",
                            st.clamped, np.round(command, 4).tolist(), np.round(sent, 4).tolist())
        return TickRecord(tick, obs, sent, None, False, episode=episode, intervened=True, phase=phase,
                          ended=ended)
