"""Shared benchmark plumbing: a results table on the terminal and a JSON file."""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from policies.base import ActionChunk, Observation, Policy


def machine() -> dict[str, Any]:
    import os

    import torch

    return {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }


def finished_summary(run: Path, steps: int) -> dict[str, Any] | None:
    """A training run's ``summary.json`` when it has reached ``steps`` (a longer run counts); None
    while it has not finished (or never started), so the caller trains or resumes it."""
    path = Path(run) / "summary.json"
    if not path.exists():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("steps", 0) >= steps else None


def write_json(path: str | Path | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(payload, indent=1))


def print_table(title: str, columns: list[str], rows: list[list[Any]], width: int | None = None) -> None:
    table = Table(title=title)
    for i, col in enumerate(columns):
        table.add_column(col, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[f"{v:,.1f}" if isinstance(v, float) else str(v) for v in row])
    # Wide when written to a file or pipe, so no column is cut to an ellipsis.
    Console(width=width or (None if sys.stdout.isatty() else 200)).print(table)


class TimedPolicy(Policy):
    """``policy`` with every ``act()`` call timed (``times``, seconds)."""

    def __init__(self, policy: Policy) -> None:
        self.policy, self.times = policy, []
        self.action_dim, self.chunk_size = policy.action_dim, policy.chunk_size

    def act(self, observation: Observation) -> ActionChunk:
        start = time.perf_counter()
        chunk = self.policy.act(observation)
        self.times.append(time.perf_counter() - start)
        return chunk
