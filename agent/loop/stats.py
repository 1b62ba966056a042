"""What the loop measures about itself: tick jitter, deadline misses, latencies, holds."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

#: Values each measurement keeps for its percentiles: a loop that runs for days at 100 Hz keeps
#: the last ~17 minutes of ticks (800 kB a measurement), not every tick since it started.
KEEP = 100_000


class Samples:
    """One measurement's recent values (the last ``keep``, for percentiles), how many there were
    and the largest ever. ``append`` is all the control thread does: a store in a preallocated
    array."""

    def __init__(self, keep: int = KEEP) -> None:
        self._values = np.empty(keep, dtype=np.float64)
        self.count = 0
        self.largest = -math.inf

    def append(self, value: float) -> None:
        self._values[self.count % len(self._values)] = value
        self.count += 1
        if value > self.largest:
            self.largest = value

    def __len__(self) -> int:
        """How many values are kept now (at most ``keep``)."""
        return min(self.count, len(self._values))

    def recent(self) -> np.ndarray:
        """The values kept, oldest first."""
        n, keep = len(self), len(self._values)
        if self.count <= keep:
            return self._values[:n].copy()
        start = self.count % keep
        return np.concatenate([self._values[start:], self._values[:start]])

    def percentile(self, q: float) -> float:
        """Over the values kept; NaN before the first."""
        return float(np.percentile(self._values[: len(self)], q)) if self.count else float("nan")

    def max(self, default: float = float("nan")) -> float:
        """The largest value ever appended (kept or not), ``default`` before the first."""
        return self.largest if self.count else default


@dataclass
class LoopStats:
    ticks: int = 0
    deadline_misses: int = 0  # ticks that started later than one period after their schedule
    holds: int = 0  # ticks with no action to execute: the robot held position
    stale_observations: int = 0
    bad_observations: int = 0  # observations the robot refused as invalid (wrong shape, no data...)
    policy_failures: int = 0
    chunks: int = 0
    late_chunks: int = 0  # chunks that arrived after every one of their actions was due
    # Per-tick and per-chunk measurements (the last ``KEEP`` of each for percentiles, the largest ever):
    jitter_s: Samples = field(default_factory=Samples)  # actual - scheduled tick start
    tick_work_s: Samples = field(default_factory=Samples)
    obs_to_action_s: Samples = field(default_factory=Samples)
    inference_s: Samples = field(default_factory=Samples)
    joins: Samples = field(default_factory=Samples)  # |a_t - a_{t-1}| (inf-norm) at chunk handovers
    last_failure: str = ""
    realtime: str = ""  # the clock thread's scheduling, if asked for: "SCHED_FIFO 50 on CPUs [1]"
    realtime_refused: str = ""  # what of it the system refused, and why
    gc_collections: list[int] = field(default_factory=lambda: [0, 0, 0])  # per generation, any thread
    gc_pause_max_s: float = 0.0  # the longest garbage collection while the loop ran (it holds the GIL)

    def summary(self) -> dict:
        return {
            "ticks": self.ticks,
            "deadline_misses": self.deadline_misses,
            "holds": self.holds,
            "stale_observations": self.stale_observations,
            "bad_observations": self.bad_observations,
            "policy_failures": self.policy_failures,
            "chunks": self.chunks,
            "late_chunks": self.late_chunks,
            "jitter_p50_ms": 1e3 * self.jitter_s.percentile(50),
            "jitter_p99_ms": 1e3 * self.jitter_s.percentile(99),
            "jitter_max_ms": 1e3 * self.jitter_s.max(),
            "tick_work_p99_ms": 1e3 * self.tick_work_s.percentile(99),
            # a miss with a short worst tick is the clock woken late; a long one, the tick's own work
            "tick_work_max_ms": 1e3 * self.tick_work_s.max(),
            "obs_to_action_p50_ms": 1e3 * self.obs_to_action_s.percentile(50),
            "inference_p50_ms": 1e3 * self.inference_s.percentile(50),
            "inference_p99_ms": 1e3 * self.inference_s.percentile(99),
            "max_join_jump": self.joins.max(default=0.0),
            "last_failure": self.last_failure,
            "realtime": self.realtime,
            "realtime_refused": self.realtime_refused,
            "gc_collections": list(self.gc_collections),
            "gc_pause_max_ms": 1e3 * self.gc_pause_max_s,
        }
