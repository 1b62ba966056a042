"""``TickRecord``: what one control tick did, as the ``ControlLoop`` hands it to ``on_tick``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agent.operator.episodes import EpisodeEnd
from policies.base import ActionChunk, Observation


@dataclass
class TickRecord:
    """What one tick did. ``action`` is what the robot was sent (after its clamping), or None."""

    tick: int
    observation: Observation
    action: np.ndarray | None
    chunk: ActionChunk | None  # the chunk the action came from (the newest installed)
    held: bool  # nothing was sent this tick (``reason`` says why)
    reason: str = ""  # why the robot held: "no chunk", "stale observation", "policy failing", ...
    episode: int = 0
    intervened: bool = False  # a person's command was sent (or, held: their source went quiet)
    phase: str = "running"  # the EpisodeController's phase: running | resetting | waiting
    ended: EpisodeEnd | None = None  # the episode that ended on this tick (with an EpisodeController)

    @property
    def episode_end(self) -> bool:
        return self.ended is not None or ended_in(self.observation)


def ended_in(observation: Observation) -> bool:
    """Whether the robot reports its episode over in ``observation``."""
    return bool(observation.get("terminated", False) or observation.get("truncated", False))
