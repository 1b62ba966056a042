"""ROS time vs monotonic time: how old a message is, and when it was taken on this machine's clock.

A message's ``header.stamp`` is ROS time (wall clock, or simulation time under ``use_sim_time``)
on the machine that took it. The control loop measures freshness on ``time.monotonic()``. So each
message's age is computed once, on arrival, on the node's own ROS clock (``now - stamp``), and
its monotonic time is ``monotonic_now - age``. Messages older than ``max_age_s`` are dropped and
counted; an unstamped message (stamp zero) is taken as made on arrival and counted; a stamp from
the future (clock skew between machines) is counted and taken as age zero. A stamp off by far more
than any network delay means two clocks disagree (``use_sim_time`` set on one side only): that is
logged once per topic, naming the likely cause.
"""

from __future__ import annotations

import collections
import logging
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

#: Stamps further off than this (either way) mean two different clocks, not a slow network.
CLOCK_MISMATCH_S = 3600.0
#: Future stamps closer than this are ordinary clock jitter, not counted as skew.
FUTURE_TOLERANCE_S = 0.005


def stamp_ns(stamp) -> int:
    """Nanoseconds of a ``builtin_interfaces/Time``."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


@dataclass
class MessageAges:
    """Per-topic freshness bookkeeping: ``accept`` gives a message's monotonic time or drops it."""

    max_age_s: float
    dropped_stale: collections.Counter = field(default_factory=collections.Counter)
    unstamped: collections.Counter = field(default_factory=collections.Counter)
    future_stamps: collections.Counter = field(default_factory=collections.Counter)
    _warned: set = field(default_factory=set)

    def accept(self, topic: str, stamp_nanoseconds: int, now_ros_ns: int, now_mono: float) -> float | None:
        """The monotonic time at which the message was taken, or ``None`` if it is too old."""
        if stamp_nanoseconds == 0:
            self.unstamped[topic] += 1
            return now_mono
        age = (now_ros_ns - stamp_nanoseconds) * 1e-9
        if abs(age) > CLOCK_MISMATCH_S and topic not in self._warned:
            self._warned.add(topic)
            log.warning(
                "messages on %s are stamped %.0f s %s this node's clock: the publisher and this node "
                "use different clocks (is use_sim_time set on only one of them?)",
                topic, abs(age), "behind" if age > 0 else "ahead of",
            )
        if age < -FUTURE_TOLERANCE_S:
            self.future_stamps[topic] += 1
            age = 0.0
        if age > self.max_age_s:
            self.dropped_stale[topic] += 1
            return None
        return now_mono - max(age, 0.0)

    def counters(self) -> dict[str, int]:
        """Totals for health reports: stale drops, unstamped and future-stamped messages."""
        return {"dropped_stale": sum(self.dropped_stale.values()),
                "unstamped": sum(self.unstamped.values()),
                "future_stamps": sum(self.future_stamps.values())}
