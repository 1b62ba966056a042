"""``rill train`` and ``rill eval``: stream-x on a gymnasium environment, and a trained run played back."""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml


def parse_overrides(pairs: list[str]) -> dict:
    """``--hp KEY=VALUE`` pairs as a dict, each value read as YAML."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"rill: --hp expects KEY=VALUE, got {pair!r}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def _train_config(args: argparse.Namespace):
    from agent.train_config import CONFIG_FILE, TrainConfig

    values = {}
    stored = Path(args.run or TrainConfig.run) / CONFIG_FILE
    if args.resume and stored.is_file():  # what the run was made with; flags and --config change it
        values.update(TrainConfig.from_yaml(stored).to_dict())
    if args.config:
        values.update(TrainConfig.from_yaml(args.config).to_dict())
    for key in ("env", "algo", "steps", "seed", "run", "checkpoint_every", "update_path"):
        if getattr(args, key) is not None:
            values[key] = getattr(args, key)
    if args.hp:
        values["hyper"] = {**values.get("hyper", {}), **parse_overrides(args.hp)}
    return TrainConfig.from_dict(values)


def cmd_train(args: argparse.Namespace) -> int:
    from agent.console import train_with_progress
    from agent.train import Trainer

    config = _train_config(args)
    trainer = Trainer(config, resume=args.resume, overwrite=args.overwrite)
    train_with_progress(trainer)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from agent.console import show_eval
    from agent.evaluate import evaluate

    result = evaluate(Path(args.run), episodes=args.episodes, seed=args.seed, video=args.video)
    show_eval(args.run, result, args.video)
    return 0


def add_train_commands(sub) -> None:
    from learners.streamx.registry import algorithm_names

    train = sub.add_parser("train", help="train a stream-x learner on a gymnasium environment")
    train.add_argument("--config", type=Path, help="YAML file of train settings (flags override)")
    train.add_argument("--env", help="gymnasium id, e.g. Hopper-v5 (default Hopper-v5)")
    train.add_argument("--algo", help=f"{' | '.join(algorithm_names(control_only=True))} (default stream-ac)")
    train.add_argument("--steps", type=int, help="environment steps to train to")
    train.add_argument("--seed", type=int)
    train.add_argument("--run", help="run directory (default runs/train)")
    train.add_argument("--checkpoint-every", type=int, dest="checkpoint_every")
    train.add_argument(
        "--update-path",
        choices=("fast", "autograd"),
        dest="update_path",
        help="fast: compiled stream-x kernels for the MLP networks (default); "
        "autograd: the general torch path",
    )
    train.add_argument(
        "--hp",
        action="append",
        metavar="KEY=VALUE",
        help="algorithm hyperparameter override, e.g. --hp lamda=0.9",
    )
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true",
                      help="continue the run in --run exactly, with the settings it was made with (flags "
                           "given change them; --steps to train further)")
    mode.add_argument("--overwrite", action="store_true", help="replace the run in --run")
    train.set_defaults(func=cmd_train)

    ev = sub.add_parser("eval", help="run a trained policy deterministically")
    ev.add_argument("--run", required=True, help="run directory written by rill train")
    ev.add_argument("--episodes", type=int, default=10)
    ev.add_argument("--seed", type=int, default=10_000)
    ev.add_argument("--video", type=Path, help="write the first episode to this .mp4")
    ev.set_defaults(func=cmd_eval)
