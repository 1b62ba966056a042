"""Simulated device faults: a simulated robot reports a fault while its ``fault_file`` exists."""

from __future__ import annotations

from pathlib import Path


def fault_reason(fault_file: str | None) -> str | None:
    """Why the simulated robot is faulted, or None: its fault file exists or it does not."""
    if fault_file and Path(fault_file).exists():
        return f"simulated fault: {fault_file} exists"
    return None
