"""Stream-x training speed against the simulator's own step rate, in one run, one thread.

    python -m bench.streamx_speed [--quick] [--env Hopper-v5 ...] --json OUT

Per environment: the raw ``env.step`` rate with pre-drawn random actions (the physical limit of a
one-env loop), and the rate of ``rill train``'s own loop (``Trainer.train_step``: act, env step,
preprocessing, update, every step, 128x128 networks) on the fast (compiled) and the autograd
update paths, with their ratios. The three are measured in alternating rounds so that a slow
spell of a shared machine hits all of them alike; each rate is total steps over total time.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from bench.common import machine, print_table, write_json

DEFAULT_ENVS = ["Hopper-v5", "HalfCheetah-v5", "Walker2d-v5"]
PATHS = ("fast", "autograd")


class RawStepper:
    """Steps an environment with pre-drawn random actions, resetting at episode ends."""

    def __init__(self, env_id: str, steps: int, seed: int = 0) -> None:
        from sim.envs import make_env

        self.env = make_env(env_id)
        self.env.reset(seed=seed)
        self.env.action_space.seed(seed)
        self.actions = [self.env.action_space.sample() for _ in range(steps)]

    def seconds(self) -> float:
        env = self.env
        start = time.perf_counter()
        for a in self.actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        return time.perf_counter() - start


def _trainer(env_id: str, update_path: str, run: str, seed: int = 0):
    from agent.train import Trainer
    from agent.train_config import TrainConfig

    trainer = Trainer(
        TrainConfig(
            env=env_id,
            algo="stream-ac",
            steps=10**9,
            seed=seed,
            run=run,
            checkpoint_every=10**9,
            update_path=update_path,
        )
    )
    if trainer.algo.update_path != update_path:
        raise RuntimeError(f"asked for the {update_path} path, got {trainer.algo.update_path}")
    for _ in range(200):  # warm-up: first calls allocate (and load compiled kernels)
        trainer.train_step()
    return trainer


def _train_seconds(trainer, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    return time.perf_counter() - start


def measure(env_id: str, raw_steps: int, train_steps: dict[str, int], rounds: int) -> dict:
    """Rates for one environment: ``rounds`` alternating rounds of raw, fast and autograd steps."""
    totals = {"raw": 0.0, **{p: 0.0 for p in PATHS}}
    raw = RawStepper(env_id, raw_steps)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {p: _trainer(env_id, p, f"{tmp}/{p}") for p in PATHS}
        for _ in range(rounds):
            totals["raw"] += raw.seconds()
            for p in PATHS:
                totals[p] += _train_seconds(trainers[p], train_steps[p])
        for trainer in trainers.values():
            trainer.metrics.close()
    rate = {
        "raw": rounds * raw_steps / totals["raw"],
        **{p: rounds * train_steps[p] / totals[p] for p in PATHS},
    }
    return {
        "raw_steps_per_s": round(rate["raw"], 1),
        "fast_train_steps_per_s": round(rate["fast"], 1),
        "autograd_train_steps_per_s": round(rate["autograd"], 1),
        "fast_over_raw": round(rate["fast"] / rate["raw"], 4),
        "autograd_over_raw": round(rate["autograd"] / rate["raw"], 4),
        "fast_over_autograd": round(rate["fast"] / rate["autograd"], 2),
        # what `rill train` runs by default (the fast path), under the keys of earlier versions
        "train_steps_per_s": round(rate["fast"], 1),
        "ratio": round(rate["fast"] / rate["raw"], 4),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds per env (CI)")
    parser.add_argument("--env", action="append", help=f"env ids (default {DEFAULT_ENVS})")
    parser.add_argument("--json", help="write results here")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.quick:
        rounds, raw_steps, train_steps = 1, 1_000, {"fast": 500, "autograd": 50}
    else:
        rounds, raw_steps, train_steps = 3, 10_000, {"fast": 10_000, "autograd": 700}
    results = {env_id: measure(env_id, raw_steps, train_steps, rounds) for env_id in args.env or DEFAULT_ENVS}
    rows = [
        [
            env,
            r["raw_steps_per_s"],
            r["fast_train_steps_per_s"],
            f"{100 * r['fast_over_raw']:.1f}%",
            r["autograd_train_steps_per_s"],
            f"{100 * r['autograd_over_raw']:.1f}%",
            f"{r['fast_over_autograd']:.1f}x",
        ]
        for env, r in results.items()
    ]
    print_table(
        "stream AC(λ) training rate vs raw simulator rate (1 thread)",
        [
            "env",
            "raw steps/s",
            "fast train/s",
            "fast / raw",
            "autograd train/s",
            "autograd / raw",
            "fast / autograd",
        ],
        rows,
        width=120,
    )
    write_json(
        args.json,
        {
            **results,
            "_meta": {
                "quick": args.quick,
                "rounds": rounds,
                "raw_steps_per_round": raw_steps,
                "train_steps_per_round": train_steps,
                **machine(),
            },
        },
    )
    return results


if __name__ == "__main__":
    main()
