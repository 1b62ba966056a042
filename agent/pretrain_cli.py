"""``rill pretrain CONFIG [--resume]``: behaviour cloning of a VLA from demonstrations."""

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


def add_pretrain_commands(sub) -> None:
    p = sub.add_parser("pretrain", help="behaviour cloning of a VLA from demonstrations")
    p.add_argument("config", type=Path, help="YAML: demos, out, steps, eval_robot, ... (see agent.pretrain)")
    p.add_argument("--resume", action="store_true", help="continue the run in out from its last checkpoint")
    p.add_argument("--steps", type=int, help="train to this many steps (overrides the config)")
    p.add_argument("--out", type=Path, help="run directory (overrides the config)")
    p.set_defaults(func=cmd_pretrain)
