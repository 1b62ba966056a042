"""``rill hal list``: hosts, accelerators, robots, their health and lease holders, as rich tables.

Also ``worker_table``, the table of a run's workers that ``rill run`` (live) and ``rill status``
show from ``hal.scheduler.Scheduler.status()`` or a run's ``status.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hal.config import RobotConfig
from hal.host import Host
from hal.leases import LeaseStore
from hal.registry import discover_robots
from hal.runspec import RunSpec


def _robots(configs: list[Path]) -> list[tuple[RobotConfig, str]]:
    """Robots from run spec files, then discovered ones not already named; with where each came from."""
    import sim.robots  # noqa: F401  registers rill's simulated robots even without entry points

    out: list[tuple[RobotConfig, str]] = []
    names: set[str] = set()
    for path in configs:
        spec = RunSpec.from_yaml(path, ignore=_OTHER_SECTIONS)
        for robot in spec.robots:
            if robot.name not in names:
                out.append((robot, path.name))
                names.add(robot.name)
    for robot in discover_robots():
        if robot.name not in names:
            out.append((robot, "discovered"))
            names.add(robot.name)
    return out


# Top-level sections of a run config that belong to the learner and actors, not to the scheduler.
_OTHER_SECTIONS = ("train", "learner_config", "actor_config", "policy", "cache", "transport")


def inventory_report(configs: list[Path], leases: LeaseStore | None = None) -> dict[str, Any]:
    """What ``rill hal list`` shows, as plain data (also its ``--json`` output)."""
    leases = leases or LeaseStore()
    robots = _robots(configs)
    host = Host.local([r for r, _ in robots], leases)
    source = {r.name: src for r, src in robots}
    rows = []
    for state in host.robots:
        lease = leases.read(state.name)
        rows.append(
            {
                "name": state.name,
                "type": state.type,
                "host": state.host,
                "source": source[state.name],
                "health": state.health.status,
                "ok": state.health.ok,
                "detail": state.health.detail,
                "holder": lease.holder if lease and not lease.expired() else None,
                "lease_remaining_s": round(lease.remaining_s(), 1) if lease and not lease.expired() else None,
            }
        )
    for robot, src in robots:
        if robot.host not in (None, host.name):
            rows.append(
                {
                    "name": robot.name,
                    "type": robot.type,
                    "host": robot.host,
                    "source": src,
                    "health": "remote",
                    "ok": None,
                    "detail": "attached to another host",
                    "holder": None,
                    "lease_remaining_s": None,
                }
            )
    known = {r["name"] for r in rows}
    for lease in leases.leases():
        if lease.resource not in known:  # leased by a run whose config was not given
            rows.append(
                {
                    "name": lease.resource,
                    "type": "?",
                    "host": lease.host,
                    "source": "lease",
                    "health": "unknown",
                    "ok": None,
                    "detail": "",
                    "holder": lease.holder,
                    "lease_remaining_s": round(lease.remaining_s(), 1),
                }
            )
    return {
        "hosts": [host.to_dict() | {"cpu_percent": host.cpu_percent}],
        "robots": rows,
        "lease_dir": str(leases.directory),
    }


def render_inventory(report: dict[str, Any], console: Console) -> None:
    hosts = Table(title="Hosts")
    for col in ("host", "CPUs", "CPU use", "memory free / total", "GPUs"):
        hosts.add_column(col, justify="left" if col == "host" else "right")
    for h in report["hosts"]:
        use = "" if h.get("cpu_percent") is None else f"{h['cpu_percent']:.0f}%"
        hosts.add_row(
            h["name"],
            f"{h['cpus']:g}",
            use,
            f"{h['memory_available_gb']:.1f} / {h['memory_total_gb']:.1f} GB",
            str(len(h["accelerators"])),
        )
    console.print(hosts)

    gpus = Table(title="Accelerators")
    for col in ("host", "device", "name", "memory free / total"):
        gpus.add_column(col)
    for h in report["hosts"]:
        for a in h["accelerators"]:
            gpus.add_row(
                h["name"],
                f"{a['kind']}:{a['index']}",
                a["name"],
                f"{a['memory_free_gb']:.1f} / {a['memory_total_gb']:.1f} GB",
            )
    if not gpus.rows:
        gpus.add_row("[dim]none[/dim]", "", "[dim]no CUDA GPU found; learners run on CPU[/dim]", "")
    console.print(gpus)

    robots = Table(title="Robots")
    for col in ("robot", "type", "host", "from", "health", "lease holder", "expires in"):
        robots.add_column(col, no_wrap=col in ("robot", "type", "health"))
    for r in report["robots"]:
        style = {True: "green", False: "red"}.get(r["ok"], "yellow")
        health = f"[{style}]{r['health']}[/{style}]"
        if r["detail"] and r["ok"] is not True:  # say why only when something is wrong
            health += f"\n[dim]{r['detail']}[/dim]"
        remaining = "" if r["lease_remaining_s"] is None else f"{r['lease_remaining_s']:.1f} s"
        robots.add_row(
            r["name"], r["type"], r["host"], r["source"], health, r["holder"] or "[dim]free[/dim]", remaining
        )
    console.print(robots)


def worker_table(status: dict[str, Any] | list, title: str = "Workers") -> Table:
    """A run's workers: ``status`` is a run's ``status.json`` dict or ``Scheduler.status()``."""
    from dataclasses import asdict, is_dataclass

    workers = (
        status.get("workers", [])
        if isinstance(status, dict)
        else [asdict(w) if is_dataclass(w) else w for w in status]
    )
    table = Table(title=title)
    for col in (
        "worker",
        "role",
        "state",
        "host",
        "robot",
        "device",
        "pid",
        "restarts",
        "moves",
        "heartbeat",
        "progress",
        "detail",
    ):
        table.add_column(col)
    colors = {
        "running": "green",
        "starting": "cyan",
        "backoff": "yellow",
        "stopping": "yellow",
        "failed": "red",
        "done": "blue",
        "stopped": "dim",
    }
    for w in workers:
        color = colors.get(w["state"], "white")
        age = w.get("heartbeat_age_s")
        progress = ", ".join(f"{k}={v}" for k, v in (w.get("progress") or {}).items())
        table.add_row(
            w["name"],
            w["role"],
            f"[{color}]{w['state']}[/{color}]",
            w["host"],
            w["robot"] or "",
            w["device"],
            str(w["pid"] or ""),
            str(w["restarts"]),
            str(w["moves"]),
            "" if age is None else f"{age:.1f} s ago",
            progress,
            w.get("detail") or "",
        )
    return table


def cmd_hal_list(args: argparse.Namespace) -> int:
    leases = LeaseStore(args.lease_dir) if args.lease_dir else LeaseStore()
    report = inventory_report(list(args.config or []), leases)
    if args.json:
        sys.stdout.write(json.dumps(report, indent=1) + "\n")
    else:
        render_inventory(report, Console())
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
