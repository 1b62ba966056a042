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


def tiny_vla_latency(calls: int) -> dict:
    """The tiny VLA's ``act`` on one 96x96 frame, one thread (the inference thread's budget)."""
    import numpy as np
    import torch

    from bench.vla_latency import _observation, measure
    from policies.vla import VLAPolicy, tiny_vla

    torch.set_num_threads(1)
    model = tiny_vla(state_dim=20, action_dim=2, chunk_size=8, seed=0)
    obs = _observation(np.random.default_rng(0), model.config.image_size, 20)
    return measure(VLAPolicy(model), obs, calls, warmup=5)


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
    results["tiny_vla_latency"] = tiny_vla_latency(calls=20 if args.quick else 200)
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
    vla = results["tiny_vla_latency"]
    print_table(
        "tiny VLA inference (1 thread, 96x96)",
        ["median ms", "p99 ms", "calls"],
        [[vla["median_ms"], vla["p99_ms"], vla["calls"]]],
    )
    write_json(args.json, {**results, "_meta": {"quick": args.quick, "ticks": ticks, **machine()}})
    return results


if __name__ == "__main__":
    main()
