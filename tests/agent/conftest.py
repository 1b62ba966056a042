from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")


def episode_rows(run: Path) -> list[tuple]:
    """``(step, episode, return, length)`` rows of a run, without wall time."""
    with open(run / "metrics" / "episodes.csv", newline="") as f:
        return [(r["step"], r["episode"], r["return"], r["length"]) for r in csv.DictReader(f)]


@pytest.fixture
def rows():
    return episode_rows
