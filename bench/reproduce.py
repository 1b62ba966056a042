"""Reproduce the stream AC(λ) MuJoCo results: train every (env, seed), then write the report.

    python -m bench.reproduce --env Walker2d-v4 --env Hopper-v4 --seeds 5 --steps 2000000 \
        --reference-code ~/streaming-drl --jobs 2 --out docs/results/streamx/2m
    python -m bench.reproduce --env Walker2d-v4 --env Hopper-v4 --seeds 2 --steps 20000000 \
        --out docs/results/streamx/20m
    python -m bench.reproduce --quick            # CI: 2k steps, 1 seed, Hopper; report to a temp dir

Each rill run is ``rill train``'s own ``Trainer`` in ``<runs>/<env>/seed<k>``. With
``--reference-code`` (a checkout of the paper's code: bench/reference/README.md) the reference
implementation runs the same env, seed and budget in ``<runs>/<env>/reference-seed<k>``
(``bench.reference.stream_ac``), and with ``--twins`` rill also runs from the reference's own
start for each seed, its initial weights and noise stream, in ``<runs>/<env>/twin-seed<k>``
(``bench.reference.twin``), which pairs the two sides by their starting point. Every run picks up
from its last checkpoint after an interruption (exact resume, every kind) and finished runs are not
run again, so a reproduction longer than a working session is the same command run again.
Independent runs go to ``--jobs`` worker processes.

The run directories live beside the report by default (``<out>/training``), so the repository
carries them from one session (or machine) to the next: commit them as they progress. A run that
reached its budget keeps its episode log, configuration and summary; its checkpoints (the only
bulky part, a few hundred kB) are dropped then.
The report (``bench.reproduce_report``) compares rill with the reference code and with the paper.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import shutil
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from bench.common import finished_summary
from bench.reproduce_report import write_report

log = logging.getLogger("bench.reproduce")


@dataclass(frozen=True)
class RunSpec:
    env: str
    seed: int
    steps: int
    run_dir: str
    update_path: str = "fast"
    checkpoint_every: int = 100_000
    impl: str = "rill"  # "rill" | "reference" | "twin" (rill from the reference's start)
    code: str | None = None  # the reference code's checkout, for impl "reference" and "twin"


def train_one(spec: RunSpec) -> dict:
    """Train (or resume, or find finished) one run; returns its ``summary.json``. A finished run's
    checkpoints are dropped: its episode log and summary are what the report reads."""
    summary = _train(spec)
    if summary.get("steps", 0) >= spec.steps:
        shutil.rmtree(Path(spec.run_dir) / "checkpoints", ignore_errors=True)
    return summary


def _train(spec: RunSpec) -> dict:
    if spec.impl == "reference":
        from bench.reference.stream_ac import ReferenceRun, train

        return train(ReferenceRun(spec.code or "", spec.env, spec.seed, spec.steps, spec.run_dir,
                                  spec.checkpoint_every))
    from agent.train import Trainer
    from agent.train_config import CONFIG_FILE, TrainConfig

    run = Path(spec.run_dir)
    summary = finished_summary(run, spec.steps)
    if summary is not None:
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
    if spec.impl == "twin":
        from bench.reference.twin import note_start, start_as_reference

        if trainer.step == 0:
            start_as_reference(trainer, spec.code or "", spec.env, spec.seed)
        else:  # resumed: the checkpoint holds where the reference's start led
            note_start(trainer, spec.code or "", spec.seed)
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


def _configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", action="append", help="env id, repeatable (default Walker2d-v4, Hopper-v4)")
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 per env (default 5)")
    parser.add_argument("--steps", type=int, help="environment steps per run (default 2,000,000)")
    parser.add_argument("--jobs", type=int, default=1, help="runs trained in parallel processes")
    parser.add_argument("--runs", type=Path, help="run directories root (default <out>/training)")
    parser.add_argument("--out", type=Path, help="report directory (default docs/results/streamx/<budget>)")
    parser.add_argument("--update-path", choices=("fast", "autograd"), default="fast")
    parser.add_argument("--reference-code", type=Path,
                        help="checkout of the paper's code: also run it on every (env, seed)")
    parser.add_argument("--report-only", action="store_true", help="write the report from existing runs")
    parser.add_argument("--twins", action="store_true",
                        help="with --reference-code: also run rill from the reference's start of each seed")
    parser.add_argument("--only", choices=("rill", "reference", "twin"),
                        help="train only this kind of run (commands can then share the cores); the report "
                             "still reads every kind")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="CI smoke run: 2k steps, 1 seed, Hopper-v5, runs and report in a temp dir",
    )
    args = parser.parse_args(argv)
    _configure_logging()
    if any(v is not None and v < 1 for v in (args.seeds, args.steps, args.jobs)):
        parser.error("--seeds, --steps and --jobs must be positive")
    if args.reference_code is None and (args.only in ("reference", "twin") or args.twins):
        parser.error("--only reference, --only twin and --twins need --reference-code")
    if args.reference_code is not None:
        from bench.reference.stream_ac import ReferenceCodeError, load_reference

        try:
            load_reference(args.reference_code)
        except ReferenceCodeError as e:
            parser.error(str(e))
    if args.quick:
        envs, seeds, steps = args.env or ["Hopper-v5"], args.seeds or 1, args.steps or 2_000
        runs, out = args.runs, args.out
        if runs is None or out is None:  # kept after the run, so the report can be looked at
            tmp = Path(tempfile.mkdtemp(prefix="rill-reproduce-"))
            runs, out = runs or tmp / "runs", out or tmp / "results"
    else:
        envs, seeds = args.env or ["Walker2d-v4", "Hopper-v4"], args.seeds or 5
        steps = args.steps or 2_000_000
        out = args.out or Path("docs/results/streamx") / budget_label(steps)
        runs = args.runs or out / "training"
    rill = [RunSpec(env, seed, steps, str(runs / env / f"seed{seed}"), args.update_path)
            for seed in range(seeds) for env in envs]
    reference = [RunSpec(env, seed, steps, str(runs / env / f"reference-seed{seed}"), "reference",
                         impl="reference", code=str(args.reference_code))
                 for seed in range(seeds) for env in envs]
    twins = [RunSpec(env, seed, steps, str(runs / env / f"twin-seed{seed}"), args.update_path,
                     impl="twin", code=str(args.reference_code))
             for seed in range(seeds) for env in envs]
    todo = (rill if args.only in (None, "rill") else []) + (
        reference if args.reference_code is not None and args.only in (None, "reference") else []) + (
        twins if args.only == "twin" or (args.twins and args.only is None) else [])
    if not args.report_only:
        if args.jobs > 1:
            ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch state
            with ProcessPoolExecutor(
                max_workers=args.jobs, mp_context=ctx, initializer=_configure_logging
            ) as pool:
                list(pool.map(train_one, todo))
        else:
            for spec in todo:
                train_one(spec)
    # The reference's runs enter the report wherever they exist, run now or earlier.
    by_env = {env: {"rill": [Path(s.run_dir) for s in rill if s.env == env],
                    "reference": [Path(s.run_dir) for s in reference if s.env == env],
                    "twin": [Path(s.run_dir) for s in twins if s.env == env]} for env in envs}
    report = write_report(by_env, out, steps)
    log.info("report: %s", report)
    return report


def budget_label(steps: int) -> str:
    """``2m`` for 2,000,000 steps, ``20m``, ``500k``; the exact count otherwise."""
    for unit, suffix in ((1_000_000, "m"), (1_000, "k")):
        if steps % unit == 0:
            return f"{steps // unit}{suffix}"
    return str(steps)


if __name__ == "__main__":
    main()
