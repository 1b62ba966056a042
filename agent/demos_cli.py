"""``rill demos record CONFIG``, ``rill demos info DIR`` and ``rill demos import DIR --out CACHE``:
make, look at and bring in demonstration sets."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def cmd_record(args: argparse.Namespace) -> int:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from agent.demos.record import (
        RecordConfig,
        build_demo_policy,
        check_destination,
        open_demo_cache,
        record_demos,
    )
    from hal.registry import make_robot

    config = RecordConfig.from_yaml(args.config)
    overrides = {k: v for k, v in (("episodes", args.episodes), ("out", args.out)) if v is not None}
    config = dataclasses.replace(config, **overrides)  # validated again
    robot = make_robot(config.robot)
    check_destination(config.out, robot, args.append)
    policy = build_demo_policy(config.policy, robot)
    with robot, open_demo_cache(config) as cache, Progress(
            TextColumn("recording"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[line]}")) as progress:
        task = progress.add_task("record", total=config.episodes, line="")

        def show(stats) -> None:
            progress.update(task, completed=stats.episodes,
                            line=f"{stats.successful} succeeded, {stats.aborted} aborted")

        stats = record_demos(robot, policy, cache, config.episodes, config.source, on_episode=show)
    print(f"recorded {stats.episodes} episodes ({stats.successful} succeeded, {stats.aborted} aborted, "
          f"{stats.steps} steps) into {config.out}")
    return 0 if stats.episodes == config.episodes else 1


def cmd_info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from agent.demos.episodes import read_demos

    summary = read_demos(args.dir, require_success=False).summary()
    if args.json:
        print(json.dumps(summary, indent=1))
        return 0
    table = Table(title=f"demonstrations {args.dir}")
    table.add_column("field")
    table.add_column("value")
    length = summary["length"]
    rows = [("episodes", str(summary["episodes"])),
            ("success", f"{summary['successful']} ({100 * summary['success_rate']:.0f}%)"),
            ("aborted / incomplete", f"{summary['aborted']} / {summary['incomplete']}"),
            ("steps", str(summary["steps"])),
            ("length mean / min / max", f"{length['mean']:.1f} / {length['min']} / {length['max']}"),
            ("sources", ", ".join(f"{k}: {v}" for k, v in summary["sources"].items())),
            ("state / action width", f"{summary['state_dim']} / {summary['action_dim']}"),
            ("cameras", ", ".join(f"{c} {'x'.join(map(str, s))}" for c, s in summary["cameras"].items())
             or "none")]
    rows += [("instruction" if i == 0 else "", f"{n}x {text!r}")
             for i, (text, n) in enumerate(summary["instructions"].items())]
    for row in rows:
        table.add_row(*row)
    Console().print(table)
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from agent.demos.lerobot_import import import_lerobot

    cameras = [c for c in args.cameras.split(",") if c] if args.cameras else None
    with Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), transient=True) as progress:
        task = progress.add_task("import", total=None)
        summary = import_lerobot(args.dir, args.out, source=args.source, cameras=cameras,
                                 assume_success=args.assume_success,
                                 on_episode=lambda n: progress.advance(task, 1))
    Console().print(f"imported {summary.episodes} episodes ({summary.frames} steps, {summary.successful} "
                    f"successful; cameras: {', '.join(summary.cameras) or 'none'}; sources: "
                    f"{', '.join(f'{k} {v}' for k, v in summary.sources.items())}) into {summary.out}")
    return 0


def add_demos_commands(sub) -> None:
    demos = sub.add_parser("demos", help="record and inspect demonstrations (for imitation pretraining)")
    commands = demos.add_subparsers(dest="demos_command", required=True)
    record = commands.add_parser("record", help="drive a robot with an expert or teleop; keep the episodes")
    record.add_argument("config", type=Path, help="YAML: robot, policy, out, episodes, source")
    record.add_argument("--episodes", type=int, help="episodes to record (overrides the config)")
    record.add_argument("--out", type=Path, help="the cache to write (overrides the config)")
    record.add_argument("--append", action="store_true",
                        help="add to the episodes already in out (same robot shapes; give the robot "
                             "another seed)")
    record.set_defaults(func=cmd_record)
    info = commands.add_parser("info", help="episodes, success rate, lengths, instructions of a set")
    info.add_argument("dir", type=Path)
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(func=cmd_info)
    imp = commands.add_parser("import", help="a LeRobotDataset v3 directory as a new demonstration cache")
    imp.add_argument("dir", type=Path, help="the LeRobot dataset (meta/info.json, data/, videos/)")
    imp.add_argument("--out", type=Path, required=True, help="the demonstration cache to create")
    imp.add_argument("--source", choices=("human", "expert", "policy"),
                     help="who acted (default: as the dataset records it, else expert)")
    imp.add_argument("--cameras", help="comma-separated cameras to import (default: all); NAME=RILL renames "
                     "one (LeRobot's Meta-World datasets: --cameras image=corner2)")
    imp.add_argument("--assume-success", action="store_true",
                     help="mark each episode successful when the dataset has no next.success")
    imp.set_defaults(func=cmd_import)
