"""``rill cache info|verify|export DIR``: look into a replay cache from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import Progress

from agent.cache_view import field_table, info_tables, verify_tables
from learners.cache import CacheConfig, CacheError, ReplayCache
from learners.cache.export import IMAGE_MODES, export_parquet
from learners.cache.verify import verify_cache

EXPORT_FORMATS = ("parquet", "lerobot")


def add_cache_commands(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``cache info|verify|export`` on the ``rill`` CLI's subparsers."""
    cache = subparsers.add_parser("cache", help="inspect, verify or export a replay cache")
    commands = cache.add_subparsers(dest="cache_command", required=True)
    info = commands.add_parser("info", help="segments, records, consumers")
    info.add_argument("dir", type=Path)
    info.set_defaults(handler=cmd_info)
    verify = commands.add_parser("verify", help="check every checksum; exit 1 on damage")
    verify.add_argument("dir", type=Path)
    verify.set_defaults(handler=cmd_verify)
    export = commands.add_parser(
        "export", help="write the transitions to a Parquet file or the episodes as a LeRobot dataset"
    )
    export.add_argument("dir", type=Path)
    export.add_argument(
        "--out", type=Path, required=True,
        help="the Parquet file (parquet) or the new dataset directory (lerobot) to write",
    )
    export.add_argument(
        "--format",
        choices=EXPORT_FORMATS,
        default="parquet",
        help="parquet: one row per transition; lerobot: a LeRobotDataset v3 of the complete "
        "episodes, frames as MP4 (default: parquet)",
    )
    export.add_argument(
        "--images",
        choices=IMAGE_MODES,
        default="png",
        help="parquet: images as PNG bytes or as flat uint8 arrays (default: png)",
    )
    export.add_argument(
        "--fps", type=int, default=50,
        help="lerobot: frames per second when the cache does not record its control rate (default: 50)",
    )
    export.set_defaults(handler=cmd_export)
    return cache


def cmd_info(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    with ReplayCache(args.dir, CacheConfig(read_only=True)) as cache:
        stats = cache.stats()
        consumers = cache.consumers()
    for table in info_tables(args.dir, stats, consumers):
        console.print(table)
    return 0


def cmd_verify(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("verifying", total=None)
        report = verify_cache(args.dir, on_segment=lambda s: progress.advance(task))
    for table in verify_tables(args.dir, report):
        console.print(table)
    for problem in report.consumer_problems:
        console.print(f"[red]{problem}[/red]")
    verdict = "OK" if report.ok else "DAMAGED"
    console.print(
        f"{verdict}: {report.records} records in {len(report.segments)} segments, "
        f"{len(report.problems) + len(report.consumer_problems)} problem(s)"
    )
    return 0 if report.ok else 1


def cmd_export(args: argparse.Namespace, console: Console | None = None) -> int:
    console = console or Console()
    if getattr(args, "format", "parquet") == "lerobot":
        return _export_lerobot(args, console)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("exporting", total=None)
        summary = export_parquet(
            args.dir, args.out, images=args.images, on_rows=lambda n: progress.advance(task, n)
        )
    console.print(field_table(f"export {args.dir} -> {args.out}", [
        ("rows", str(summary.rows)),
        ("columns", str(len(summary.columns))),
        ("skipped (opaque bytes records)", str(summary.skipped_opaque))]))
    return 0


def _export_lerobot(args: argparse.Namespace, console: Console) -> int:
    from agent.demos.lerobot_export import export_lerobot

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("exporting episodes", total=None)
        summary = export_lerobot(args.dir, args.out, fps=args.fps,
                                 on_episode=lambda n: progress.advance(task, 1))
    console.print(field_table(f"export {args.dir} -> {args.out} (LeRobotDataset v3)", [
        ("episodes", str(summary.episodes)),
        ("frames", str(summary.frames)),
        ("tasks", str(summary.tasks)),
        ("fps", f"{summary.fps} (from {summary.fps_from})"),
        ("cameras", ", ".join(summary.cameras) or "none"),
        ("incomplete episodes left out", str(summary.skipped_incomplete))]))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rill")
    add_cache_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except (CacheError, OSError, ValueError) as exc:
        Console(stderr=True).print(f"[red]error:[/red] {type(exc).__name__}: {exc}")
        return 2


if __name__ == "__main__":
    sys.exit(main(["cache", *sys.argv[1:]] if sys.argv[1:2] != ["cache"] else sys.argv[1:]))
