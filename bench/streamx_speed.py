"""Stream-x training speed against the simulator's own step rate, in one run, one thread.

    python -m bench.streamx_speed [--quick] [--env Hopper-v5 ...] --json OUT

Per environment: the raw ``env.step`` rate with pre-drawn random actions (the physical limit of a
one-env loop), and the rate of ``rill train``'s own loop (act + env step + preprocessing + update
every step, 128x128 networks), and their ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from bench.common import machine, print_table, write_json

DEFAULT_ENVS = ["Hopper-v5", "HalfCheetah-v5"]


def raw_step_rate(env_id: str, steps: int, seed: int = 0) -> float:
    from sim.envs import make_env

    env = make_env(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = [env.action_space.sample() for _ in range(steps)]
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return steps / (time.perf_counter() - start)


def train_step_rate(env_id: str, steps: int, seed: int = 0) -> float:
    from agent.train import Trainer
    from agent.train_config import TrainConfig

    with tempfile.TemporaryDirectory() as run:
        trainer = Trainer(TrainConfig(env=env_id, algo="stream-ac", steps=10 * steps, seed=seed,
                                      run=run, checkpoint_every=10 * steps))
        for _ in range(min(200, steps // 10)):  # warm-up: first calls allocate
            trainer.train_step()
        start = time.perf_counter()
        for _ in range(steps):
            trainer.train_step()
        rate = steps / (time.perf_counter() - start)
        trainer.metrics.close()
    return rate


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per env (CI)")
    parser.add_argument("--env", action="append", help=f"env ids (default {DEFAULT_ENVS})")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    raw_steps, train_steps = (2_000, 300) if args.quick else (30_000, 5_000)
    results = {}
    for env_id in args.env or DEFAULT_ENVS:
        raw = raw_step_rate(env_id, raw_steps)
        train = train_step_rate(env_id, train_steps)
        results[env_id] = {"raw_steps_per_s": round(raw, 1), "train_steps_per_s": round(train, 1),
                           "ratio": round(train / raw, 4)}
    rows = [[env, r["raw_steps_per_s"], r["train_steps_per_s"], f"{100 * r['ratio']:.1f}%"]
            for env, r in results.items()]
    print_table("stream AC(λ) training rate vs raw simulator rate (1 thread)",
                ["env", "raw steps/s", "train steps/s", "train / raw"], rows)
    write_json(args.json, {**results, "_meta": {"quick": args.quick, "raw_steps": raw_steps,
                                                "train_steps": train_steps, **machine()}})
    return results


if __name__ == "__main__":
    main()
