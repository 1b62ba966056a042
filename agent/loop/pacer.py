"""``Pacer``: keeps a loop on a fixed period and counts the deadlines it misses.

Each tick waits for its slot (sleeping, then spinning the last fraction of a millisecond), does its
work, and ends. A tick whose work ran into the next tick's slot is a deadline miss; whole slots it
overran cannot happen on time and are skipped (each counted as a miss), so a loop that fell behind
does not try to catch up with a burst of late ticks. The control loop and the stepping loop of an
actor on a gymnasium env share it.
"""

from __future__ import annotations

import time


class Pacer:
    def __init__(self, period_s: float) -> None:
        if not period_s > 0:
            raise ValueError(f"Pacer period must be > 0 s, got {period_s!r}")
        self.period_s = float(period_s)
        self.deadline_misses = 0
        self.scheduled = time.monotonic()

    def restart(self) -> None:
        """The next tick's slot is now."""
        self.scheduled = time.monotonic()

    def wait(self) -> float:
        """Wait for this tick's slot; returns how late it began (the tick's jitter, seconds)."""
        sleep_until(self.scheduled)
        return time.monotonic() - self.scheduled

    def end_tick(self) -> int:
        """Close the tick: book the next slot; returns the whole slots skipped after an overrun."""
        self.scheduled += self.period_s
        overrun = time.monotonic() - self.scheduled
        if overrun <= 0:
            return 0
        self.deadline_misses += 1
        skipped = int(overrun // self.period_s)
        self.deadline_misses += skipped
        self.scheduled += skipped * self.period_s
        return skipped


def sleep_until(deadline: float) -> None:
    """Sleep to ``deadline`` (monotonic), spinning the last fraction of a millisecond."""
    remaining = deadline - time.monotonic()
    if remaining > 0.0005:
        time.sleep(remaining - 0.0004)
    while time.monotonic() < deadline:
        pass
