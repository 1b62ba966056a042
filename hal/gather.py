"""Copying back what a run's summaries read from the node where each worker keeps its data.

Under Ray a worker keeps its run data on its own node (``Backend.worker_dirs``); ``rill status``, the
live view and the run summary read one run directory. :func:`gather_worker` copies a worker's own
files (``GATHER``, by role) from its node into that directory. Only a worker's own files: a node may
hold another worker's stale copies (a worker that moved on, an earlier run of the same name).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

#: What is fetched from a worker's own node, by role; ``{name}`` is the worker's name.
GATHER = {
    "learner": ("metrics/*", "logs/{name}.log"),
    "actor": ("actors/{name}/episodes.csv", "actors/{name}/*.json", "logs/{name}.log"),
}
GATHER_MAX_BYTES = 16 << 20


def gather_worker(backend: Any, host: str, remote_run_dir: str | Path, run_dir: Path, name: str, role: str,
                  gathered_from: str | None) -> tuple[int, bool]:
    """Copy worker ``name``'s files from ``remote_run_dir`` on ``host`` into ``run_dir``; returns
    (files written, whether the host had any).

    A worker that moved between hosts keeps what it left behind: before its new host's copies first
    replace them (``gathered_from`` is not ``host``), the run directory's files are set aside as
    ``FILE.before-HOST`` (the host they came from, or ``here``)."""
    patterns = [p.format(name=name) for p in GATHER.get(role, ("logs/{name}.log",))]
    found = backend.gather(host, remote_run_dir, patterns, GATHER_MAX_BYTES)
    if not found:
        return 0, False
    root, written = run_dir.resolve(), 0
    moved = gathered_from != host
    for rel, data in found.items():
        target = (run_dir / rel).resolve()
        if root not in target.parents:
            log.warning("gather: %s from %s is outside the run directory; ignored", rel, name)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if moved and target.exists():
            target.replace(target.with_name(f"{target.name}.before-{gathered_from or 'here'}"))
        tmp = target.with_name(target.name + ".gather")
        tmp.write_bytes(data)
        tmp.replace(target)
        written += 1
    return written, True
