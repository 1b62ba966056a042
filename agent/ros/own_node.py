"""``OwnNode``: the node of a ``Ros2Robot`` that was not handed one (made from config through the
registry rather than by ``agent_node``), spun on a thread of its own. It initialises rclpy if
nobody has, and shuts rclpy down on close only if it did."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class OwnNode:
    """Creates node ``node_name`` and starts spinning it; ``close`` stops and destroys it.

    ``robot_name`` names the spin thread and the log lines.
    """

    def __init__(self, node_name: str, robot_name: str) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        self.robot_name = robot_name
        self._own_context = False
        if not rclpy.ok():
            rclpy.init()
            self._own_context = True
        self.node = rclpy.create_node(node_name)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self.node)
        self._spinning = threading.Event()
        self._spinning.set()
        self._thread = threading.Thread(target=self._spin, name=f"ros-{robot_name}", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        while self._spinning.is_set():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except ExternalShutdownException:
                return
            except Exception:  # one bad message must not end the robot's subscriptions
                log.exception("robot %s: a ROS callback failed; still listening", self.robot_name)

    def close(self) -> None:
        """Stop spinning, destroy the node, and shut rclpy down if this made its context."""
        self._spinning.clear()
        self._thread.join(timeout=2.0)
        self._executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        if self._own_context:
            import rclpy

            rclpy.try_shutdown()
            self._own_context = False
