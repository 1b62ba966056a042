"""A worker as the scheduler supervises it: its states and what the scheduler keeps about it.

``SupervisedWorker`` is one worker's record between sweeps (its spec and placement, the state it is
in, its current process handle and incarnation, its restarts and moves, its last heartbeat);
``worker_env`` what its process finds in its environment (read back by ``hal.worker``);
``spare_robots`` the choice of where an actor whose robot faulted may go.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from hal.accelerators import STANDIN
from hal.backends import WorkerDirs
from hal.config import RobotConfig
from hal.placement import Assignment
from hal.registry import class_path, robot_class
from hal.run_status import WorkerStatus
from hal.runspec import HeartbeatPolicy, WorkerSpec
from hal.worker import (
    ENV_DEVICE,
    ENV_HEARTBEAT_FILE,
    ENV_HEARTBEAT_INTERVAL,
    ENV_INCARNATION,
    ENV_LEASE_DIR,
    ENV_LEASE_TTL,
    ENV_NAME,
    ENV_ROBOT,
    ENV_ROLE,
    ENV_RUN,
    ENV_RUN_DIR,
    heartbeat_path,
)

# Worker states.
STARTING, RUNNING, STOPPING, BACKOFF, DONE, FAILED, STOPPED = (
    "starting",
    "running",
    "stopping",
    "backoff",
    "done",
    "failed",
    "stopped",
)
TERMINAL = (DONE, FAILED, STOPPED)


@dataclass
class SupervisedWorker:
    spec: WorkerSpec
    assignment: Assignment
    state: str = STARTING
    handle: Any = None
    incarnation: int = -1
    restarts: int = 0
    moves: int = 0
    started: float = 0.0
    last_beat: int = -1
    last_seen: float | None = None
    heartbeat: dict[str, Any] = field(default_factory=dict)
    next_start: float = 0.0
    stop_deadline: float | None = None
    stop_reason: str = ""  # "robot-fault", "stop" or "" while the scheduler wants it running
    detail: str = ""
    dirs: WorkerDirs | None = None  # where its current incarnation keeps its data
    gathered_from: str | None = None  # the host its files in the run directory were last copied from

    def status(self, now: float, pid: int | None) -> WorkerStatus:
        """This worker as the status table shows it (``now``: the monotonic clock of ``last_seen``)."""
        robot = (self.heartbeat.get("robot") or {}) if self.heartbeat else {}
        a = self.assignment
        return WorkerStatus(
            self.spec.name,
            self.spec.role,
            self.state,
            a.host,
            a.robot,
            a.device,
            pid,
            self.incarnation,
            self.restarts,
            self.moves,
            None if self.last_seen is None else now - self.last_seen,
            dict(self.heartbeat.get("progress") or {}),
            robot.get("status", ""),
            self.detail,
        )


def spare_robots(worker: SupervisedWorker, robots: list, busy: set, faulted: dict[str, str]) -> list:
    """The robots of ``robots`` (an inventory's) that ``worker``, an actor whose robot faulted, may
    move to: of its robot's type, available, not busy with another worker, not faulted, on a host its
    request allows; the same host first, then by host and name."""
    old = worker.assignment
    hosts = worker.spec.request.hosts
    return sorted(
        (
            r
            for r in robots
            if r.type == old.robot_type
            and r.available
            and r.name not in busy
            and r.name not in faulted
            and (hosts is None or r.host in hosts)
        ),
        key=lambda r: (r.host != old.host, r.host, r.name),
    )


def worker_env(
    w: SupervisedWorker, dirs: WorkerDirs, run: str, heartbeat: HeartbeatPolicy,
    robot: RobotConfig | None = None,
) -> dict[str, str]:
    """What worker ``w`` of run ``run`` finds in its environment, beside the backend's own (see
    ``hal.worker``); ``robot`` is the ``RobotConfig`` of the robot it is placed on, if any."""
    a = w.assignment
    env = {
        **w.spec.env,
        ENV_NAME: w.spec.name,
        ENV_ROLE: w.spec.role,
        ENV_RUN: run,
        ENV_RUN_DIR: dirs.run_dir,
        ENV_INCARNATION: str(w.incarnation),
        ENV_HEARTBEAT_FILE: str(heartbeat_path(dirs.run_dir, w.spec.name)),
        ENV_HEARTBEAT_INTERVAL: str(heartbeat.interval_s),
        ENV_LEASE_TTL: str(heartbeat.lease_ttl_s),
        ENV_LEASE_DIR: dirs.lease_dir,
        # the worker sees its GPU as cuda:0 (a stand-in accelerator computes on the CPU)
        ENV_DEVICE: "cuda:0" if a.gpu_index is not None and not a.device.startswith(STANDIN) else "cpu",
    }
    if robot is not None:
        env[ENV_ROBOT] = json.dumps({**robot.to_dict(), "class": class_path(robot_class(robot.type))})
    return env
