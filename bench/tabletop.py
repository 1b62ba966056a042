"""Tabletop simulation speed: control ticks per second with and without offscreen rendering.

    MUJOCO_GL=egl python -m bench.tabletop [--quick] [--json OUT]

Rows: the gymnasium env stepped with pre-drawn random actions (state only; the Dict observation
without cameras; with the front camera at 96x96; with front and top), and the ``sim-tabletop``
robot driven through ``act()`` + ``observe()`` (its validation and copies included), camera on.
Each rate is total ticks over total time, episodes reset as they end. A 50 Hz control loop needs
50 ticks/s per robot; the rest is headroom for learning faster than real time.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.common import machine, print_table, write_json

VARIANTS = {
    "state only (no rendering)": {"obs_mode": "state"},
    "dict, no camera": {"obs_mode": "dict", "cameras": ()},
    "dict, front 96x96": {"obs_mode": "dict", "cameras": ("front",)},
    "dict, front + top 96x96": {"obs_mode": "dict", "cameras": ("front", "top")},
}


def env_rate(kwargs: dict, ticks: int, task: str = "push") -> float:
    from sim.tabletop.env import TabletopEnv

    env = TabletopEnv(task=task, **kwargs)
    env.reset(seed=0)
    actions = np.random.default_rng(0).uniform(-1, 1, (ticks, 2)).astype(np.float32)
    env.step(actions[0])  # the renderer is made on first use
    start = time.perf_counter()
    for i, a in enumerate(actions):
        _, _, terminated, _, _ = env.step(a)
        if terminated or i % 250 == 249:
            env.reset()
    rate = ticks / (time.perf_counter() - start)
    env.close()
    return rate


def robot_rate(ticks: int) -> float:
    from hal.config import RobotConfig
    from hal.registry import make_robot
    from sim.tabletop.robot import TabletopRobot  # noqa: F401  registers sim-tabletop

    robot = make_robot(RobotConfig("bench", "sim-tabletop", {"watchdog_timeout_s": None}))
    actions = np.random.default_rng(0).uniform(-1, 1, (ticks, 2)).astype(np.float32)
    with robot:
        start = time.perf_counter()
        for a in actions:
            robot.act(a)
            robot.observe()
        return ticks / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few hundred ticks per row (CI)")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    ticks = 200 if args.quick else 3000
    results = {name: round(env_rate(kwargs, ticks), 1) for name, kwargs in VARIANTS.items()}
    results["robot act+observe, front 96x96"] = round(robot_rate(ticks // 2), 1)
    print_table(f"tabletop ticks/s ({ticks} ticks, MUJOCO_GL={os.environ['MUJOCO_GL']})",
                ["variant", "ticks/s", "x real time at 50 Hz"],
                [[k, v, v / 50.0] for k, v in results.items()])
    payload = {"ticks_per_s": results, "_meta": {**machine(), "quick": args.quick, "ticks": ticks,
                                                 "mujoco_gl": os.environ["MUJOCO_GL"]}}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
