"""bench.loop keeps working (CI runs its --quick mode; no timings asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_loop_bench_quick(tmp_path):
    out = tmp_path / "loop.json"
    subprocess.run(
        [sys.executable, "-m", "bench.loop", "--quick", "--json", str(out)],
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=600,
        env={**os.environ, "MUJOCO_GL": "egl"},
    )
    data = json.loads(out.read_text())
    for name in ("async_blend", "async_naive", "sync_naive"):
        assert data[name]["ticks"] == 150 and data[name]["chunks"] > 0
    assert data["tiny_vla_latency"]["calls"] == 20 and data["tiny_vla_latency"]["median_ms"] > 0


def test_loop_bench_quick_with_the_shipped_vla_beside_a_busy_learner(tmp_path):
    """With two CPUs, as the bench's headline runs: the clock owns CPU 1 (the policy process and
    the learner on the other). One rate: 100 Hz goes through the same code (the headline runs both)."""
    out = tmp_path / "loop-vla.json"
    cpus = sorted(os.sched_getaffinity(0))
    pinned = []
    if len(cpus) > 1:
        pinned = ["--inference", "process", "--cpu", str(cpus[-1]), "--learner-cpu", str(cpus[0])]
    subprocess.run(
        [sys.executable, "-m", "bench.loop", "--quick", "--vla", "--with-learner", "--hz", "50",
         "--spin-floor", *pinned, "--json", str(out)],
        cwd=REPO, check=True, capture_output=True, timeout=600, env={**os.environ, "MUJOCO_GL": "egl"},
    )
    data = json.loads(out.read_text())
    suffix = "_process_with_learner_rt_pinned" if pinned else "_with_learner"
    assert f"vla_100hz{suffix}" not in data
    name = f"vla_50hz{suffix}"
    assert data[name]["ticks"] == 150 and data[name]["chunks"] > 0 and data[name]["inference_p50_ms"] > 0
    bare = data[f"{name}_bare_clock"]  # the same clock with no work, for the same ticks
    assert bare["ticks"] == 150 and bare["jitter_max_ms"] >= bare["jitter_p99_ms"] >= 0
    assert data[name]["worst_start_over_bare_clock"] >= 0
    floor = data[f"{name}_spin_floor"]  # a thread that never sleeps, for as long as the loop ran
    assert floor["seconds"] == 150 / 50.0
    assert floor["lost_max_ms"] >= 0 and floor["lost_over_1ms"] >= floor["lost_over_3ms"] >= 0
    if pinned:
        assert data[name]["realtime"] == bare["realtime"] == floor["realtime"] == f"on CPUs [{cpus[-1]}]"
