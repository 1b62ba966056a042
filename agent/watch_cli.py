"""``rill watch STATUS_FILE_OR_RUN_DIR``: the live view of an ``agent_node`` for the person
supervising the robot (``agent.supervision_view``)."""

from __future__ import annotations

import argparse
from pathlib import Path


def cmd_watch(args: argparse.Namespace) -> int:
    from rich.console import Console

    from agent.supervision_view import watch

    if args.refresh <= 0:
        raise SystemExit(f"rill watch: --refresh must be > 0 seconds, got {args.refresh}")
    try:
        watch(Path(args.target), Console(), actor=args.actor, refresh_s=args.refresh, frames=args.frames)
    except KeyboardInterrupt:
        pass
    return 0


def add_watch_commands(sub) -> None:
    w = sub.add_parser("watch", help="live view of an agent_node learning on a robot (its status file)")
    w.add_argument("target", help="agent_node's status file, or its learner.run_dir "
                                  "(actors/<actor_id>/status.json in it)")
    w.add_argument("--actor", help="in a run directory: the actor to watch (default: the latest written)")
    w.add_argument("--refresh", type=float, default=0.5, help="seconds between refreshes (default 0.5)")
    w.add_argument("--frames", type=int, help="stop after this many refreshes (default: until Ctrl-C)")
    w.set_defaults(func=cmd_watch)
