"""``drive_episodes``: a policy drives a robot through the ``ControlLoop`` for whole episodes.

One driver for everything that runs a policy episode by episode outside a learning job: recording
demonstrations, evaluating a pretrained policy, benchmarks. A robot that advances only when sent
an action (``Robot.stepped``, a stepped simulator) is ticked as fast as it goes, the policy
running inside the tick; any other robot, or a policy that must run in real time (a person at the
teleop: ``policy.real_time``), is ticked at its control rate with inference on its own thread.
``on_tick`` sees every tick's record; the robot says when an episode ends.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from agent.loop.config import LoopConfig
from agent.loop.control import ControlLoop, TickRecord
from hal.robot import Robot
from policies.base import Policy

log = logging.getLogger(__name__)


@dataclass
class EpisodeOutcome:
    ticks: int
    success: bool
    holds: int
    final: dict = field(repr=False, default_factory=dict)  # the observation that ended it


def drive_episodes(robot: Robot, policy: Policy, episodes: int | Callable[[], bool], *,
                   on_tick: Callable[[TickRecord], bool | None] | None = None,
                   loop_config: LoopConfig | None = None, max_ticks: int | None = None,
                   ) -> tuple[ControlLoop, list[EpisodeOutcome]]:
    """Drive the connected ``robot`` with ``policy`` from a fresh episode until ``episodes``
    episodes ended (or ``episodes()`` says done, for a caller counting its own), or ``max_ticks``.

    ``on_tick`` may return True to cut the episode short (e.g. its source failed): the robot is
    reset and that episode is not among the outcomes. Returns the loop (its ``stats``) and one
    outcome per episode the robot ended.
    """
    stepped = robot.stepped and not getattr(policy, "real_time", False)
    config = loop_config or LoopConfig(control_hz=robot.control_hz)
    if stepped:  # no clock to keep: the policy runs inside the tick, the simulator waits for it
        config = dataclasses.replace(config, asynchronous=False, paced=False)
    outcomes: list[EpisodeOutcome] = []
    started = {"episode": 0, "tick": 0, "holds": 0}  # where the loop's current episode began

    def done() -> bool:
        return episodes() if callable(episodes) else len(outcomes) >= episodes

    def tick(record: TickRecord) -> None:
        if record.episode != started["episode"]:  # a new one (after an end, or one the caller cut)
            started.update(episode=record.episode, tick=record.tick, holds=loop.stats.holds - record.held)
        if on_tick is not None and on_tick(record) and not record.episode_end:
            loop.new_episode()
            return
        if record.episode_end:
            outcomes.append(EpisodeOutcome(record.tick + 1 - started["tick"],
                                           bool(record.observation.get("success", False)),
                                           loop.stats.holds - started["holds"], record.observation))

    loop = ControlLoop(robot, policy, config, on_tick=tick)
    limit = max_ticks if max_ticks is not None else 10**9
    robot.reset()
    try:
        loop.run(ticks=limit, should_stop=done)
    finally:
        robot.hold("episodes done")
    if not done():
        log.warning("stopped after %d ticks (the limit) with %d episodes ended", loop.stats.ticks,
                    len(outcomes))
    return loop, outcomes
