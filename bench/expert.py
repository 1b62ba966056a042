"""The scripted tabletop expert's success rate: the ceiling a learned tabletop policy is measured against.

    MUJOCO_GL=egl python -m bench.expert [--quick] [--json OUT] [--episodes N] [--seed S] [--noise X]

``agent.experts.tabletop.TabletopExpert`` drives ``rill/TabletopReach-v0`` (150 steps) and
``rill/TabletopPush-v0`` (250 steps) with the default three blocks, from the observation alone
(state and instruction), on held-out seeded episodes ``S, S + 1, ...`` (default 100 each from
10,000; ``--quick``: 5). No camera is rendered: the expert does not look. Per task: the success
rate, the mean episode length (a failure counts the full time limit) and the mean length of the
successful ones; the JSON also lists the seeds that failed.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from bench.common import machine, print_table, write_json

TASKS = {"reach": "rill/TabletopReach-v0", "push": "rill/TabletopPush-v0"}
SEED = 10_000


def run_task(env_id: str, episodes: int, seed: int, noise: float = 0.0) -> dict:
    import gymnasium as gym

    import sim.tasks  # noqa: F401  registers the rill/ ids
    from agent.experts.tabletop import TabletopExpert

    env = gym.make(env_id, cameras=(), disable_env_checker=True)
    expert = TabletopExpert(colors=env.unwrapped.colors, noise=noise, seed=seed)
    lengths, successes, failed = [], [], []
    start = time.perf_counter()
    for episode_seed in range(seed, seed + episodes):
        obs, info = env.reset(seed=episode_seed)
        steps, done = 0, False
        while not done:
            obs, _, terminated, truncated, info = env.step(expert(obs))
            steps += 1
            done = terminated or truncated
        lengths.append(steps)
        successes.append(bool(info["success"]))
        if not info["success"]:
            failed.append(episode_seed)
    env.close()
    ok = [n for n, s in zip(lengths, successes) if s]
    return {
        "env": env_id,
        "episodes": episodes,
        "seeds": [seed, seed + episodes - 1],
        "success_rate": round(float(np.mean(successes)), 4),
        "mean_length": round(float(np.mean(lengths)), 1),
        "mean_length_success": round(float(np.mean(ok)), 1) if ok else None,
        "time_limit": int(env.spec.max_episode_steps),
        "failed_seeds": failed,
        "wall_s": round(time.perf_counter() - start, 2),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 episodes per task (CI)")
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--episodes", type=int, help="episodes per task (default 100; --quick: 5)")
    parser.add_argument("--seed", type=int, default=SEED, help=f"first episode seed (default {SEED:,})")
    parser.add_argument("--noise", type=float, default=0.0, help="the expert's action noise (default 0)")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")
    episodes = args.episodes if args.episodes is not None else (5 if args.quick else 100)
    if episodes < 1:
        parser.error(f"--episodes must be >= 1, got {episodes}")
    results = {task: run_task(env_id, episodes, args.seed, args.noise) for task, env_id in TASKS.items()}
    title = f"tabletop expert, {episodes} episodes per task from seed {args.seed:,} (noise {args.noise:g})"
    print_table(title,
                ["task", "success %", "mean length", "mean length (successes)", "time limit", "wall s"],
                [[task, 100.0 * r["success_rate"], r["mean_length"], r["mean_length_success"] or "-",
                  r["time_limit"], r["wall_s"]] for task, r in results.items()])
    payload = {"tasks": results, "_meta": {**machine(), "quick": args.quick, "episodes": episodes,
                                           "seed": args.seed, "noise": args.noise,
                                           "mujoco_gl": os.environ["MUJOCO_GL"]}}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
