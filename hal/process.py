"""One worker's OS process on this host: start it, read its heartbeat, stop it, clean up after it.

Both backends use this: the embedded backend in the scheduler's own process, the Ray backend inside
a Ray actor on the node the worker was placed on (so heartbeats and leases stay node-local).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hal.leases import LeaseStore
from hal.worker import read_heartbeat


def _parent_death_signal():
    """A function for the child, before exec: get SIGTERM if the process that started it dies.

    A worker in its own session would otherwise outlive a killed scheduler (or Ray actor), keep
    renewing its robot's lease and drive the robot unsupervised; SIGTERM makes it hold and exit.
    Linux only; prepared here, in the parent, so that the child only makes one foreign call.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL(None, use_errno=True).prctl
    pr_set_pdeathsig, sigterm = 1, int(signal.SIGTERM)

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, sigterm, 0, 0, 0)

    return set_parent_death_signal


STOP_WITH_PARENT = _parent_death_signal()  # a preexec_fn for any child that must not outlive us


def write_files(files: dict[str, str]) -> None:
    """Write each ``path: text`` atomically (a worker's configuration, handed over with its start, so
    that a worker on another node needs no disk shared with the scheduler)."""
    for path, text in files.items():
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        # a temporary name of its own: workers of one group starting together write the same file
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
        try:
            with os.fdopen(fd, "w") as f:
                f.write(text)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class WorkerProcess:
    """A started worker process. ``poll()`` gives ``(exit status or None, new heartbeat or None)``."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        heartbeat_file: str,
        log_file: str,
        lease_dir: str | None = None,
        holder: str | None = None,
        robot: str | None = None,
        files: dict[str, str] | None = None,
    ) -> None:
        write_files(files or {})
        self.heartbeat_file = Path(heartbeat_file)
        self.heartbeat_file.unlink(missing_ok=True)  # a beat from a previous incarnation is not news
        self.lease_dir, self.holder, self.robot = lease_dir, holder, robot
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        log = open(log_file, "ab")  # noqa: SIM115  the child owns it; closed after start
        try:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(argv)}\n".encode())
            log.flush()
            # A session of its own: a signal to the scheduler's terminal does not reach the worker,
            # and kill() reaches the worker's own children too.
            self.proc = subprocess.Popen(
                argv,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=STOP_WITH_PARENT,
            )
        finally:
            log.close()
        self._stamp: tuple[int, int] | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> tuple[int | None, dict[str, Any] | None]:
        """Exit status (negative: killed by that signal) or ``None``; the heartbeat if it changed."""
        rc = self.proc.poll()
        try:
            st = os.stat(self.heartbeat_file)
        except FileNotFoundError:
            return rc, None
        stamp = (st.st_mtime_ns, st.st_ino)
        if stamp == self._stamp:
            return rc, None
        self._stamp = stamp
        return rc, read_heartbeat(self.heartbeat_file)

    def terminate(self) -> None:
        """Ask the worker to stop (SIGTERM): it holds its robot and releases its lease."""
        self._signal(signal.SIGTERM, group=False)

    def kill(self) -> None:
        """SIGKILL the worker and everything it started."""
        self._signal(signal.SIGKILL, group=True)

    def _signal(self, sig: int, group: bool) -> None:
        if self.proc.poll() is not None:
            return
        try:
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def release(self) -> int:
        """Reap the exited worker and free the robot lease it may have left; return its status."""
        # Kill the whole group before reaping: its children must not outlive it holding the robot,
        # and until the leader is reaped its pid (the group id) cannot be reused by anyone else.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        rc = self.proc.wait()
        if self.robot and self.holder:
            # The holder is reaped, so it is certainly dead: its lease need not run out its TTL.
            LeaseStore(self.lease_dir).break_lease(self.robot, self.holder)
        return rc
