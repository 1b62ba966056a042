"""What runs on each node of a Ray cluster for the Ray backend (``hal.backends.ray``).

The backend wraps these with ``ray.remote`` and calls them on a chosen node: ``probe_node`` (its
GPUs, the health and leases of its robots), ``discover_on_node`` (its discovery plugins' robots),
``read_files`` (a worker's small files, for ``gather``) and ``NodeWorker`` (a Ray actor that owns
one worker process there). Nothing here imports Ray: each runs as plain Python on its node.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from hal.backends import PollResult
from hal.config import RobotConfig
from hal.errors import ConfigError
from hal.host import Host
from hal.leases import LeaseStore
from hal.process import WorkerProcess
from hal.registry import class_path, load_class_path, robot_class, robot_types

log = logging.getLogger(__name__)


def probe_node(robots: list[dict], lease_dir: str | None) -> dict:
    """Runs on one node: its GPUs and the health and leases of the robots it hosts.

    Each robot dict is a ``RobotConfig`` plus the ``class`` path of its type, so that a node whose
    packaging metadata lacks a plugin's entry point can still load it.
    """
    configs = []
    for data in robots:
        data = dict(data)
        path = data.pop("class", None)
        if path and data["type"] not in robot_types():
            load_class_path(path)
        configs.append(RobotConfig(**{**data, "host": None}))
    leases = LeaseStore(lease_dir)  # None: this node's own ($RILL_HOME/leases)
    host = Host.local(configs, leases)
    return {
        "accelerators": host.accelerators,
        "robots": {r.name: (r.health, r.lease) for r in host.robots},
        "home": str(Path(os.environ.get("RILL_HOME") or Path.home() / ".rill").resolve()),
        "lease_dir": str(leases.directory.resolve()),
    }


def discover_on_node(advertised: list[str]) -> list[dict]:
    """Runs on one node: the robots its discovery plugins find there that the node advertises as
    Ray resources (a robot found but not advertised cannot be placed by Ray), each with its class."""
    from hal.registry import discover_robots

    return [with_class(r) for r in discover_robots() if r.name in advertised]


def read_files(root: str, patterns: list[str], max_bytes: int) -> dict[str, bytes]:
    """Runs on one node: the files under ``root`` matching ``patterns``; a log longer than
    ``max_bytes`` gives its tail, any other longer file is left out (and logged)."""
    base, out = Path(root), {}
    for pattern in patterns:
        for path in sorted(base.glob(pattern)):
            try:
                size = path.stat().st_size
                if not path.is_file():
                    continue
                if size > max_bytes and path.suffix != ".log":
                    log.warning("gather: %s is %d bytes, over %d: left on its node", path, size, max_bytes)
                    continue
                with open(path, "rb") as f:
                    f.seek(max(0, size - max_bytes))
                    out[str(path.relative_to(base))] = f.read()
            except OSError as e:  # a file that went away or cannot be read: the rest still come
                log.warning("gather: %s: %s", path, e)
    return out


def with_class(config: RobotConfig) -> dict:
    try:
        return {**config.to_dict(), "class": class_path(robot_class(config.type))}
    except ConfigError:
        return config.to_dict()  # an unknown type: the probe reports it


class NodeWorker:
    """A Ray actor that owns one worker process on its node."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        heartbeat_file: str,
        log_file: str,
        lease_dir: str | None,
        holder: str,
        robot: str | None,
        files: dict[str, str] | None = None,
    ) -> None:
        # This process's environment carries what Ray set for it (CUDA_VISIBLE_DEVICES for its GPU)
        # and what its node was started with (RILL_HOME).
        self.process = WorkerProcess(
            argv, {**os.environ, **env}, heartbeat_file, log_file, lease_dir, holder, robot, files
        )

    def pid(self) -> int:
        return self.process.pid

    def poll(self) -> PollResult:
        return self.process.poll()

    def terminate(self) -> None:
        self.process.terminate()

    def kill(self) -> None:
        self.process.kill()

    def release(self) -> int:
        return self.process.release()
