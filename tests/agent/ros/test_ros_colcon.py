"""``colcon build`` (colcon and ament_package from PyPI, in the ROS venv) builds rill as ROS 2 expects:
``share/rill/{package.xml,launch,config}``, the nodes under ``lib/rill``, the ament index entry;
and the installed ``agent_node`` runs, refusing a parameter of the wrong type by name."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_colcon_build_installs_the_ros_layout(ros_python, ros_env, tmp_path):
    colcon = ros_python.parent / "colcon"
    argv = [str(colcon), "--log-base", str(tmp_path / "log"), "build", "--base-paths", str(REPO),
            "--build-base", str(tmp_path / "build"), "--install-base", str(tmp_path / "install")]
    built = subprocess.run(argv, cwd=tmp_path, env=ros_env, capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stdout[-4000:] + built.stderr[-4000:]
    assert "Finished <<< rill" in built.stdout + built.stderr

    prefix = tmp_path / "install" / "rill"
    share = prefix / "share" / "rill"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / "rill").is_file()
    assert (share / "package.xml").is_file()
    for name in ("agent.launch.py", "sim.launch.py", "learner.launch.py"):
        assert (share / "launch" / name).is_file(), name
    for path in (REPO / "config").glob("*.yaml"):
        assert (share / "config" / path.name).is_file(), path.name
    for name in ("agent_node", "sim_node", "learner_node", "rill"):
        assert (prefix / "lib" / "rill" / name).is_file(), name
    site = next((prefix / "lib").glob("python3*/site-packages"))
    assert (site / "agent" / "ros" / "robot.py").is_file()

    env = dict(ros_env, PYTHONPATH=str(site))
    argv = [str(prefix / "lib" / "rill" / "agent_node"), "--ros-args", "-p", "robot.joints:=[a, b]",
            "-p", "robot.control_hz:=fast"]
    node = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
    assert node.returncode == 2, node.stdout + node.stderr
    assert "parameter 'robot.control_hz' must be a number, got string 'fast'" in node.stderr
