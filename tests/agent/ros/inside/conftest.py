"""Fixtures of the in-ROS checks: ROS started once per process, a driver node spun in the background."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

import pytest

os.environ.setdefault("MUJOCO_GL", "egl")
assert os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") == "LOCALHOST", "run these through test_ros_inside.py"


def wait_until(condition: Callable[[], object], timeout: float = 5.0, period: float = 0.01) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period)
    return bool(condition())


@pytest.fixture(scope="session")
def ros():
    import rclpy

    rclpy.init()
    yield rclpy
    rclpy.try_shutdown()


class Spinner:
    """Spins nodes on a thread of its own; ``close`` destroys them."""

    def __init__(self) -> None:
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor()
        self.nodes = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while not self._stop.is_set():
            self.executor.spin_once(timeout_sec=0.02)

    def add(self, node):
        self.executor.add_node(node)
        self.nodes.append(node)
        return node

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for node in self.nodes:
            self.executor.remove_node(node)
            node.destroy_node()


@pytest.fixture
def spinner(ros):
    s = Spinner()
    yield s
    s.close()


@pytest.fixture
def wait():
    return wait_until
