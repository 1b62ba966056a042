"""Running rill's ROS 2 nodes from the main test process.

The ROS 2 wheels live in a venv of their own (``.venv-ros``, made by ``scripts/setup_ros.sh``;
``RILL_ROS_PYTHON`` overrides its interpreter). Tests start node processes with it, each test on
its own ``ROS_DOMAIN_ID`` with discovery pinned to loopback, and stop every process they started
(SIGINT, then SIGKILL of its process group). Without that venv the ROS tests are skipped, unless
``RILL_REQUIRE_ROS=1`` (``scripts/test.sh`` sets it), where a missing venv fails them.

``inside/`` holds checks that need rclpy in their own process: the main pytest does not collect
them; ``test_ros_inside.py`` runs them with the ROS venv's pytest.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
collect_ignore = ["inside"]
_domains = itertools.count()


def _ros_python() -> Path:
    return Path(os.environ.get("RILL_ROS_PYTHON", REPO / ".venv-ros" / "bin" / "python"))


@pytest.fixture(scope="session")
def ros_python() -> Path:
    python = _ros_python()
    if not python.exists():
        message = f"no ROS 2 venv at {python}: run scripts/setup_ros.sh"
        if os.environ.get("RILL_REQUIRE_ROS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return python


@pytest.fixture
def ros_env(tmp_path) -> dict[str, str]:
    """The environment of a test's ROS processes: a domain id of its own, loopback only."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("_ROS_WHEELS_BOOTSTRAP_COMPLETE", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "PYTHONHOME")}
    domain = 1 + (os.getpid() * 13 + next(_domains) * 37) % 100  # 1..100: ports clear of the ephemeral range
    env.update({"ROS_DOMAIN_ID": str(domain), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST",
                "MUJOCO_GL": env.get("MUJOCO_GL", "egl"),
                "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "RILL_ROS_DISCOVERY_S": "3",
                "ROS_LOG_DIR": str(tmp_path / "ros-log"), "RILL_HOME": str(tmp_path / "rill-home")})
    return env


class NodeProcess:
    """One ROS node process (its output in ``log``), stopped like ``ros2 launch`` stops it."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path) -> None:
        self.argv, self.log = argv, log
        self._out = open(log, "wb")  # noqa: SIM115  (closed in stop)
        self.proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=self._out, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def stop(self, timeout: float = 15.0) -> int:
        """SIGINT and wait; SIGKILL the process group if it will not stop. Returns the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._out.close()
        return self.proc.returncode

    def output(self) -> str:
        if not self._out.closed:
            self._out.flush()
        return self.log.read_text(errors="replace")


@pytest.fixture
def start_node(ros_python, ros_env, tmp_path):
    """``start_node(module, *ros_args, name=...)``: a node process in the ROS venv; all are stopped
    at the end of the test."""
    started: list[NodeProcess] = []

    def start(module: str, *ros_args: str, name: str | None = None) -> NodeProcess:
        name = name or module.rsplit(".", 1)[-1]
        argv = [str(ros_python), "-m", module, "--ros-args", *ros_args]
        node = NodeProcess(argv, ros_env, tmp_path / f"{name}.log")
        started.append(node)
        return node

    yield start
    for node in started:
        if node.proc.poll() is None:
            node.stop(timeout=5.0)
        elif not node._out.closed:
            node._out.close()
