"""What an intervention source tells the control loop, tick by tick.

A person takes over from the policy with a teleop device (a leader arm, a joystick, a
spacemouse: ``agent/ros/intervention.py``) or a keyboard (``keyboard.py``). Each tick the
``ControlLoop`` asks its source ``poll(now, last_sent)``:

- not ``active``: the policy acts;
- ``active`` with a ``command``: the command is sent through ``robot.act`` (so the robot's limits
  and per-tick delta clamp it), and the tick is flagged ``intervened``;
- ``active`` without a command (``lost``: the device went quiet mid-intervention): the robot
  holds ("intervention lost") until the device speaks again or the person releases.

``last_sent`` is what the robot was last sent: a source that nudges (the keyboard) starts its
command there, so a takeover begins where the robot is. ``poll`` runs on the control thread and
must not block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Intervention:
    """One tick's word from an intervention source."""

    active: bool = False
    command: np.ndarray | None = None
    lost: str = ""  # why an active intervention has no command ("" when it has one)

    @property
    def holds(self) -> bool:
        return self.active and self.command is None


NONE = Intervention()


class InterventionSource(Protocol):
    """Anything that can take over from the policy (see the module docstring)."""

    def poll(self, now: float, last_sent: np.ndarray | None) -> Intervention: ...


@dataclass
class InterventionStats:
    """What interventions did in a loop's life: ticks a person drove, takeovers, ticks held because
    the source went quiet mid-intervention, commands the robot clamped, commands it refused."""

    ticks: int = 0
    takeovers: int = 0
    lost_ticks: int = 0
    clamped: int = 0
    refused: int = 0
    last_problem: str = ""
    active: bool = False

    def summary(self) -> dict:
        return {"ticks": self.ticks, "takeovers": self.takeovers, "lost_ticks": self.lost_ticks,
                "clamped": self.clamped, "refused": self.refused, "active": self.active,
                "last_problem": self.last_problem}
