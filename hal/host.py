"""What a machine has: CPUs, memory, accelerators, robots; and an inventory of many machines.

``Host.local(robots)`` measures this machine (psutil for CPU and memory, ``hal.accelerators`` for
GPUs) and states each robot attached to it: its health as its type can probe it without driving
it, and who leases it. An ``Inventory`` is the hosts a scheduler may place work on.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass, field

from hal.accelerators import Accelerator, detect_accelerators
from hal.config import RobotConfig
from hal.leases import Lease, LeaseStore
from hal.robot import RobotHealth

GIB = 1024**3


def local_host_name() -> str:
    return socket.gethostname()


@dataclass
class RobotState:
    """A robot in an inventory: its config, where it is, its health, and its lease if held."""

    config: RobotConfig
    host: str
    health: RobotHealth
    lease: Lease | None = None

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def type(self) -> str:
        return self.config.type

    @property
    def available(self) -> bool:
        """Healthy and not leased by anyone."""
        return self.health.ok and self.lease is None

    def why_unavailable(self) -> str:
        if not self.health.ok:
            return f"{self.health.status}: {self.health.detail}" if self.health.detail else self.health.status
        if self.lease is not None:
            return f"leased by {self.lease.holder!r} for {max(self.lease.remaining_s(), 0):.1f} s"
        return "available"


@dataclass
class Host:
    """One machine's inventory."""

    name: str
    cpus: float
    memory_total_gb: float
    memory_available_gb: float
    accelerators: list[Accelerator] = field(default_factory=list)
    robots: list[RobotState] = field(default_factory=list)
    cpu_percent: float | None = None

    @classmethod
    def local(
        cls, robots: Iterable[RobotConfig] = (), leases: LeaseStore | None = None, accelerators: bool = True
    ) -> Host:
        """This machine, with the robots of ``robots`` whose ``host`` is unset or this machine."""
        import psutil

        from hal.registry import probe_robot

        name = local_host_name()
        leases = leases or LeaseStore()
        vm = psutil.virtual_memory()
        states = [
            RobotState(r, name, probe_robot(r), leases.holder(r.name))
            for r in robots
            if r.host in (None, name)
        ]
        return cls(
            name=name,
            cpus=float(psutil.cpu_count() or 1),
            memory_total_gb=vm.total / GIB,
            memory_available_gb=vm.available / GIB,
            accelerators=detect_accelerators() if accelerators else [],
            robots=states,
            cpu_percent=psutil.cpu_percent(interval=None),
        )

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "cpus": self.cpus,
            "memory_total_gb": round(self.memory_total_gb, 2),
            "memory_available_gb": round(self.memory_available_gb, 2),
            "accelerators": [a.to_dict() for a in self.accelerators],
            "robots": [r.name for r in self.robots],
        }


@dataclass
class Inventory:
    """The hosts a scheduler may use, and robots it knows of but cannot reach (name -> why)."""

    hosts: list[Host]
    unreachable: dict[str, str] = field(default_factory=dict)

    @property
    def robots(self) -> list[RobotState]:
        return [r for h in self.hosts for r in h.robots]

    def host(self, name: str) -> Host | None:
        return next((h for h in self.hosts if h.name == name), None)
