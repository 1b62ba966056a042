"""The operator's words: an event for a named episode, parsed strictly and refused by name.

On ROS an event is a ``std_msgs/String`` holding JSON, ``{"episode": 3, "event": "success"}``; from a
keyboard it is made directly. ``start`` names the episode to start (the one the published state
says is next); the others name the episode under way (``reset`` and ``stop`` also the one just
ended, while it resets or waits).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

EVENTS = ("start", "stop", "success", "failure", "reset")


class OperatorEventError(ValueError):
    """An operator message that cannot be acted on: not JSON, an unknown event, an unknown episode."""


@dataclass(frozen=True)
class OperatorEvent:
    event: str
    episode: int
    source: str = "operator"  # who said it: "operator" (topic), "keyboard"

    def __post_init__(self) -> None:
        if self.event not in EVENTS:
            raise OperatorEventError(f"unknown operator event {self.event!r}; known: {', '.join(EVENTS)}")
        if type(self.episode) is not int or self.episode < 0:
            raise OperatorEventError(f"operator event {self.event!r}: episode must be a non-negative "
                                     f"integer, got {self.episode!r}")

    @classmethod
    def parse(cls, text: str, source: str = "operator") -> OperatorEvent:
        """The event a JSON message holds; ``OperatorEventError`` saying what is wrong with it."""
        try:
            data: Any = json.loads(text)
        except (TypeError, ValueError) as e:
            raise OperatorEventError(f"operator message is not JSON ({e}): {str(text)[:80]!r}") from None
        if not isinstance(data, dict):
            raise OperatorEventError(f"operator message must be a JSON object, got {str(text)[:80]!r}")
        unknown = sorted(set(data) - {"event", "episode"})
        if unknown:
            raise OperatorEventError(f"operator message has unknown keys {unknown} "
                                     "(expected 'event', 'episode')")
        if "event" not in data or "episode" not in data:
            raise OperatorEventError(f"operator message must name an 'event' and an 'episode', got {data!r}")
        return cls(str(data["event"]), data["episode"], source)

    def to_json(self) -> str:
        return json.dumps({"episode": self.episode, "event": self.event})
