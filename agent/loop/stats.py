"""What the loop measures about itself: tick jitter, deadline misses, latencies, holds."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


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
    jitter_s: list[float] = field(default_factory=list)  # actual - scheduled tick start
    tick_work_s: list[float] = field(default_factory=list)
    obs_to_action_s: list[float] = field(default_factory=list)
    inference_s: list[float] = field(default_factory=list)
    joins: list[float] = field(default_factory=list)  # |a_t - a_{t-1}| (inf-norm) at chunk handovers
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
            "jitter_p50_ms": 1e3 * _pct(self.jitter_s, 50),
            "jitter_p99_ms": 1e3 * _pct(self.jitter_s, 99),
            "jitter_max_ms": 1e3 * max(self.jitter_s, default=float("nan")),
            "tick_work_p99_ms": 1e3 * _pct(self.tick_work_s, 99),
            # a miss with a short worst tick is the clock woken late; a long one, the tick's own work
            "tick_work_max_ms": 1e3 * max(self.tick_work_s, default=float("nan")),
            "obs_to_action_p50_ms": 1e3 * _pct(self.obs_to_action_s, 50),
            "inference_p50_ms": 1e3 * _pct(self.inference_s, 50),
            "inference_p99_ms": 1e3 * _pct(self.inference_s, 99),
            "max_join_jump": max(self.joins, default=0.0),
            "last_failure": self.last_failure,
            "realtime": self.realtime,
            "realtime_refused": self.realtime_refused,
            "gc_collections": list(self.gc_collections),
            "gc_pause_max_ms": 1e3 * self.gc_pause_max_s,
        }
