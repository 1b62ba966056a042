"""Where workers run: the embedded backend (local processes, the default) or Ray.

A backend reports an inventory and starts, watches and stops worker processes; placement and
supervision (``hal.placement``, ``hal.scheduler``) are the same code for both.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from hal.config import RobotConfig
from hal.host import Inventory
from hal.leases import LeaseStore
from hal.placement import Assignment
from hal.runspec import RunSpec

#: What ``Backend.poll`` reports per worker: exit status (``None``: running) and a new heartbeat.
PollResult = tuple[int | None, dict[str, Any] | None]


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
    ) -> Any:
        """Start one worker process as ``assignment`` says; return its handle."""

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

    def close(self) -> None:
        """Give back whatever the backend holds (Ray: the connection it opened)."""


def make_backend(spec: RunSpec, leases: LeaseStore | None = None) -> Backend:
    """The backend ``spec.backend`` names."""
    if spec.backend == "ray":
        from hal.backends.ray import RayBackend

        return RayBackend(spec.robots, address=spec.ray_address, leases=leases)
    from hal.backends.embedded import EmbeddedBackend

    return EmbeddedBackend(leases=leases)
