"""Runs the checks that need rclpy in-process (``inside/``: real ROS messages, ``Ros2Robot`` against a
driver node, parameters on real nodes and parameter files, discovery and ``rill hal list``,
``AgentNode`` diagnostics) with the ROS venv's pytest, on this test's own ROS domain."""

from __future__ import annotations

import subprocess
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_checks_inside_the_ros_venv(ros_python, ros_env):
    inside = HERE / "inside"
    argv = [str(ros_python), "-m", "pytest", "-c", str(inside / "pytest.ini"), "-q", str(inside)]
    result = subprocess.run(argv, env=ros_env, cwd=HERE.parents[2], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-3000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout, result.stdout[-2000:]
