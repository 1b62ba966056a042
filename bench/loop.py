"""The control loop under a slow policy, asynchronous against synchronous, in one run.

    python -m bench.loop [--quick] --json OUT

A simulated MuJoCo robot (``sim-mujoco``, Hopper-v5, one physics step per command) ticks at 50 Hz
driven by a policy that takes 60 ms per 25-action chunk and re-plans each chunk with a small
offset. Reported per loop: deadline misses, tick jitter (p50/p99/max), holds, and the largest
action jump at chunk joins (linear blending against naive switching).
"""

from __future__ import annotations

import argparse

from bench.common import machine, print_table, write_json


def run_loop(asynchronous: bool, blend: str, ticks: int, latency_s: float) -> dict:
    import torch

    from agent.loop import ControlLoop, LoopConfig
    from agent.testing.policies import ReplanningPolicy
    from sim.robots import MujocoRobot, MujocoRobotConfig

    torch.set_num_threads(1)
    robot = MujocoRobot(
        "bench-hopper", MujocoRobotConfig(env_id="Hopper-v5", max_delta=None, watchdog_timeout_s=0.5)
    )
    policy = ReplanningPolicy(robot.action_spec.dim, chunk_size=25, period_s=0.02, latency_s=latency_s)
    loop = ControlLoop(robot, policy, LoopConfig(control_hz=50, asynchronous=asynchronous, blend=blend))
    with robot:
        stats = loop.run(ticks=ticks)
    return stats.summary()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json")
    parser.add_argument("--latency-ms", type=float, default=60.0)
    args = parser.parse_args(argv)
    ticks = 150 if args.quick else 1500
    lat = args.latency_ms / 1e3
    results = {
        "async_blend": run_loop(True, "linear", ticks, lat),
        "async_naive": run_loop(True, "none", ticks, lat),
        "sync_naive": run_loop(False, "none", ticks, lat),
    }
    try:
        from bench.vla_latency import measure as vla_measure  # lands with the VLA
    except ImportError:
        vla_measure = None
    if vla_measure is not None:
        results["tiny_vla_latency"] = vla_measure(quick=args.quick)
    cols = [
        "ticks",
        "deadline_misses",
        "holds",
        "jitter_p50_ms",
        "jitter_p99_ms",
        "jitter_max_ms",
        "inference_p50_ms",
        "max_join_jump",
    ]
    rows = [
        [name, *[r[c] if isinstance(r[c], int) else f"{r[c]:.3f}" for c in cols]]
        for name, r in results.items()
        if name != "tiny_vla_latency"
    ]
    print_table(f"50 Hz control, policy {args.latency_ms:.0f} ms per chunk", ["loop", *cols], rows)
    write_json(args.json, {**results, "_meta": {"quick": args.quick, "ticks": ticks, **machine()}})
    return results


if __name__ == "__main__":
    main()
