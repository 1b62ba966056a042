"""``rill reward train CONFIG`` and ``rill reward eval MODEL EPISODES...``: a success classifier for
robots without a reward."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def cmd_train(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from agent.outputs import claim_output_dir
    from agent.reward.config import RewardTrainConfig
    from agent.reward.trainer import train_reward_model
    from policies.reward.checkpoint import META

    config = RewardTrainConfig.from_yaml(args.config)
    overrides = {k: v for k, v in (("steps", args.steps), ("out", args.out)) if v is not None}
    config = dataclasses.replace(config, **overrides)
    claim_output_dir(config.out, META, "reward model", overwrite=args.overwrite)  # before any training
    console = Console()
    with Progress(TextColumn("reward model"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  TextColumn("{task.fields[line]}"), console=console) as progress:
        task = progress.add_task("steps", total=config.steps, line="")
        _model, metrics = train_reward_model(
            config, lambda step, loss: progress.update(task, completed=step, line=f"loss {loss:.4f}"))
    h = metrics["held_out"]
    console.print(f"held-out episodes ({metrics['held_out_frames']} frames): precision {h['precision']:.3f}, "
                  f"recall {h['recall']:.3f} at threshold {h['threshold']:.3f}; the model is in {config.out}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agent.reward.data import FrameRules
    from agent.reward.evaluate import evaluate_episodes, evaluate_frames
    from policies.reward import load_reward_model

    model = load_reward_model(args.model)
    rules = FrameRules(swap_words=args.swap_words.split(",") if args.swap_words else [])
    frames = evaluate_frames(model, args.episodes, rules)
    episodes = evaluate_episodes(model, args.episodes, args.consecutive)
    if args.json:
        print(json.dumps({"frames": frames, "episodes": episodes}, indent=1))
        return 0
    console = Console()
    console.print(f"frames ({frames['frames']}, {frames['positives']} success): precision "
                  f"{frames['precision']:.3f}, recall {frames['recall']:.3f} at {frames['threshold']:.3f}; "
                  f"right by kind {json.dumps({k: round(v, 3) for k, v in frames['by_kind'].items()})}")
    console.print(f"episodes ({episodes['episodes']}, {episodes['successful']} successful): "
                  f"{episodes['declared']} declared, {episodes['right']} right, {episodes['wrong']} wrong, "
                  f"{episodes['missed']} missed: precision {episodes['precision']:.3f}, recall "
                  f"{episodes['recall']:.3f} ({args.consecutive} consecutive frames)")
    return 0


def add_reward_commands(sub) -> None:
    p = sub.add_parser("reward", help="a success classifier (reward model) from labelled episodes")
    cmds = p.add_subparsers(dest="reward_command", required=True)
    train = cmds.add_parser("train", help="train a reward model on episodes in replay caches")
    train.add_argument("config", type=Path, help="YAML: episodes, out, camera, steps, rules, ... "
                       "(see agent.reward.config)")
    train.add_argument("--steps", type=int, help="training steps (overrides the config)")
    train.add_argument("--out", type=Path, help="where the model goes (overrides the config)")
    train.add_argument("--overwrite", action="store_true", help="replace a reward model already in out")
    train.set_defaults(func=cmd_train)
    ev = cmds.add_parser("eval", help="precision and recall of a reward model on episodes")
    ev.add_argument("model", type=Path, help="a saved reward model directory")
    ev.add_argument("episodes", type=Path, nargs="+", help="replay caches of episodes (rill demos record)")
    ev.add_argument("--consecutive", type=int, default=3, help="confident frames in a row to declare success")
    ev.add_argument("--swap-words", default="", help="goal words for other-goal frames, e.g. red,blue,yellow")
    ev.add_argument("--json", action="store_true", help="print the figures as JSON")
    ev.set_defaults(func=cmd_eval)
