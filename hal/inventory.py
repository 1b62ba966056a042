"""The inventory ``rill hal list`` shows: hosts, accelerators, robots, their health and lease holders.

Robots come from the run spec files given, then from discovery (``rill.discovery`` entry points);
the caller registers any robot types it ships (``import sim.robots``) before asking.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hal.config import RobotConfig
from hal.host import Host
from hal.leases import LeaseStore
from hal.registry import discover_robots
from hal.runspec import RunSpec


def _robots(configs: list[Path]) -> list[tuple[RobotConfig, str]]:
    """Robots from run spec files, then discovered ones not already named; with where each came from."""
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
