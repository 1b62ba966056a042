"""``LogThrottle``: one line per repeated event per interval, not one per occurrence.

A misconfigured peer repeats the same refused message several times a second (an actor whose hello
the learner refuses resends it every half second); logging each would bury everything else. Both
ends of the link say the first occurrence of each kind of event at once, then at most once every
``every_s`` seconds, with the count of those left unsaid in between.
"""

from __future__ import annotations

import time
from collections.abc import Hashable

LOG_EVERY_S = 30.0  # a repeated refusal is said this often


class LogThrottle:
    """Decides whether an event with ``key`` is logged now. Not thread-safe: one owner thread."""

    def __init__(self, every_s: float = LOG_EVERY_S, max_keys: int = 1024) -> None:
        self.every_s = float(every_s)
        self.max_keys = int(max_keys)
        self._said: dict[Hashable, list[float]] = {}  # key -> [when last said, occurrences unsaid since]

    def due(self, key: Hashable, now: float | None = None) -> int | None:
        """``None`` when this occurrence is to stay unsaid (it is counted); otherwise how many
        occurrences of ``key`` went unsaid since it was last said (0 for a first one)."""
        now = time.monotonic() if now is None else now
        said = self._said.get(key)
        if said is not None and now - said[0] < self.every_s:
            said[1] += 1
            return None
        if said is None and len(self._said) >= self.max_keys:  # many peers: forget who was said when
            self._said.clear()
        self._said[key] = [now, 0.0]
        return 0 if said is None else int(said[1])
