"""What every rill node process shares: ROS start-up without rclpy's signal handlers, logging, exit.

rclpy's own SIGINT handler shuts the ROS context down at once, after which nothing can be
published, so a node could not hold its robot on Ctrl-C. A rill node starts rclpy without signal
handlers; SIGINT and SIGTERM set ``NodeRuntime.stop``, the node's main loop sees it, holds the
robot, waits for the hold command to be acknowledged, and only then shuts ROS down.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


def configure_logging(node_name: str) -> None:
    level = os.environ.get("RILL_LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=getattr(logging, level, logging.INFO), stream=sys.stderr,
                        format=f"[%(levelname)s] [%(asctime)s] [{node_name}] %(name)s: %(message)s")
    logging.getLogger("OpenGL").setLevel(logging.WARNING)


class NodeRuntime:
    """rclpy initialised for one node process; ``stop`` is set by SIGINT / SIGTERM."""

    def __init__(self, args: list[str] | None = None) -> None:
        import rclpy
        from rclpy.signals import SignalHandlerOptions

        self.stop = threading.Event()
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        self._executor = None
        self._thread: threading.Thread | None = None
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        if self.stop.is_set():
            log.warning("second %s: stopping without waiting", signal.Signals(signum).name)
            raise KeyboardInterrupt
        log.info("%s: stopping", signal.Signals(signum).name)
        self.stop.set()

    def spin_in_background(self, node) -> None:
        """Run ``node``'s callbacks on a thread of their own (the main thread runs the loop)."""
        from rclpy.executors import SingleThreadedExecutor

        self._executor = SingleThreadedExecutor()
        self._executor.add_node(node)
        self._thread = threading.Thread(target=self._spin, name="ros-executor", daemon=True)
        self._thread.start()

    def spin_until_stopped(self, node, period_s: float = 0.05) -> None:
        """Run ``node``'s callbacks on this thread until ``stop``."""
        from rclpy.executors import SingleThreadedExecutor

        self._executor = SingleThreadedExecutor()
        self._executor.add_node(node)
        while not self.stop.is_set():
            self._executor.spin_once(timeout_sec=period_s)

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        while not self.stop.is_set():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except ExternalShutdownException:
                return
            except Exception:  # one bad callback must not end every callback of the node
                log.exception("a ROS callback failed; the node keeps running")

    def close(self, node=None) -> None:
        """Stop the executor, destroy ``node`` and shut ROS down."""
        import rclpy

        self.stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        if self._executor is not None:
            self._executor.shutdown(timeout_sec=1.0)
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def run_main(node_name: str, body: Callable[[NodeRuntime], int], args: list[str] | None = None) -> int:
    """Start ROS, run ``body(runtime)`` and turn a configuration error into one log line, exit code 2."""
    from hal.errors import ConfigError
    from learners.link.security import InsecureEndpointError

    configure_logging(node_name)
    try:
        import rclpy
    except ImportError as e:
        log.error("%s needs ROS 2's rclpy (%s): source a ROS 2 install, or see the README", node_name, e)
        return 2
    runtime = NodeRuntime(sys.argv if args is None else args)
    try:
        return int(body(runtime) or 0)
    except (ConfigError, InsecureEndpointError, FileNotFoundError) as e:
        log.error("%s: %s", node_name, e)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        import rclpy

        rclpy.try_shutdown()
