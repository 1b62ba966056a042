from __future__ import annotations

import os
from pathlib import Path

import pytest

from agent.actor.episodes import read_episodes

os.environ.setdefault("MUJOCO_GL", "egl")


def episode_rows(run: Path) -> list[tuple]:
    """``(step, episode, return, length)`` rows of a run, without wall time."""
    return [(e.step, e.episode, e.ret, e.length) for e in read_episodes(run / "metrics" / "episodes.csv")]


@pytest.fixture
def rows():
    return episode_rows
