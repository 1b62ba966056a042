"""Reproduce the stream AC(λ) MuJoCo results: train every (env, seed), then write the report.

    python -m bench.reproduce --env Hopper-v5 --env Walker2d-v5 --seeds 3 --steps 2000000 [--jobs 2]
    python -m bench.reproduce --quick            # CI: 2k steps, 1 seed, Hopper; report to a temp dir

Each run is ``rill train``'s own ``Trainer`` in ``<runs>/<env>/seed<k>``; an interrupted
reproduction picks every run up from its last checkpoint (exact resume), and finished runs are
not retrained. Independent runs go to ``--jobs`` worker processes. The report (``streamx.md``,
one learning-curve PNG per env, ``streamx.json``) compares the final average return (raw episodic
return of the episodes that ended in the last 100k steps, mean ± standard error over seeds) with
the paper's numbers (docs/streamx.md).
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger("bench.reproduce")

FINAL_WINDOW = 100_000
# Raw final average episodic return at 2M steps (docs/streamx.md; the paper used the -v4 tasks).
PAPER = {
    "Hopper": {"stream AC(λ)": 2173, "PPO": 2041, "SAC": 2304, "PPO1": 449, "SAC1": 276},
    "Walker2d": {"stream AC(λ)": 4335, "PPO": 2386, "SAC": 5098},
}
TARGETS = {"Hopper": 2000, "Walker2d": 3500}  # issue 3's fidelity bar at 2M steps, 3 seeds


@dataclass(frozen=True)
class RunSpec:
    env: str
    seed: int
    steps: int
    run_dir: str
    update_path: str = "fast"
    checkpoint_every: int = 100_000


def train_one(spec: RunSpec) -> dict:
    """Train (or resume, or find finished) one run; returns its ``summary.json``."""
    from agent.train import Trainer
    from agent.train_config import CONFIG_FILE, TrainConfig

    run = Path(spec.run_dir)
    summary_file = run / "summary.json"
    if summary_file.exists():
        summary = json.loads(summary_file.read_text())
        if summary.get("steps", 0) >= spec.steps:
            log.info("%s: already trained to %d steps", run, summary["steps"])
            return summary
    config = TrainConfig(
        env=spec.env,
        algo="stream-ac",
        steps=spec.steps,
        seed=spec.seed,
        run=str(run),
        checkpoint_every=min(spec.checkpoint_every, spec.steps),
        update_path=spec.update_path,
    )
    trainer = Trainer(config, resume=(run / CONFIG_FILE).exists())
    every = max(spec.steps // 20, 1000)

    def progress(tr, rate: float) -> None:
        if tr.step % every == 0:
            log.info(
                "%s seed %d: step %d/%d, %.0f steps/s, recent return %.1f",
                spec.env,
                spec.seed,
                tr.step,
                spec.steps,
                rate,
                tr.recent_return(),
            )

    return trainer.run(on_progress=progress)


def _episodes(run_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    from agent.actor.episodes import read_episodes

    episodes = read_episodes(run_dir / "metrics" / "episodes.csv")
    return np.asarray([e.step for e in episodes], np.int64), np.asarray([e.ret for e in episodes], np.float64)


def learning_curve(steps: np.ndarray, returns: np.ndarray, grid: np.ndarray, window: int) -> np.ndarray:
    """Mean raw return of the episodes that ended in ``(g - window, g]``, per grid point ``g``.

    Points with no episode in their window carry the previous value (NaN before the first).
    """
    out = np.full(len(grid), np.nan)
    last = np.nan
    for i, g in enumerate(grid):
        mask = (steps > g - window) & (steps <= g)
        if mask.any():
            last = float(returns[mask].mean())
        out[i] = last
    return out


def final_return(steps: np.ndarray, returns: np.ndarray, total: int, window: int) -> float:
    mask = steps > total - window
    return float(returns[mask].mean()) if mask.any() else float("nan")


def _mean_se(values) -> tuple[float, float]:
    v = np.asarray([x for x in values if np.isfinite(x)], np.float64)
    if len(v) == 0:
        return float("nan"), float("nan")
    se = float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan")
    return float(v.mean()), se


def _plot(env: str, grid: np.ndarray, curves: np.ndarray, total: int, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean = np.nanmean(curves, axis=0)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    seeds = f"{len(curves)} seed{'s' if len(curves) > 1 else ''}"
    ax.plot(grid, mean, color="tab:blue", lw=2, label=f"stream AC(λ), rill ({seeds})")
    if len(curves) > 1:
        n = np.sum(np.isfinite(curves), axis=0)
        se = np.nanstd(curves, axis=0, ddof=1) / np.sqrt(np.maximum(n, 1))
        ax.fill_between(grid, mean - se, mean + se, color="tab:blue", alpha=0.25, label="± standard error")
    family = env.split("-")[0]
    if family in PAPER:
        ax.axhline(
            PAPER[family]["stream AC(λ)"],
            color="black",
            ls="--",
            lw=1,
            label=f"paper, stream AC(λ) at 2M ({PAPER[family]['stream AC(λ)']})",
        )
    ax.set_xlim(0, total)
    ax.set_xlabel("environment steps")
    ax.set_ylabel("episodic return (raw)")
    ax.set_title(f"stream AC(λ) on {env}")
    ax.grid(alpha=0.3)
    ax.legend(loc="best")
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def write_report(specs: list[RunSpec], out_dir: Path, total: int) -> Path:
    """``streamx.md``, ``streamx.json`` and ``streamx_<env>.png`` in ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    window = min(FINAL_WINDOW, total)
    grid = np.linspace(total / 100, total, 100)
    by_env: dict[str, list[RunSpec]] = {}
    for spec in specs:
        by_env.setdefault(spec.env, []).append(spec)
    rows, payload = [], {"steps": total, "final_window": window, "envs": {}}
    for env, env_specs in by_env.items():
        finals, curves, rates, paths = [], [], [], set()
        for spec in env_specs:
            steps, returns = _episodes(Path(spec.run_dir))
            finals.append(final_return(steps, returns, total, window))
            curves.append(learning_curve(steps, returns, grid, max(total // 40, 1000)))
            summary_file = Path(spec.run_dir) / "summary.json"
            if summary_file.exists():
                rates.append(json.loads(summary_file.read_text()).get("steps_per_s", float("nan")))
            run_info = Path(spec.run_dir) / "run.json"
            if run_info.exists():
                paths.add(json.loads(run_info.read_text()).get("update_path", "?"))
        png = out_dir / f"streamx_{env}.png"
        _plot(env, grid, np.asarray(curves), total, png)
        mean, se = _mean_se(finals)
        family = env.split("-")[0]
        paper = PAPER.get(family, {})
        target = TARGETS.get(family)
        meets = "" if target is None or not np.isfinite(mean) else ("yes" if mean >= target else "no")
        rows.append((env, len(env_specs), mean, se, finals, paper, target, meets))
        payload["envs"][env] = {
            "seeds": [s.seed for s in env_specs],
            "final_returns": finals,
            "mean": mean,
            "standard_error": se,
            "paper": paper,
            "target": target,
            "steps_per_s": rates,
            "update_path": sorted(paths),
            "plot": png.name,
        }
    (out_dir / "streamx.json").write_text(json.dumps(payload, indent=1))
    report = out_dir / "streamx.md"
    report.write_text(_markdown(rows, payload, total, window))
    return report


def _fmt(x: float, digits: int = 0) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:,.{digits}f}"


def _markdown(rows, payload, total: int, window: int) -> str:
    lines = [
        "# Stream AC(λ) on MuJoCo: reproduction",
        "",
        f"Written by `python -m bench.reproduce` after {total:,} environment steps per run. Final "
        f"return: mean raw episodic return of the episodes that ended in the last {window:,} steps "
        "of each run; mean ± standard error over seeds. Paper numbers (docs/streamx.md) are for the -v4 "
        f"tasks at 2M steps; these runs: {', '.join(r[0] for r in rows)}.",
        "",
        "| env | seeds | final return (mean ± s.e.) | per seed | paper stream AC(λ) | PPO | SAC "
        "| PPO1 | SAC1 | target | meets target |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for env, n, mean, se, finals, paper, target, meets in rows:
        per_seed = ", ".join(_fmt(f) for f in finals)
        lines.append(
            f"| {env} | {n} | {_fmt(mean)} ± {_fmt(se)} | {per_seed} | "
            f"{_fmt(paper.get('stream AC(λ)'))} | {_fmt(paper.get('PPO'))} | "
            f"{_fmt(paper.get('SAC'))} | {_fmt(paper.get('PPO1'))} | {_fmt(paper.get('SAC1'))} | "
            f"{'≥ ' + _fmt(target) if target else '–'} | {meets or '–'} |"
        )
    lines += [
        "",
        "## Learning curves",
        "",
        "Mean raw episodic return over seeds (± standard error shaded), each point the mean of "
        f"the episodes that ended in the preceding {max(total // 40, 1000):,} steps; dashed: the "
        "paper's final value.",
        "",
    ]
    for env, info in payload["envs"].items():
        rates = ", ".join(_fmt(r) for r in info["steps_per_s"])
        lines += [
            f"### {env}",
            "",
            f"![{env}]({info['plot']})",
            "",
            f"Update path: {', '.join(info['update_path']) or '?'}; training rate per run "
            f"(steps/s, 1 thread): {rates or '–'}.",
            "",
        ]
    return "\n".join(lines)


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="env id, repeatable (default Hopper-v5, Walker2d-v5)")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 per env (default 3)")
    parser.add_argument("--steps", type=int, help="environment steps per run (default 2,000,000)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    parser.add_argument("--runs", type=Path, help="run directories root (default runs/reproduce)")
    parser.add_argument("--out", type=Path, help="report directory (default docs/results)")
    parser.add_argument("--update-path", choices=("fast", "autograd"), default="fast")
    parser.add_argument("--report-only", action="store_true", help="write the report from existing runs")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 2k steps, 1 seed, Hopper-v5, runs and report in a temp dir",
    )
    args = parser.parse_args(argv)
    _configure_logging()
    if any(v is not None and v < 1 for v in (args.seeds, args.steps, args.jobs)):
        parser.error("--seeds, --steps and --jobs must be positive")
    if args.quick:
        envs, seeds, steps = args.env or ["Hopper-v5"], args.seeds or 1, args.steps or 2_000
        runs, out = args.runs, args.out
        if runs is None or out is None:  # kept after the run, so the report can be looked at
            tmp = Path(tempfile.mkdtemp(prefix="rill-reproduce-"))
            runs, out = runs or tmp / "runs", out or tmp / "results"
    else:
        envs, seeds = args.env or ["Hopper-v5", "Walker2d-v5"], args.seeds or 3
        steps = args.steps or 2_000_000
        runs, out = args.runs or Path("runs/reproduce"), args.out or Path("docs/results")
    specs = [
        RunSpec(env, seed, steps, str(runs / env / f"seed{seed}"), args.update_path)
        for env in envs
        for seed in range(seeds)
    ]
    if not args.report_only:
        if args.jobs > 1:
            ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
            with ProcessPoolExecutor(
                max_workers=args.jobs, mp_context=ctx, initializer=_configure_logging
            ) as pool:
                list(pool.map(train_one, specs))
        else:
            for spec in specs:
                train_one(spec)
    report = write_report(specs, out, steps)
    log.info("report: %s", report)
    return report


if __name__ == "__main__":
    main()
