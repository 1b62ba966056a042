"""Stream AC(λ) on Meta-World from its own state: what the algorithm learns when the goal is given.

    python -m bench.metaworld_state --task reach-v3 --task push-v3 --task pick-place-v3 \
        --task peg-insert-side-v3 --seeds 2 --steps 1000000 --jobs 2 \
        --runs docs/results/online/metaworld-state/training --json docs/results/bench/metaworld_state.json
    python -m bench.metaworld_state --quick        # CI: one task, 2,000 steps, to a temp dir

Each run is ``rill train`` (stream AC(λ), the paper's defaults, the fast path) on
``rill/MetaWorldState-<task>``: Meta-World's 39-number state (hand, gripper, objects and goal),
the ``progress`` reward (the dense reward's rise plus 10 on success) and episodes that end on
success or after 500 steps, as the VLA's online runs have them. So it is the same learner as the
VLA's residual, on the same task and reward, with everything it needs to know in its input: a
yardstick for how much experience stream-x needs on a Meta-World task, apart from perception.
Runs resume from their checkpoints (the same command continues them) and finished runs are not
run again (``bench.reproduce.train_one``).

Reported per task and seed, from the episode log: the success rate of the episodes that ended in
each ``--window`` of steps, the first window at or above 80 %, and the final rate (the last
window).
"""

from __future__ import annotations

import argparse
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from agent.actor.episodes import read_episodes
from bench.common import print_table, write_json
from bench.reproduce import RunSpec, train_one

SOLVED = 0.8


def success_by_window(episodes_csv: Path, window: int, steps: int) -> list[float | None]:
    """The success rate of the episodes that ended in each ``window`` of steps (None: none did)."""
    counts = [[0, 0] for _ in range((steps + window - 1) // window)]
    for episode in read_episodes(episodes_csv):
        if not 1 <= episode.step <= steps or episode.success is None:
            continue
        cell = counts[(episode.step - 1) // window]
        cell[0] += int(episode.success)
        cell[1] += 1
    return [won / n if n else None for won, n in counts]


def summarize(task: str, seed: int, run: Path, window: int, steps: int) -> dict[str, Any]:
    rates = success_by_window(run / "metrics" / "episodes.csv", window, steps)
    solved = next((i for i, r in enumerate(rates) if r is not None and r >= SOLVED), None)
    return {
        "task": task,
        "seed": seed,
        "run": str(run),
        "window_steps": window,
        "success_by_window": rates,
        "first_window_at_80": None if solved is None else (solved + 1) * window,
        "final_success": rates[-1] if rates else None,
    }


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.0f}"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", action="append", help="Meta-World task, repeatable (default reach-v3)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 per task")
    parser.add_argument("--steps", type=int, default=1_000_000, help="environment steps per run")
    parser.add_argument("--window", type=int, help="steps per success-rate window (default steps/10)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
    parser.add_argument("--runs", type=Path, help="run directories go here (default a temp dir)")
    parser.add_argument("--json", type=Path, help="write the result here")
    parser.add_argument("--quick", action="store_true", help="CI: reach-v3, one seed, 2,000 steps")
    args = parser.parse_args(argv)
    if args.quick:
        args.task, args.seeds, args.steps = ["reach-v3"], 1, 2000
    tasks = args.task or ["reach-v3"]
    window = args.window or max(args.steps // 10, 1)
    runs = args.runs or Path(tempfile.mkdtemp(prefix="rill-mwstate-"))
    specs = [RunSpec(env=f"rill/MetaWorldState-{task}", seed=seed, steps=args.steps,
                     run_dir=str(runs / task / f"seed{seed}"), checkpoint_every=min(100_000, args.steps))
             for task in tasks for seed in range(args.seeds)]
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            summaries = list(pool.map(train_one, specs))
    else:
        summaries = [train_one(spec) for spec in specs]
    results = [summarize(spec.env.split("-", 1)[1], spec.seed, Path(spec.run_dir), window, args.steps)
               for spec in specs]
    for result, summary in zip(results, summaries, strict=True):
        result["steps_per_s"] = summary.get("steps_per_s")
    n_windows = len(results[0]["success_by_window"])
    columns = ["task", "seed"] + [f"≤{(i + 1) * window // 1000}k" for i in range(n_windows)]
    print_table(f"stream AC(λ) from Meta-World's state: success % by {window:,}-step window", columns,
                [[r["task"], r["seed"], *map(_percent, r["success_by_window"])] for r in results])
    payload = {"steps": args.steps, "window_steps": window, "solved_at": SOLVED, "runs": results,
               "_about": "rill train (stream AC, paper defaults, fast path) on rill/MetaWorldState-<task>: "
                         "Meta-World's 39-D state, progress reward, episodes end on success or at 500 steps"}
    write_json(args.json, payload)
    return payload


if __name__ == "__main__":
    main()
