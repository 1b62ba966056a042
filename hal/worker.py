"""The worker side of the scheduler: what every learner or actor process uses.

The scheduler starts a worker with its identity in the environment (``RILL_WORKER_NAME``,
``RILL_HEARTBEAT_FILE``, ``RILL_ROBOT`` …). ``WorkerContext.from_env()`` reads it back. A
well-behaved worker:

1. calls ``ctx.beat(**progress)`` often (every control tick is fine: it writes at most once per
   ``heartbeat.interval_s``); a worker silent for ``heartbeat.timeout_s`` is killed and restarted;
2. if it drives a robot, opens it with ``ctx.open_robot()``, which takes the robot's lease (renewed
   by ``beat``) and connects it; ``beat`` reports the robot's health, and when the robot is
   unhealthy ``beat`` stops it safely (hold, disconnect, release the lease) and exits the process
   with ``EXIT_ROBOT_FAULT`` so that the scheduler moves the worker to a spare robot;
3. stops cleanly when ``ctx.stop_requested`` is set (SIGTERM or SIGINT): leaving the ``with ctx:``
   block holds and disconnects the robot and releases its lease;
4. exits 0 when its work is done (it is then not restarted), anything else when it failed (it is
   restarted with backoff); it keeps whatever must survive a restart (e.g. its next sequence
   number) in its own durable files, found through ``ctx.run_dir`` and ``ctx.name``.

Heartbeats are a small JSON file replaced atomically (write, rename): cheap, readable by any local
process, and usable unchanged under Ray, where a process on the worker's node relays it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.config import RobotConfig
from hal.leases import Lease, LeaseStore
from hal.robot import Robot, RobotError, RobotHealth

log = logging.getLogger(__name__)

#: Exit status of a worker that stopped because its robot is unhealthy (move me, do not restart).
EXIT_ROBOT_FAULT = 75

ENV_NAME = "RILL_WORKER_NAME"
ENV_ROLE = "RILL_WORKER_ROLE"
ENV_RUN = "RILL_RUN"
ENV_RUN_DIR = "RILL_RUN_DIR"
ENV_INCARNATION = "RILL_INCARNATION"
ENV_HEARTBEAT_FILE = "RILL_HEARTBEAT_FILE"
ENV_HEARTBEAT_INTERVAL = "RILL_HEARTBEAT_INTERVAL"
ENV_LEASE_TTL = "RILL_LEASE_TTL"
ENV_LEASE_DIR = "RILL_LEASE_DIR"
ENV_ROBOT = "RILL_ROBOT"
ENV_DEVICE = "RILL_DEVICE"


def heartbeat_path(run_dir: str | Path, worker: str) -> Path:
    return Path(run_dir) / "workers" / f"{worker}.heartbeat.json"


def lease_holder(run: str, worker: str, incarnation: int) -> str:
    """The holder name a worker takes leases under: unique per incarnation."""
    return f"{run}/{worker}#{incarnation}"


def read_heartbeat(path: str | Path) -> dict[str, Any] | None:
    """The last heartbeat written to ``path``, or ``None`` if there is none yet."""
    try:
        return json.loads(Path(path).read_bytes())
    except (FileNotFoundError, ValueError):
        return None


def _health_dict(health: RobotHealth) -> dict[str, Any]:
    return {
        "ok": health.ok,
        "status": health.status,
        "detail": health.detail,
        "watchdog_trips": health.watchdog_trips,
        "clamped_actions": health.clamped_actions,
    }


class Heartbeat:
    """Writes ``{"beat": n, "time": …, "pid": …, **fields}`` to ``path`` at most every ``interval_s``."""

    def __init__(
        self, path: str | Path, interval_s: float = 0.25, identity: dict[str, Any] | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.interval_s = interval_s
        self.identity = {"pid": os.getpid(), "host": socket.gethostname(), **(identity or {})}
        self.beats = 0
        self._last = float("-inf")  # the first beat is always due

    def due(self, now: float | None = None) -> bool:
        return (time.monotonic() if now is None else now) - self._last >= self.interval_s

    def beat(self, force: bool = False, **fields: Any) -> bool:
        """Write a beat carrying ``fields`` if one is due (or ``force``); return whether it wrote."""
        now = time.monotonic()
        if not force and now - self._last < self.interval_s:
            return False
        self._last = now
        self.beats += 1
        payload = {**self.identity, "beat": self.beats, "time": time.time(), **fields}
        self._tmp.write_text(json.dumps(payload, default=str))
        os.replace(self._tmp, self.path)
        return True


class RobotFaultExit(SystemExit):
    """Raised by ``WorkerContext`` after stopping a faulted robot safely: exits with EXIT_ROBOT_FAULT."""

    def __init__(self, robot: str, detail: str) -> None:
        super().__init__(EXIT_ROBOT_FAULT)
        self.robot, self.detail = robot, detail


@dataclass
class WorkerContext:
    """A worker's identity, heartbeat, robot and lease, as the scheduler set them up."""

    name: str
    role: str
    run: str
    run_dir: Path
    incarnation: int
    heartbeat: Heartbeat
    robot_config: RobotConfig | None = None
    robot_class: str | None = None
    device: str = "cpu"
    lease_ttl_s: float = 5.0
    leases: LeaseStore = field(default_factory=LeaseStore)
    state: str = "starting"
    robot: Robot | None = None
    lease: Lease | None = None
    stop_requested: threading.Event = field(default_factory=threading.Event)
    _progress: dict[str, Any] = field(default_factory=dict)
    _renewed: float = 0.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, handle_signals: bool = True) -> WorkerContext:
        """Read the worker's setup from the environment the scheduler started it with."""
        env = os.environ if environ is None else environ
        missing = [k for k in (ENV_NAME, ENV_RUN_DIR, ENV_HEARTBEAT_FILE) if not env.get(k)]
        if missing:
            raise RuntimeError(f"not started by the rill scheduler: {', '.join(missing)} unset")
        robot_config, robot_class = None, None
        if env.get(ENV_ROBOT):
            data = json.loads(env[ENV_ROBOT])
            robot_class = data.pop("class", None)
            robot_config = RobotConfig(**data)
        name = env[ENV_NAME]
        incarnation = int(env.get(ENV_INCARNATION, "0"))
        role = env.get(ENV_ROLE, "worker")
        hb = Heartbeat(
            env[ENV_HEARTBEAT_FILE],
            float(env.get(ENV_HEARTBEAT_INTERVAL, "0.25")),
            {"worker": name, "role": role, "incarnation": incarnation},
        )
        ctx = cls(
            name=name,
            role=role,
            run=env.get(ENV_RUN, "run"),
            run_dir=Path(env[ENV_RUN_DIR]),
            incarnation=incarnation,
            heartbeat=hb,
            robot_config=robot_config,
            robot_class=robot_class,
            device=env.get(ENV_DEVICE, "cpu"),
            lease_ttl_s=float(env.get(ENV_LEASE_TTL, "5")),
            leases=LeaseStore(env.get(ENV_LEASE_DIR) or None),
        )
        if handle_signals:
            ctx.install_signal_handlers()
        return ctx

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT set ``stop_requested`` instead of killing the process mid-step."""

        def request_stop(signum, frame) -> None:
            self.stop_requested.set()

        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)

    @property
    def holder(self) -> str:
        return lease_holder(self.run, self.name, self.incarnation)

    # -- robot ---------------------------------------------------------------------------------
    def open_robot(self, wait_s: float | None = None) -> Robot:
        """Lease the assigned robot, build it from its config, connect it, and return it.

        Waits up to ``wait_s`` (default: one lease TTL) for a previous holder's lease to expire.
        """
        from hal.registry import load_class_path, make_robot, robot_types

        if self.robot_config is None:
            raise RobotError(f"worker {self.name!r} has no robot assigned")
        if self.robot_class and self.robot_config.type not in robot_types():
            load_class_path(self.robot_class)  # the parent knew the class; this process may not
        self.lease = self.leases.acquire(
            self.robot_config.name,
            self.holder,
            self.lease_ttl_s,
            wait_s=self.lease_ttl_s + 1 if wait_s is None else wait_s,
        )
        self._renewed = time.monotonic()
        try:
            robot = make_robot(self.robot_config)
            robot.connect()
        except BaseException:
            self.leases.release(self.lease)
            self.lease = None
            raise
        self.robot = robot
        self.state = "running"
        self.beat(force=True)
        return robot

    def _robot_status(self) -> dict[str, Any] | None:
        if self.robot is None:
            return None
        return {"name": self.robot.name, **_health_dict(self.robot.health())}

    def stop_for_robot_fault(self, detail: str | None = None) -> None:
        """Hold and disconnect the robot, release its lease, report it, and exit with EXIT_ROBOT_FAULT."""
        robot = self.robot
        name = robot.name if robot else (self.robot_config.name if self.robot_config else "")
        health = robot.health() if robot is not None else None
        detail = detail or (health.detail if health else "robot fault")
        log.warning("worker %s: robot %s is unhealthy (%s); stopping it safely", self.name, name, detail)
        status = {"name": name, **_health_dict(health)} if health else {"name": name, "ok": False}
        status.update(ok=False, status="fault", detail=detail)
        self._close_robot()
        self.state = "robot-fault"
        self.heartbeat.beat(force=True, state=self.state, robot=status, progress=self._progress)
        raise RobotFaultExit(name, detail)

    def _close_robot(self) -> None:
        if self.robot is not None:
            try:
                self.robot.disconnect()  # holds position first
            except Exception as e:
                log.error("worker %s: disconnecting robot %s failed: %s", self.name, self.robot.name, e)
            self.robot = None
        if self.lease is not None:
            self.leases.release(self.lease)
            self.lease = None

    # -- heartbeat -----------------------------------------------------------------------------
    def beat(self, force: bool = False, **progress: Any) -> bool:
        """Report liveness and ``progress``; renew the robot lease; act on an unhealthy robot."""
        if progress:
            self._progress.update(progress)
        if not force and not self.heartbeat.due():
            return False
        robot = self._robot_status()
        if robot is not None and not robot["ok"]:
            self.stop_for_robot_fault(robot["detail"] or robot["status"])
        self._renew_lease()
        if self.state == "starting":
            self.state = "running"
        return self.heartbeat.beat(
            force=True, state=self.state, robot=robot, progress=self._progress, device=self.device
        )

    def _renew_lease(self) -> None:
        if self.lease is not None and time.monotonic() - self._renewed > self.lease_ttl_s / 3:
            self.lease = self.leases.renew(self.lease)
            self._renewed = time.monotonic()

    @contextlib.contextmanager
    def busy(self, what: str) -> Iterator[None]:
        """Keep beating from a thread while the worker does one long piece of work it cannot
        interleave with beats (compiling kernels, loading a model): the scheduler's heartbeat
        timeout is for a worker that stopped, not for one that starts slowly on a loaded machine.

        The thread only reports liveness (and renews the robot lease); the robot's health is
        checked again by the first beat after the work.
        """
        done = threading.Event()

        def keep_alive() -> None:
            while not done.wait(self.heartbeat.interval_s):
                self._renew_lease()
                self.heartbeat.beat(force=True, state=self.state, progress=self._progress, device=self.device)

        thread = threading.Thread(target=keep_alive, name=f"{self.name}-busy", daemon=True)
        self.beat(force=True, busy=what)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self._progress.pop("busy", None)

    # -- lifetime ------------------------------------------------------------------------------
    def __enter__(self) -> WorkerContext:
        self.beat(force=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if isinstance(exc, RobotError) and self.robot is not None:
            self.stop_for_robot_fault(str(exc))  # raises RobotFaultExit in place of the error
        self._close_robot()
        if self.state != "robot-fault":
            self.state = (
                "stopped" if exc is None or (isinstance(exc, SystemExit) and not exc.code) else "failed"
            )
            self.heartbeat.beat(force=True, state=self.state, progress=self._progress)
        return False
