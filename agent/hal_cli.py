"""``rill hal list``: hosts, accelerators, robots, their health and lease holders, as rich tables;
``rill hal ray-resources``: this machine's discovered robots as Ray custom resources, for
``ray start --resources="$(rill hal ray-resources)"``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_hal_list(args: argparse.Namespace) -> int:
    from rich.console import Console

    import sim.robots  # noqa: F401  registers rill's simulated robots even without entry points
    from agent.console import render_inventory
    from hal.inventory import inventory_report
    from hal.leases import LeaseStore

    leases = LeaseStore(args.lease_dir) if args.lease_dir else LeaseStore()
    report = inventory_report(list(args.config or []), leases)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    else:
        render_inventory(report, Console())
    return 0


def cmd_hal_ray_resources(args: argparse.Namespace) -> int:
    import sim.robots  # noqa: F401  registers rill's simulated robots even without entry points
    from hal.backends import ROBOT_RESOURCE_PREFIX as RESOURCE_PREFIX  # without importing Ray
    from hal.registry import discover_robots

    robots = [r.name for r in discover_robots()]
    skip = set(args.exclude or [])
    unknown = skip - set(robots)
    if unknown:
        print(f"rill hal ray-resources: --exclude names robots not discovered here: {sorted(unknown)}; "
              f"discovered: {sorted(robots)}", file=sys.stderr)
        return 2
    sys.stdout.write(json.dumps({RESOURCE_PREFIX + name: 1 for name in robots if name not in skip}) + "\n")
    return 0


def add_hal_commands(subparsers: argparse._SubParsersAction) -> None:
    """Add ``rill hal list`` to the ``rill`` command line."""
    hal = subparsers.add_parser("hal", help="robots, GPUs and hosts: what there is and who uses it")
    hal_sub = hal.add_subparsers(dest="hal_command", required=True)
    ls = hal_sub.add_parser("list", help="hosts, accelerators, robots, health and lease holders")
    ls.add_argument(
        "--config",
        type=Path,
        action="append",
        help="a run spec YAML whose robots to include (repeatable); discovered robots are always shown",
    )
    ls.add_argument(
        "--lease-dir", type=Path, help="lease directory (default $RILL_HOME/leases or ~/.rill/leases)"
    )
    ls.add_argument("--json", action="store_true", help="print the inventory as JSON instead of tables")
    ls.set_defaults(func=cmd_hal_list)
    rr = hal_sub.add_parser("ray-resources", help="this machine's discovered robots as Ray resources (JSON), "
                            "for ray start --resources")
    rr.add_argument("--exclude", action="append", help="a discovered robot not to offer (repeatable)")
    rr.set_defaults(func=cmd_hal_ray_resources)
