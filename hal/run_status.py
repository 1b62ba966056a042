"""A run's record on disk: what the scheduler did (``events.jsonl``) and where it stands
(``status.json``), and ``read_run_status`` for ``rill status``.

``<run_dir>/events.jsonl`` gets one JSON line per ``Event``, appended as it happens, so it survives
a scheduler that is killed. ``<run_dir>/status.json`` is the whole current state (the run, its
placement, one ``WorkerStatus`` per worker), rewritten as the scheduler polls (at most every
``every_s``, and at once when it starts or stops the workers) and replaced atomically, so a
reader never sees half of one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hal.placement import Placement

STATUS_FILE = "status.json"
EVENTS_FILE = "events.jsonl"


@dataclass
class Event:
    """Something the scheduler did or saw: ``kind`` is started, running, exited, crashed,
    heartbeat-timeout, restarting, robot-fault, moved, failed, stopped."""

    time: float
    worker: str
    kind: str
    detail: str = ""
    incarnation: int = 0


@dataclass
class WorkerStatus:
    """One worker as the status table shows it."""

    name: str
    role: str
    state: str
    host: str
    robot: str | None
    device: str
    pid: int | None
    incarnation: int
    restarts: int
    moves: int
    heartbeat_age_s: float | None
    progress: dict[str, Any] = field(default_factory=dict)
    robot_health: str = ""
    detail: str = ""


class RunStatusWriter:
    """Writes the events and the status of the run in ``run_dir``."""

    def __init__(self, run_dir: Path, every_s: float = 0.5) -> None:
        self.run_dir = run_dir
        self.every_s = every_s
        self._written = 0.0  # monotonic time of the last status.json

    def append_event(self, event: Event) -> None:
        """Append ``event`` to ``events.jsonl``."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with open(self.run_dir / EVENTS_FILE, "a") as f:
            f.write(json.dumps(asdict(event)) + "\n")

    def due(self, force: bool = False) -> bool:
        """Whether ``status.json`` is to be rewritten now: forced, or ``every_s`` since the last."""
        return force or time.monotonic() - self._written >= self.every_s

    def write_status(
        self,
        run: str,
        backend: str,
        started: float | None,
        faulted_robots: dict[str, str],
        placement: Placement | None,
        workers: list[WorkerStatus],
    ) -> None:
        """Replace ``status.json`` with the run's state now (``updated``: wall time, ``pid``: ours)."""
        self._written = time.monotonic()
        payload = {
            "run": run,
            "backend": backend,
            "started": started,
            "updated": time.time(),
            "pid": os.getpid(),
            "faulted_robots": faulted_robots,
            "placement": placement.to_dict() if placement else None,
            "workers": [asdict(s) for s in workers],
        }
        path = self.run_dir / STATUS_FILE
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(payload, indent=1, default=str))
        os.replace(tmp, path)


def read_run_status(run_dir: str | Path) -> dict[str, Any]:
    """The last status a scheduler wrote for the run in ``run_dir`` (for ``rill status``)."""
    path = Path(run_dir) / STATUS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(
            f"{run_dir}: no {STATUS_FILE}; is it a run directory started by rill run?"
        ) from None
