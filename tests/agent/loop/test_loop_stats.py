"""The loop's measurements keep a bounded window for percentiles and the largest value ever, so a
loop that runs for days does not grow by every tick it made."""

from __future__ import annotations

import math

import numpy as np

from agent.loop.stats import LoopStats, Samples


def test_samples_keep_the_last_values_and_the_largest_ever():
    samples = Samples(keep=5)
    assert len(samples) == 0 and not samples and math.isnan(samples.percentile(50))
    assert math.isnan(samples.max()) and samples.max(default=0.0) == 0.0
    for value in [9.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]:
        samples.append(value)
    assert samples.count == 7 and len(samples) == 5
    assert samples.recent().tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]  # oldest first
    assert samples.max() == 9.0  # the largest ever, though no longer kept
    assert samples.percentile(50) == 4.0 and samples.percentile(100) == 6.0


def test_a_long_run_keeps_bounded_memory_and_the_summary_reads_it():
    stats = LoopStats()
    rng = np.random.default_rng(0)
    values = rng.random(250_000) * 1e-3
    values[10] = 0.05  # one late tick early in the run
    for value in values:
        stats.jitter_s.append(float(value))
    assert len(stats.jitter_s) == 100_000 and stats.jitter_s.count == 250_000
    summary = stats.summary()
    assert summary["jitter_max_ms"] == 50.0  # kept although it left the window
    assert abs(summary["jitter_p50_ms"] - 1e3 * float(np.median(values[-100_000:]))) < 1e-9
    assert math.isnan(summary["inference_p50_ms"]) and summary["max_join_jump"] == 0.0
