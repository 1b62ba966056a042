"""The scheduler: place a run, start its workers, watch their heartbeats, restart and move them.

    scheduler = Scheduler(spec)                   # backend from spec.backend (embedded by default)
    placement = scheduler.place()                 # InfeasibleSpecError before anything starts
    scheduler.start(placement)
    scheduler.run()                               # supervise until every worker is done or failed

Supervision, one ``poll()`` at a time:

- a worker that exits 0 is done; one that exits otherwise, or is killed, or is silent longer than
  ``heartbeat.timeout_s`` (then it is SIGKILLed) has crashed: it restarts after a backoff that
  doubles up to ``restart.max_backoff_s``, at most ``restart.max_restarts`` times, then fails;
- an actor whose robot reports a fault (in its heartbeat, or by exiting with ``EXIT_ROBOT_FAULT``
  after stopping the robot safely) is stopped, the robot is set aside, and the actor moves at once
  to a spare healthy robot of the same type; with no spare it fails, saying so.

Each launch gets a new incarnation number; the worker keeps its own durable state, so a restart
continues where the last incarnation left off. A worker keeps that state where the backend says
(``Backend.worker_dirs``: the run directory, or under Ray the run's directory on the worker's own
node); its configuration files reach it with each start (``start(files=...)``), and ``gather()``
copies the small files a summary reads (metrics, episode logs, worker logs) from other nodes into
the run directory. A worker whose host is gone (a lost Ray node) is not restarted there: an actor
moves to a spare robot of its type on a live host, anything else fails, saying so. Events go to the log and to
``<run_dir>/events.jsonl``; ``<run_dir>/status.json`` holds the current state for ``rill status``
(both written by ``hal.run_status``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from hal.backends import Backend, make_backend
from hal.errors import ConfigError, InfeasibleSpecError
from hal.gather import gather_worker
from hal.leases import LeaseStore
from hal.placement import Placement, place
from hal.run_status import Event, RunStatusWriter, WorkerStatus, read_run_status
from hal.runspec import RunSpec
from hal.supervised import (
    BACKOFF,
    DONE,
    FAILED,
    RUNNING,
    STARTING,
    STOPPED,
    STOPPING,
    TERMINAL,
    SupervisedWorker,
    spare_robots,
    worker_env,
)
from hal.worker import EXIT_ROBOT_FAULT, heartbeat_path, lease_holder

log = logging.getLogger(__name__)

class Scheduler:
    """Places and supervises one run on one backend (``spec.backend`` unless one is given)."""

    def __init__(
        self,
        spec: RunSpec,
        backend: Backend | None = None,
        run_dir: str | Path | None = None,
        leases: LeaseStore | None = None,
        sweep_s: float = 0.05,
    ) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir) if run_dir is not None else spec.directory
        self.leases = leases or (backend.leases if backend else LeaseStore())
        self._owns_backend = backend is None  # a backend given to us is the giver's to close
        self.backend = backend or make_backend(spec, self.leases)
        self.sweep_s = sweep_s
        self.workers: dict[str, SupervisedWorker] = {}
        self.events: list[Event] = []
        self.faulted_robots: dict[str, str] = {}
        self.placement: Placement | None = None
        self._robots = list(spec.robots)
        self._discovered: list | None = None  # discovery's answer, asked once per placement
        #: ``(worker, host) -> reason`` a worker may not move to ``host`` ("" when it may); set by
        #: whoever knows what a move would break (``rill run``: a link kept on loopback).
        self.move_check: Callable[[str, str], str] | None = None
        self._record = RunStatusWriter(self.run_dir)
        self._started_at: float | None = None
        self.files: dict[str, dict[str, str]] = {}

    # -- placement -----------------------------------------------------------------------------
    def robots(self) -> list:
        """The run's robots: from its spec, plus discovered ones when ``spec.discover``."""
        robots = list(self._robots)
        if self.spec.discover:
            if self._discovered is None:
                self._discovered = self.backend.discover()
            names = {r.name for r in robots}
            robots += [r for r in self._discovered if r.name not in names]
        return robots

    def place(self) -> Placement:
        """Place every worker; ``InfeasibleSpecError`` says what is missing. Starts nothing."""
        self._discovered = None  # a new placement asks discovery again
        inventory = self.backend.inventory(self.robots())
        self.placement = place(self.spec, inventory, exclude_robots=self.faulted_robots)
        for note in self.placement.notes:
            log.warning("%s", note)
        return self.placement

    # -- starting ------------------------------------------------------------------------------
    def start(
        self, placement: Placement | None = None, files: dict[str, dict[str, str]] | None = None
    ) -> None:
        """Start every placed worker (placing first if needed). Commands are checked before any starts.

        ``files`` maps a worker group (``learner``, an actors group's name) to the files each of its
        workers needs (path relative to the run directory: text); they are written on the worker's
        host before each of its starts."""
        placement = placement or self.placement or self.place()
        self.placement = placement
        self.files = dict(files or {})
        for worker in placement.workers:
            if not worker.argv:
                raise ConfigError(
                    f"worker {worker.name!r} ({worker.role}) has no command to start it; "
                    "set learner.command / actors[].command (rill run does)"
                )
        (self.run_dir / "workers").mkdir(parents=True, exist_ok=True)
        self._started_at = time.time()
        for worker in placement.workers:
            w = SupervisedWorker(worker, placement.assignments[worker.name])
            self.workers[worker.name] = w
            self._launch(w)
        self._write_status(force=True)

    def _robot_config(self, name: str | None):
        return None if name is None else next(r for r in self.robots() if r.name == name)

    def _launch(self, w: SupervisedWorker) -> None:
        if not self.backend.host_alive(w.assignment.host):
            self._host_lost(w)
            return
        w.incarnation += 1
        dirs = w.dirs = self.backend.worker_dirs(w.assignment.host, self.spec.name, self.run_dir)
        argv = w.spec.command(self.spec.name, dirs.run_dir, w.assignment.robot)
        group_files = self.files.get(w.spec.group, {})
        files = {str(Path(dirs.run_dir) / rel): text for rel, text in group_files.items()}
        w.handle = self.backend.start(
            argv,
            worker_env(w, dirs, self.spec.name, self.spec.heartbeat, self._robot_config(w.assignment.robot)),
            w.assignment,
            str(heartbeat_path(dirs.run_dir, w.spec.name)),
            str(Path(dirs.run_dir) / "logs" / f"{w.spec.name}.log"),
            lease_holder(self.spec.name, w.spec.name, w.incarnation),
            files,
        )
        w.state, w.started, w.last_seen, w.last_beat = STARTING, time.monotonic(), None, -1
        w.stop_deadline, w.stop_reason, w.detail = None, "", ""
        where = f"on {w.assignment.host}" + (
            f" with robot {w.assignment.robot}" if w.assignment.robot else ""
        )
        self._event(w, "started", f"{where} ({w.assignment.device})")

    # -- supervision ---------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return bool(self.workers) and all(w.state in TERMINAL for w in self.workers.values())

    def poll(self) -> None:
        """One supervision sweep over every worker."""
        now = time.monotonic()
        for w in self.workers.values():
            if w.state == BACKOFF and now >= w.next_start:
                self._launch(w)
        live = [w for w in self.workers.values() if w.handle is not None]
        results = self.backend.poll([w.handle for w in live]) if live else []
        now = time.monotonic()
        hb = self.spec.heartbeat
        for w, (rc, beat) in zip(live, results):
            if (
                beat is not None
                and beat.get("incarnation") == w.incarnation
                and beat.get("beat") != w.last_beat
            ):
                w.last_beat, w.last_seen, w.heartbeat = beat.get("beat"), now, beat
                if w.state == STARTING:
                    w.state = RUNNING
                    self._event(w, "running", f"first heartbeat, pid {beat.get('pid')}")
                robot = beat.get("robot") or {}
                if robot and not robot.get("ok", True) and not w.stop_reason:
                    self._robot_fault(w, robot.get("detail") or robot.get("status", "fault"))
                    self.backend.terminate(w.handle)
                    w.state, w.stop_deadline = STOPPING, now + hb.stop_grace_s
            if rc is None:
                if w.stop_deadline is not None:
                    if now > w.stop_deadline:
                        self._event(w, "killed", f"did not stop within {hb.stop_grace_s:g} s")
                        self.backend.kill(w.handle)
                        w.stop_deadline = now + hb.stop_grace_s
                    continue
                silent = now - (w.last_seen if w.last_seen is not None else w.started)
                limit = hb.timeout_s if w.last_seen is not None else hb.startup_timeout_s
                if silent > limit:
                    self._event(w, "heartbeat-timeout", f"no heartbeat for {silent:.1f} s; killing it")
                    self.backend.kill(w.handle)
                    w.stop_deadline = now + hb.stop_grace_s
                continue
            self._exited(w, self.backend.release(w.handle))
        self._write_status()

    def _exited(self, w: SupervisedWorker, rc: int) -> None:
        w.handle = None
        robot_state = (
            (w.heartbeat.get("robot") or {}) if w.heartbeat.get("incarnation") == w.incarnation else {}
        )
        if rc == EXIT_ROBOT_FAULT and w.assignment.robot and w.stop_reason != "robot-fault":
            self._robot_fault(w, robot_state.get("detail") or "the worker reported a robot fault")
        if w.stop_reason == "stop":
            w.state = STOPPED
            self._event(w, "stopped", f"exit status {rc}")
        elif w.stop_reason == "robot-fault":
            self._move(w)
        elif rc == 0:
            w.state = DONE
            self._event(w, "exited", "finished")
        else:
            why = f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
            self._event(w, "crashed", why)
            if w.restarts >= self.spec.restart.max_restarts:
                self._fail(w, f"{why}; restarted {w.restarts} times, the limit")
                return
            w.restarts += 1
            delay = self.spec.restart.backoff(w.restarts)
            w.state, w.next_start = BACKOFF, time.monotonic() + delay
            self._event(
                w, "restarting", f"restart {w.restarts} of {self.spec.restart.max_restarts} in {delay:.2f} s"
            )

    def _robot_fault(self, w: SupervisedWorker, detail: str) -> None:
        robot = w.assignment.robot
        w.stop_reason = "robot-fault"
        if robot:
            self.faulted_robots[robot] = detail
        self._event(w, "robot-fault", f"robot {robot}: {detail}")

    def _move(self, w: SupervisedWorker) -> None:
        """Put actor ``w`` on a spare healthy robot of its robot's type, or fail it."""
        old = w.assignment
        busy = {x.assignment.robot for x in self.workers.values() if x is not w and x.state not in TERMINAL}
        spares = spare_robots(w, self.backend.inventory(self.robots()).robots, busy, self.faulted_robots)
        refused = {}
        if self.move_check is not None:
            refused = {r.host: self.move_check(w.spec.name, r.host) for r in spares}
            spares = [r for r in spares if not refused[r.host]]
        if not spares:
            why = "; ".join(sorted({reason for reason in refused.values() if reason}))
            self._fail(
                w,
                f"robot {old.robot} faulted ({self.faulted_robots.get(old.robot or '', '')}); "
                f"no spare healthy robot of type {old.robot_type!r}"
                + (f" it may move to ({why})" if why else ""),
            )
            return
        spare = spares[0]
        w.assignment = replace(old, robot=spare.name, host=spare.host)
        w.moves += 1
        self._event(w, "moved", f"from robot {old.robot} to spare {spare.name} on {spare.host}")
        self._launch(w)

    def _host_lost(self, w: SupervisedWorker) -> None:
        """``w``'s host is gone: move an actor to a spare robot of its type elsewhere, else fail."""
        host = w.assignment.host
        self._event(w, "host-lost", f"{host} is gone (a lost node); not restarting there")
        if w.spec.role == "actor" and w.assignment.robot:
            self.faulted_robots[w.assignment.robot] = f"its host {host} is gone"
            self._move(w)
        else:
            self._fail(w, f"its host {host} is gone, and with it what this worker kept there")

    def gather(self) -> int:
        """Copy each worker's own files that summaries read (``hal.gather.GATHER``) from the host where
        it keeps its data, when that is not this run directory; returns the number of files written."""
        written = 0
        for w in self.workers.values():
            if w.dirs is None or w.dirs.shared:
                continue
            host = w.assignment.host
            if not self.backend.host_alive(host):
                continue  # what was gathered from it before stays
            n, found = gather_worker(self.backend, host, w.dirs.run_dir, self.run_dir, w.spec.name,
                                     w.spec.role, w.gathered_from)
            written += n
            if found:
                w.gathered_from = host
        return written

    def _fail(self, w: SupervisedWorker, detail: str) -> None:
        w.state, w.detail = FAILED, detail
        self._event(w, "failed", detail)
        log.error("worker %s failed: %s", w.spec.name, detail)

    def run(self, timeout_s: float | None = None, on_poll: Callable[[Scheduler], None] | None = None) -> bool:
        """Supervise until every worker is done, failed or stopped (or ``timeout_s``); True if all done."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        while not self.done:
            if deadline is not None and time.monotonic() > deadline:
                break
            self.poll()
            if on_poll is not None:
                on_poll(self)
            time.sleep(self.sweep_s)
        return all(w.state == DONE for w in self.workers.values())

    def stop(self, grace_s: float | None = None) -> None:
        """Ask every live worker to stop, wait ``grace_s`` (default ``heartbeat.stop_grace_s``), then kill."""
        grace = self.spec.heartbeat.stop_grace_s if grace_s is None else grace_s
        deadline = time.monotonic() + grace
        for w in self.workers.values():
            if w.state not in TERMINAL:
                w.stop_reason = "stop"
                if w.handle is not None:
                    self.backend.terminate(w.handle)
                    w.state, w.stop_deadline = STOPPING, deadline
                else:
                    w.state = STOPPED
                    self._event(w, "stopped", "before its restart")
        while not self.done:
            self.poll()
            time.sleep(self.sweep_s)
        self._write_status(force=True)

    def close(self) -> None:
        """Stop what still runs and close the backend if this scheduler made it."""
        try:
            if any(w.state not in TERMINAL for w in self.workers.values()):
                self.stop()
        finally:
            if self._owns_backend:
                self.backend.close()

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reporting -----------------------------------------------------------------------------
    def status(self) -> list[WorkerStatus]:
        now = time.monotonic()
        return [w.status(now, self.backend.pid(w.handle) if w.handle is not None else None)
                for w in self.workers.values()]

    def _event(self, w: SupervisedWorker, kind: str, detail: str = "") -> None:
        event = Event(time.time(), w.spec.name, kind, detail, w.incarnation)
        self.events.append(event)
        level = (
            logging.WARNING
            if kind in ("crashed", "heartbeat-timeout", "robot-fault", "killed")
            else logging.ERROR
            if kind == "failed"
            else logging.INFO
        )
        log.log(level, "%s #%d %s%s", w.spec.name, w.incarnation, kind, f": {detail}" if detail else "")
        self._record.append_event(event)

    def _write_status(self, force: bool = False) -> None:
        if self._record.due(force):  # asked first: status() is not built on every poll
            self._record.write_status(
                self.spec.name,
                self.backend.name,
                self._started_at,
                self.faulted_robots,
                self.placement,
                self.status(),
            )


# Event, WorkerStatus and read_run_status live in hal.run_status, the worker states in hal.supervised;
# they are imported from here too.
__all__ = [
    "BACKOFF",
    "DONE",
    "FAILED",
    "RUNNING",
    "STARTING",
    "STOPPED",
    "STOPPING",
    "TERMINAL",
    "Event",
    "InfeasibleSpecError",
    "Scheduler",
    "WorkerStatus",
    "read_run_status",
]
