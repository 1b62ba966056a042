"""``bench.metaworld_goal_geometry``: its camera model puts each goal where the rendered frame shows
the marker, and its quick run reports what one frame's geometry leaves of reach's goal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("metaworld")
os.environ.setdefault("MUJOCO_GL", "egl")

from bench.metaworld_goal_geometry import task_camera

REPO = Path(__file__).resolve().parents[2]


def test_the_projected_goal_lands_on_the_rendered_marker():
    from sim.metaworld.env import MetaWorldEnv

    camera, _ = task_camera("reach-v3")
    env = MetaWorldEnv("reach-v3")
    seen = []
    try:
        for seed in range(6):
            obs, _ = env.reset(seed=seed)
            frame = obs["image.corner2"].astype(int)
            (pixel,), _ = camera.project(obs["privileged"][None, 36:39])
            # the goal marker is the frame's bright pure red (the arm's red is darker)
            marker = np.argwhere((frame[..., 0] > 200) & (frame[..., 1] < 60) & (frame[..., 2] < 60)) + 0.5
            assert len(marker), f"seed {seed}: no marker pixel in the frame"
            assert np.linalg.norm(marker - pixel, axis=1).min() <= 1.5, (seed, pixel, marker.tolist())
            seen.append(pixel)
    finally:
        env.close()
    spread = np.ptp(np.array(seen), axis=0)
    assert spread.max() > 5, f"the goals all project near one pixel ({seen}): the check would prove nothing"


def test_quick_run_reports_the_share_of_goals_one_frame_places(tmp_path):
    out = tmp_path / "geometry.json"
    subprocess.run([sys.executable, "-m", "bench.metaworld_goal_geometry", "--quick", "--json", str(out)],
                   cwd=REPO, check=True, capture_output=True, timeout=300,
                   env={**os.environ, "MUJOCO_GL": "egl"})
    (reach,) = json.loads(out.read_text())["runs"]
    assert reach["task"] == "reach-v3" and reach["success_radius_m"] == 0.05
    # depth along the ray stays open: some goals are misplaced, most are not
    assert 0.6 < reach["within_radius"] < 0.95
    assert 0 < reach["median_error_cm"] < 5
