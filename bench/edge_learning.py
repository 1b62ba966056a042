"""Does learning survive the link? Hopper-v5 learning curves, one run each, same seeds:

    python -m bench.edge_learning [--quick] [--steps N] [--seeds K] --json OUT

- ``train``: ``rill train`` in one process (the reference: act and update in lockstep);
- ``link-1``: ``rill learner`` + one ``rill actor`` over loopback (weights published every 100
  updates; the actor may run at most 16 transitions ahead of learning);
- ``link-4-stale``: ``rill learner`` + four actors sharing the steps, weights published only every
  1000 updates and actors allowed 2000 transitions ahead: lagging weights, corrected by truncated
  importance weights.

Writes ``docs/results/edge.md`` and ``docs/results/edge_hopper.png`` (raw episodic return against
total environment steps, mean ± standard error over seeds) unless ``--quick``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from bench.common import machine, print_table, write_json

REPO = Path(__file__).resolve().parents[1]
ENV_ID = "Hopper-v5"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _episodes(run: Path) -> tuple[np.ndarray, np.ndarray]:
    """(total steps at episode end, raw return), across actors ordered by wall time."""
    from agent.actor.episodes import read_run_episodes

    episodes = read_run_episodes(run)
    return np.cumsum([e.length for e in episodes]), np.array([e.ret for e in episodes])


def run_train(steps: int, seed: int, tmp: Path) -> tuple[np.ndarray, np.ndarray]:
    from agent.train import Trainer
    from agent.train_config import TrainConfig

    run = tmp / f"train-{seed}"
    Trainer(TrainConfig(env=ENV_ID, steps=steps, seed=seed, run=str(run), checkpoint_every=10 * steps)).run()
    from agent.actor.episodes import read_episodes

    episodes = read_episodes(run / "metrics" / "episodes.csv")
    return np.array([e.step for e in episodes]), np.array([e.ret for e in episodes])


def run_link(steps: int, seed: int, actors: int, publish_every: int, max_lag: int, tmp: Path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": "egl"}
    cli = [sys.executable, "-m", "agent.cli"]
    port = _port()
    run = tmp / f"link{actors}-{seed}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": REPO, "env": env}
    learner = subprocess.Popen(
        [
            *cli,
            "learner",
            "--bind",
            f"tcp://127.0.0.1:{port}",
            "--run",
            str(run),
            "--env",
            ENV_ID,
            "--seed",
            str(seed),
            "--publish-every",
            str(publish_every),
            "--durability",
            "os-buffered",
        ],
        **quiet,
    )
    procs = [
        subprocess.Popen(
            [
                *cli,
                "actor",
                "--learner",
                f"tcp://127.0.0.1:{port}",
                "--run",
                str(run),
                "--env",
                ENV_ID,
                "--actor-id",
                f"a{i}",
                "--seed",
                str(seed + 1000 * i),
                "--steps",
                str(steps // actors),
                "--max-lag",
                str(max_lag),
                "--durability",
                "os-buffered",
                "--drain",
                "30",
            ],
            **quiet,
        )
        for i in range(actors)
    ]
    try:
        for p in procs:
            p.wait(timeout=3600)
    finally:
        learner.terminate()
        learner.wait(60)
    return _episodes(run)


def _on_grid(steps: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: float) -> np.ndarray:
    out = np.full(len(grid), np.nan)
    for i, g in enumerate(grid):
        sel = (steps <= g) & (steps > g - window)
        if sel.any():
            out[i] = returns[sel].mean()
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="CI: 3k steps, one seed, no report")
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--json")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "results")
    args = parser.parse_args(argv)
    steps, seeds = (3_000, 1) if args.quick else (args.steps, args.seeds)
    tmp = Path(tempfile.mkdtemp(prefix="rill-edge-"))
    grid = np.linspace(steps / 20, steps, 20)
    window = steps / 10
    setups = {
        "train": lambda s: run_train(steps, s, tmp),
        "link-1": lambda s: run_link(steps, s, 1, 100, 16, tmp),
        "link-4-stale": lambda s: run_link(steps, s, 4, 1000, 2000, tmp),
    }
    curves: dict[str, list[np.ndarray]] = {k: [] for k in setups}
    try:
        for name, fn in setups.items():
            for seed in range(seeds):
                st, ret = fn(seed)
                curves[name].append(_on_grid(st, ret, grid, window))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    results = {}
    for name, cs in curves.items():
        arr = np.array(cs)
        final = arr[:, -1]
        results[name] = {
            "final_return_mean": float(np.nanmean(final)),
            "final_return_per_seed": [float(x) for x in final],
            "curve_mean": [float(x) for x in np.nanmean(arr, 0)],
        }
    rows = [
        [k, f"{v['final_return_mean']:.1f}", ", ".join(f"{x:.0f}" for x in v["final_return_per_seed"])]
        for k, v in results.items()
    ]
    print_table(
        f"{ENV_ID}: return over the last {window:,.0f} of {steps:,} steps",
        ["setup", "mean", "per seed"],
        rows,
    )
    write_json(
        args.json, {**results, "_meta": {"steps": steps, "seeds": seeds, "grid": grid.tolist(), **machine()}}
    )
    if not args.quick:
        _report(args.out, curves, grid, steps, seeds, results, window)
    return results


def _report(out: Path, curves, grid, steps, seeds, results, window) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    for name, cs in curves.items():
        arr = np.array(cs)
        mean = np.nanmean(arr, 0)
        se = np.nanstd(arr, 0) / np.sqrt(max(len(cs), 1))
        ax.plot(grid, mean, lw=2, label=name)
        ax.fill_between(grid, mean - se, mean + se, alpha=0.2)
    ax.set_xlabel("environment steps (all actors)")
    ax.set_ylabel("episodic return (raw)")
    ax.set_title(f"{ENV_ID}: stream AC(λ) locally and over the link ({seeds} seeds, mean ± s.e.)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "edge_hopper.png")
    plt.close(fig)
    lines = [
        "# Learning over the edge-cloud link",
        "",
        f"`python -m bench.edge_learning --steps {steps} --seeds {seeds}`, {ENV_ID}, same hyperparameters"
        " everywhere (the paper's). Return = mean raw episodic return over the last "
        f"{window:,.0f} steps.",
        "",
        "![curves](edge_hopper.png)",
        "",
        "| setup | final return (mean) | per seed |",
        "|---|---|---|",
    ]
    for k, v in results.items():
        per_seed = ", ".join(f"{x:.0f}" for x in v["final_return_per_seed"])
        lines.append(f"| {k} | {v['final_return_mean']:.1f} | {per_seed} |")
    (out / "edge.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
