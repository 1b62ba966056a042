"""The embedded backend: every worker is a local process of this machine. The default."""

from __future__ import annotations

import os
from collections.abc import Sequence

from hal.backends import Backend, PollResult
from hal.config import RobotConfig
from hal.host import Host, Inventory
from hal.placement import Assignment
from hal.process import WorkerProcess
from hal.worker import ENV_ROBOT


class EmbeddedBackend(Backend):
    """Runs workers as child processes on this host; robots of other hosts are unreachable."""

    name = "embedded"

    def inventory(self, robots: Sequence[RobotConfig]) -> Inventory:
        host = Host.local(robots, self.leases)
        unreachable = {
            r.name: f"robot {r.name!r} is attached to host {r.host!r}; the embedded backend "
            f"runs only on this host ({host.name}); use backend: ray"
            for r in robots
            if r.host not in (None, host.name)
        }
        return Inventory([host], unreachable)

    def start(
        self,
        argv: list[str],
        env: dict[str, str],
        assignment: Assignment,
        heartbeat_file: str,
        log_file: str,
        holder: str,
        files: dict[str, str] | None = None,
    ) -> WorkerProcess:
        base = {k: v for k, v in os.environ.items() if k != ENV_ROBOT}  # only an actor gets a robot
        env = {**base, **env}
        if assignment.gpu_index is not None:
            env["CUDA_VISIBLE_DEVICES"] = str(assignment.gpu_index)  # the worker sees it as cuda:0
        return WorkerProcess(
            argv, env, heartbeat_file, log_file, str(self.leases.directory), holder, assignment.robot, files
        )

    def poll(self, handles: Sequence[WorkerProcess]) -> list[PollResult]:
        return [h.poll() for h in handles]

    def pid(self, handle: WorkerProcess) -> int | None:
        return handle.pid

    def terminate(self, handle: WorkerProcess) -> None:
        handle.terminate()

    def kill(self, handle: WorkerProcess) -> None:
        handle.kill()

    def release(self, handle: WorkerProcess) -> int:
        return handle.release()
