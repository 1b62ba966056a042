"""Shared parts of the HAL tests: an isolated lease directory, rill's sim robots, real workers."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")

import sim.robots  # noqa: F401  registers sim-mujoco even where rill's entry points are not installed


@pytest.fixture(autouse=True)
def rill_home(tmp_path, monkeypatch) -> Path:
    """Leases of each test in its own directory (and inherited by the workers it starts)."""
    home = tmp_path / "rill-home"
    monkeypatch.setenv("RILL_HOME", str(home))
    return home


def counter_command(steps: int = 100, rate: float = 100.0, *extra: str) -> list[str]:
    """The argv of ``hal.testing.counter_worker`` (a real worker driving a real MuJoCo robot)."""
    return [
        sys.executable,
        "-m",
        "hal.testing.counter_worker",
        "--steps",
        str(steps),
        "--rate",
        str(rate),
        *extra,
    ]


def wait_for(condition: Callable[[], object], timeout_s: float = 30.0, what: str = "condition") -> object:
    """Poll ``condition`` until it is truthy; fail the test (not a timing assertion) if it never is."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def counter_cmd():
    return counter_command


@pytest.fixture
def wait():
    return wait_for
