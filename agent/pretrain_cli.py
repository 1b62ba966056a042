"""``rill pretrain CONFIG [--resume]``: behaviour cloning of a VLA from demonstrations;
``rill locator CONFIG``: a marker locator for the residual, from frames a simulator labels."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path


def cmd_pretrain(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from agent.pretrain.config import PretrainConfig
    from agent.pretrain.trainer import Pretrainer

    config = PretrainConfig.from_yaml(args.config)
    overrides = {k: v for k, v in (("steps", args.steps), ("out", args.out)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    trainer = Pretrainer(config, resume=args.resume)
    console = Console()
    console.print(f"pretraining on {len(trainer.train)} demonstration steps of {trainer.train.episodes} "
                  f"episodes ({len(trainer.val) if trainer.val else 0} held out), from step {trainer.step}")
    with Progress(TextColumn("pretrain"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[line]}"), console=console) as progress:
        task = progress.add_task("steps", total=config.steps, completed=trainer.step, line="")

        def show(t: Pretrainer, row: dict) -> None:
            line = None
            if "loss" in row:
                line = f"loss {row['loss']:.4f}"
                if "val_loss" in row:
                    line += f" val {row['val_loss']:.4f}"
            if row.get("eval"):
                line = f"{line or ''} success {100 * row['eval']['success_rate']:.0f}%"
            progress.update(task, completed=t.step, **({"line": line} if line else {}))

        final = trainer.run(on_step=show)
    ev = final["eval"]
    success = f", success {100 * ev['success_rate']:.0f}% on {ev['episodes']} held-out episodes" if ev else ""
    console.print(f"done at step {final['step']}: validation loss {final['val_loss']}{success}; "
                  f"the VLA is in {config.out / 'model'}")
    return 0


def cmd_locator(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from agent.outputs import claim_output_dir
    from agent.pretrain.locator import LocatorTrainConfig, train_locator

    config = LocatorTrainConfig.from_yaml(args.config)
    claim_output_dir(config.out, "locator.json", "locator", overwrite=args.overwrite)  # before any training
    console = Console()
    console.print(f"collecting frames of {config.episodes} + {config.val_episodes} (held out) expert "
                  "episodes")
    with Progress(TextColumn("locator"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[line]}"), console=console) as progress:
        task = progress.add_task("steps", total=config.steps, line="")
        metrics = train_locator(config, on_step=lambda step, loss: progress.update(
            task, completed=step, line=f"loss {loss:.3f}"))
    err = metrics["val_pixel_error"]
    mean = metrics["val_pixel_error_of_the_mean_pixel"]["median"]
    console.print(f"held-out frames ({metrics['val_frames']}): pixel error median {err['median']}, "
                  f"p90 {err['p90']}, max {err['max']} (the mean pixel: median {mean}); the locator is in "
                  f"{config.out}")
    return 0


def add_pretrain_commands(sub) -> None:
    p = sub.add_parser("pretrain", help="behaviour cloning of a VLA from demonstrations")
    p.add_argument("config", type=Path, help="YAML: demos, out, steps, eval_robot, ... (see agent.pretrain)")
    p.add_argument("--resume", action="store_true", help="continue the run in out from its last checkpoint")
    p.add_argument("--steps", type=int, help="train to this many steps (overrides the config)")
    p.add_argument("--out", type=Path, help="run directory (overrides the config)")
    p.set_defaults(func=cmd_pretrain)
    p = sub.add_parser("locator", help="train a marker locator (a goal's pixel) on labelled sim frames")
    p.add_argument("config", type=Path, help="YAML: out, tasks, episodes, steps (agent.pretrain.locator)")
    p.add_argument("--overwrite", action="store_true", help="replace a locator already in out")
    p.set_defaults(func=cmd_locator)
