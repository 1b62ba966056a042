"""Where workers run: the embedded backend (local processes, the default) or Ray.

A backend reports an inventory and starts, watches and stops worker processes; placement and
supervision (``hal.placement``, ``hal.scheduler``) are the same code for both.

Where a worker keeps its data is the backend's to say (``worker_dirs``): the embedded backend keeps
one run directory for the whole run; under Ray a worker on another node keeps its run directory on
that node (hosts share no disk), gets its configuration with its start (``files``), and what the
run's summary needs is fetched from there (``gather``).
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hal.config import RobotConfig
from hal.host import Inventory
from hal.leases import LeaseStore
from hal.placement import Assignment
from hal.runspec import RunSpec

#: A robot as a Ray custom resource: ``robot:<name>``, of amount 1, on the node it is attached to.
ROBOT_RESOURCE_PREFIX = "robot:"

#: What ``Backend.poll`` reports per worker: exit status (``None``: running) and a new heartbeat.
PollResult = tuple[int | None, dict[str, Any] | None]


@dataclass(frozen=True)
class WorkerDirs:
    """Where one worker keeps its data, as paths on the host it runs on."""

    run_dir: str  # the run's directory on that host (its cache, spool, checkpoints, metrics, logs)
    lease_dir: str  # that host's robot leases
    shared: bool = True  # the scheduler's own run directory (nothing to gather from it)


class Backend(abc.ABC):
    """Runs workers somewhere. ``handle`` objects are the backend's own."""

    name: str = ""

    def __init__(self, leases: LeaseStore | None = None) -> None:
        self.leases = leases or LeaseStore()

    @abc.abstractmethod
    def inventory(self, robots: Sequence[RobotConfig]) -> Inventory:
        """The hosts this backend may place work on, with ``robots`` located and probed."""

    @abc.abstractmethod
    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        assignment: Assignment,
        heartbeat_file: str,
        log_file: str,
        holder: str,
        files: dict[str, str] | None = None,
    ) -> Any:
        """Start one worker process as ``assignment`` says, first writing ``files`` (path on its host:
        text); return its handle."""

    @abc.abstractmethod
    def poll(self, handles: Sequence[Any]) -> list[PollResult]:
        """Exit status and new heartbeat of each handle, in order."""

    @abc.abstractmethod
    def pid(self, handle: Any) -> int | None: ...

    @abc.abstractmethod
    def terminate(self, handle: Any) -> None:
        """Ask the worker to stop (SIGTERM)."""

    @abc.abstractmethod
    def kill(self, handle: Any) -> None:
        """SIGKILL the worker."""

    @abc.abstractmethod
    def release(self, handle: Any) -> int:
        """Reap an exited (or kill a live) worker, free what it held; return its exit status."""

    def discover(self) -> list[RobotConfig]:
        """Robots the discovery plugins find where this backend places work (default: this machine)."""
        from hal.registry import discover_robots

        return discover_robots()

    def worker_dirs(self, host: str, run: str, run_dir: Path) -> WorkerDirs:
        """Where a worker of run ``run`` placed on ``host`` keeps its data (default: the scheduler's
        own run directory and lease store: one file system)."""
        return WorkerDirs(str(Path(run_dir).resolve()), str(self.leases.directory.resolve()))

    def address(self, host: str) -> str:
        """The address by which other hosts reach ``host`` (one machine: loopback)."""
        return "127.0.0.1"

    def free_port(self, host: str) -> int:
        """A TCP port free on ``host`` now (for a learner placed there to bind)."""
        return free_tcp_port()

    def host_alive(self, host: str) -> bool:
        """False once ``host`` is known to be gone (a lost Ray node); this machine is always there."""
        return True

    def gather(self, host: str, root: str, patterns: Sequence[str], max_bytes: int) -> dict[str, bytes]:
        """Files under ``root`` on ``host`` matching ``patterns`` (relative path: bytes, each at most
        ``max_bytes``); nothing when ``host`` shares the scheduler's disk."""
        return {}

    def close(self) -> None:
        """Give back whatever the backend holds (Ray: the connection it opened)."""


def free_tcp_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (the OS picks it)."""
    import socket

    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def make_backend(spec: RunSpec, leases: LeaseStore | None = None) -> Backend:
    """The backend ``spec.backend`` names."""
    if spec.backend == "ray":
        from hal.backends.ray import RayBackend

        return RayBackend(spec.robots, address=spec.ray_address, leases=leases)
    from hal.backends.embedded import EmbeddedBackend

    return EmbeddedBackend(leases=leases)
