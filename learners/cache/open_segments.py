"""How many sealed segments a log keeps open for reading at once.

Every open segment holds a file descriptor and a memory map. A log of a few hundred segments keeps
them all open; past ``limit``, the least recently read sealed segments are released as others are
read, and reopen on their next read (without their digest check again: it passed once).
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from learners.cache.segment import Segment


class OpenSegmentBudget:
    """At most ``limit`` sealed segments open for reading, least recently read first out."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._recent: OrderedDict[int, Segment] = OrderedDict()  # base -> segment, oldest read first
        self._lock = threading.Lock()
        self._last: Segment | None = None

    def over(self, segments: int) -> bool:
        """Whether a log of ``segments`` segments must count what it opens."""
        return segments > self.limit

    def touch(self, segment: Segment, segments: list[Segment]) -> None:
        """``segment`` (sealed) is being read; release the least recently read one past the limit.
        ``segments`` is the log's list: what is open already counts when counting starts."""
        if self._last is segment:  # reading on in the same segment: nothing to do
            return
        recent = self._recent
        with self._lock:
            if not recent:  # just past the limit: what is open already counts too
                for other in segments:
                    if other.sealed and other.is_open:
                        recent[other.base] = other
            self._last = segment
            recent[segment.base] = segment
            recent.move_to_end(segment.base)
            oldest = recent.popitem(last=False)[1] if len(recent) > self.limit else None
        if oldest is not None:
            oldest.release()

    def forget(self, segment: Segment) -> None:
        """``segment`` is leaving the log (retention)."""
        with self._lock:
            self._recent.pop(segment.base, None)
            self._last = None
