"""``Ros2Robot``: a ``hal.Robot`` on ROS 2 topics, so the same control loop drives a real robot.

In: ``sensor_msgs/JointState`` (joints matched by name; several publishers may each report some
joints), ``sensor_msgs/Image`` or ``CompressedImage`` (sensor-data QoS), ``std_msgs/String``
instruction, optionally a ``std_msgs/Float32`` reward. Out: either a
``trajectory_msgs/JointTrajectory`` for a ros2_control ``joint_trajectory_controller`` (the
command for the next tick plus up to ``lookahead`` planned actions of the current chunk, one
control period apart), or a ``std_msgs/Float64MultiArray`` for a ``forward_command_controller``
(the configured joint order).

Freshness: each message's age is measured on arrival against its header stamp (``timing``);
messages older than ``max_age_s`` are dropped and counted. The observation's ``timestamp`` is the
monotonic time of its oldest part (the stalest joint, the image), and ``-inf`` while a part has
never arrived, so the control loop sees stale data and holds: it never acts on an observation
made from nothing. Holding publishes the joint positions measured when the hold began (nothing
while no joint state has ever arrived: the driver keeps its own last command), and the hold's
reason says what is missing (``no sensor data since 14:03:05.120 (2.3 s): /joint_states``).

The robot uses the node it is given (``agent_node`` passes its own and spins it) or, made from a
config through the registry (type ``ros2``), creates and spins a node of its own.
"""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np

from agent.ros.conversions import (
    ImageFormatError,
    JointMatcher,
    UnsupportedEncodingError,
    compressed_to_rgb,
    forward_command_msg,
    image_to_rgb,
    joint_trajectory_msg,
)
from agent.ros.robot_config import Ros2RobotConfig
from agent.ros.timing import MessageAges, stamp_ns
from hal.errors import ConfigError
from hal.registry import register_robot
from hal.robot import Observation, Robot, RobotHealth
from hal.specs import ActionSpec, FeatureSpec

log = logging.getLogger(__name__)


class _Throttle:
    """True at most once per ``period_s`` per key: keeps a flood of bad messages out of the log."""

    def __init__(self, period_s: float = 5.0) -> None:
        self.period_s = period_s
        self._last: dict[str, float] = {}

    def __call__(self, key: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) >= self.period_s:
            self._last[key] = now
            return True
        return False


def _wall_clock(monotonic_t: float) -> str:
    wall = time.time() - (time.monotonic() - monotonic_t)
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"


@register_robot
class Ros2Robot(Robot):
    """A robot whose drivers speak ROS 2 topics (see the module docstring)."""

    type_name = "ros2"
    config_class = Ros2RobotConfig

    def __init__(self, name: str, config: Ros2RobotConfig | None = None, node: Any = None) -> None:
        self.config = c = config or Ros2RobotConfig()
        super().__init__(name, c.watchdog_timeout_s or None)
        self._node = node
        self._own_node = False
        self._own_context = False
        self._executor = None
        self._spin_thread: threading.Thread | None = None
        self._spinning = threading.Event()
        low, high = c.limits
        self._action_spec = ActionSpec(tuple(c.joints), low, high, c.max_delta)
        self._observed = [*c.joints, *c.extra_state_joints]
        n = len(self._observed)
        self._observation_spec = {"state": FeatureSpec((2 * n,), "float32"),
                                  "instruction": FeatureSpec((), "str", allow_empty=True)}
        if c.image_topic:
            self._observation_spec[self.image_key] = FeatureSpec((c.image_height, c.image_width, 3), "uint8")
        if c.reward_topic:
            self._observation_spec["reward"] = FeatureSpec((), "float32")
        self._matcher = JointMatcher(self._observed, c.joint_states_topic)
        self._data = threading.Lock()
        self._pos = np.zeros(n, np.float32)
        self._vel = np.zeros(n, np.float32)
        self._seen = np.full(n, -math.inf)  # monotonic time each joint was last measured (fresh)
        self._image = np.zeros((c.image_height, c.image_width, 3), np.uint8)
        self._image_t = -math.inf
        self._instruction = c.default_instruction
        self._reward = 0.0
        self._image_problem = ""
        self._missing: list[str] = []
        self.ages = MessageAges(c.max_age_s)
        self.received: Counter[str] = Counter()
        self.bad_messages: Counter[str] = Counter()
        self.commands_sent = 0
        self.last_published = ""  # "command" or "hold": what the robot was last told
        self._throttle = _Throttle()
        self._connected_at = time.monotonic()
        self._hold_target: np.ndarray | None = None
        self._subs: list[Any] = []
        self._command_pub = None
        #: Set by the node that runs the control loop: ``plan(n)`` returns up to ``n`` actions the
        #: current chunk holds after this tick's, to send as look-ahead trajectory points.
        self.plan: Callable[[int], list[np.ndarray]] | None = None
        #: Set by a node: ``interrupt()`` true ends ``connect``'s wait for sensor data early (SIGINT).
        self.interrupt: Callable[[], bool] | None = None

    # -- what it is ------------------------------------------------------------------------------
    @property
    def image_key(self) -> str:
        return f"image.{self.config.camera}"

    @property
    def observation_spec(self) -> dict[str, FeatureSpec]:
        return self._observation_spec

    @property
    def action_spec(self) -> ActionSpec:
        return self._action_spec

    @property
    def control_hz(self) -> float:
        return self.config.control_hz

    @property
    def node(self):
        return self._node

    @classmethod
    def probe(cls, name: str, params: dict[str, Any] | None = None) -> RobotHealth:
        try:
            import rclpy  # noqa: F401
        except ImportError as e:
            return RobotHealth(False, "unavailable", f"rclpy cannot be imported ({e}): source ROS 2 first")
        try:
            config = Ros2RobotConfig(**(params or {}))
        except (ConfigError, TypeError) as e:
            return RobotHealth(False, "misconfigured", str(e))
        return RobotHealth(True, "available", f"{len(config.joints)} joints on {config.joint_states_topic}")

    # -- connecting ------------------------------------------------------------------------------
    def _connect(self) -> None:
        from sensor_msgs.msg import CompressedImage, Image, JointState
        from std_msgs.msg import Float32, Float64MultiArray, String
        from trajectory_msgs.msg import JointTrajectory

        from agent.ros.qos import reliable_qos, sensor_qos

        c = self.config
        if self._node is None:
            self._start_own_node()
        node = self._node
        self._subs = [node.create_subscription(JointState, c.joint_states_topic, self._on_joint_state,
                                               sensor_qos()),
                      node.create_subscription(String, c.instruction_topic, self._on_instruction,
                                               reliable_qos())]
        if c.image_topic:
            topic, kind = self.image_topic_and_type()
            msg_type = CompressedImage if kind == "compressed" else Image
            self._subs.append(node.create_subscription(msg_type, topic, self._on_image, sensor_qos()))
        if c.reward_topic:
            self._subs.append(node.create_subscription(Float32, c.reward_topic, self._on_reward,
                                                       sensor_qos()))
        if c.command == "trajectory":
            self._command_pub = node.create_publisher(JointTrajectory, c.trajectory_topic, reliable_qos())
        else:
            self._command_pub = node.create_publisher(Float64MultiArray, c.forward_topic, reliable_qos())
        self._connected_at = time.monotonic()
        if not self.wait_for_data(c.connect_timeout_s):
            log.warning("robot %s: %s; holding until they arrive", self.name, self.sensor_problem())

    def image_topic_and_type(self) -> tuple[str, str]:
        """The camera topic subscribed to and ``raw`` or ``compressed`` (image_transport naming)."""
        topic = self.config.image_topic
        if not self.config.compressed:
            return topic, "raw"
        return (topic if topic.endswith("/compressed") else topic.rstrip("/") + "/compressed"), "compressed"

    def _start_own_node(self) -> None:
        import rclpy
        from rclpy.executors import SingleThreadedExecutor

        if not rclpy.ok():
            rclpy.init()
            self._own_context = True
        node_name = self.config.node_name or "rill_" + re.sub(r"[^A-Za-z0-9_]", "_", self.name)
        self._node = rclpy.create_node(node_name)
        self._own_node = True
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self._node)
        self._spinning.set()
        self._spin_thread = threading.Thread(target=self._spin, name=f"ros-{self.name}", daemon=True)
        self._spin_thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        while self._spinning.is_set():
            try:
                self._executor.spin_once(timeout_sec=0.05)
            except ExternalShutdownException:
                return
            except Exception:  # one bad message must not end the robot's subscriptions
                log.exception("robot %s: a ROS callback failed; still listening", self.name)

    def wait_for_data(self, timeout_s: float) -> bool:
        """Wait until every sensor stream (joints, camera) is fresh; False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self.sensor_problem() is not None:
            if time.monotonic() >= deadline or (self.interrupt is not None and self.interrupt()):
                return False
            time.sleep(0.01)
        return True

    def _disconnect(self) -> None:
        from rclpy.duration import Duration

        node = self._node
        if self._command_pub is not None:
            self._command_pub.wait_for_all_acked(Duration(seconds=0.5))  # the hold gets there
            node.destroy_publisher(self._command_pub)
            self._command_pub = None
        for sub in self._subs:
            node.destroy_subscription(sub)
        self._subs = []
        if self._own_node:
            self._spinning.clear()
            if self._spin_thread is not None:
                self._spin_thread.join(timeout=2.0)
            self._executor.shutdown(timeout_sec=1.0)
            node.destroy_node()
            self._node, self._own_node = None, False
            if self._own_context:
                import rclpy

                rclpy.try_shutdown()
                self._own_context = False

    # -- sensor callbacks (executor thread) -------------------------------------------------------
    def _accept(self, topic: str, header) -> float | None:
        now_ros = self._node.get_clock().now().nanoseconds
        t = self.ages.accept(topic, stamp_ns(header.stamp), now_ros, time.monotonic())
        if t is not None:
            self.received[topic] += 1
        elif self._throttle(f"stale:{topic}"):
            log.warning("robot %s: dropping messages on %s older than %.3f s (%d so far)", self.name, topic,
                        self.config.max_age_s, self.ages.dropped_stale[topic])
        return t

    def _on_joint_state(self, msg) -> None:
        topic = self.config.joint_states_topic
        t = self._accept(topic, msg.header)
        if t is None:
            return
        try:
            found, pos, vel, missing = self._matcher.partial(msg.name, msg.position, msg.velocity)
        except ValueError as e:
            self.bad_messages[topic] += 1
            if self._throttle(f"bad:{topic}"):
                log.error("robot %s: malformed JointState: %s", self.name, e)
            return
        with self._data:
            self._pos[found], self._vel[found] = pos, vel
            self._seen[found] = t
            # A joint this message lacks is a problem only if no other publisher keeps it fresh.
            lost = [j for j in missing if t - self._seen[self._observed.index(j)] > self.config.max_age_s]
            was, self._missing = self._missing, lost
        if lost:
            self.bad_messages["missing_joints"] += 1
            if self._throttle("missing_joints"):
                log.warning("robot %s: %s lacks configured joint(s) %s; holding until they are reported",
                            self.name, topic, lost)
        elif was:
            log.info("robot %s: %s reports every configured joint again", self.name, topic)

    def _on_image(self, msg) -> None:
        topic, kind = self.image_topic_and_type()
        t = self._accept(topic, msg.header)
        if t is None:
            return
        shape = (self.config.image_height, self.config.image_width)
        try:
            rgb = compressed_to_rgb(msg, shape) if kind == "compressed" else image_to_rgb(msg, shape)
        except (UnsupportedEncodingError, ImageFormatError) as e:
            self.bad_messages[topic] += 1
            self._image_problem = str(e)
            if self._throttle(f"bad:{topic}"):
                log.error("robot %s: %s: %s", self.name, topic, e)
            return
        with self._data:
            self._image, self._image_t, self._image_problem = rgb, t, ""

    def _on_instruction(self, msg) -> None:
        with self._data:
            self._instruction = str(msg.data)
        self.received[self.config.instruction_topic] += 1

    def _on_reward(self, msg) -> None:
        value = float(msg.data)
        if not math.isfinite(value):
            self.bad_messages[self.config.reward_topic] += 1
            return
        with self._data:
            self._reward = value
        self.received[self.config.reward_topic] += 1

    # -- the robot hooks -------------------------------------------------------------------------
    def _observe(self) -> Observation:
        with self._data:
            ts = float(np.min(self._seen))
            if self.config.image_topic:
                ts = min(ts, self._image_t)
            obs: Observation = {"state": np.concatenate([self._pos, self._vel]).astype(np.float32),
                                "instruction": self._instruction}
            if self.config.image_topic:
                obs[self.image_key] = self._image.copy()
            if self.config.reward_topic:
                obs["reward"] = np.float32(self._reward)
            known = bool(np.all(np.isfinite(self._seen[: len(self.config.joints)])))
            measured = self._pos[: len(self.config.joints)].copy()
        obs["timestamp"] = ts if math.isfinite(ts) else -math.inf
        if known:
            with self._lock:  # the first measurement gives the per-tick delta bound its start
                if self._last_command is None or not np.all(np.isfinite(self._last_command)):
                    self._last_command = measured
        return obs

    def measured_positions(self) -> np.ndarray | None:
        """The commanded joints' latest measured positions, or None before every one was seen."""
        with self._data:
            n = len(self.config.joints)
            if not np.all(np.isfinite(self._seen[:n])):
                return None
            return self._pos[:n].copy()

    def _send(self, command: np.ndarray) -> None:
        if not np.all(np.isfinite(command)):
            if self._throttle("nonfinite"):
                log.error("robot %s: refusing to publish a non-finite command %s", self.name, command)
            return
        if self._command_pub is None:
            return
        c = self.config
        if c.command == "forward":
            self._command_pub.publish(forward_command_msg(command))
        else:
            points = [np.asarray(command, np.float32)]
            if self.plan is not None and c.lookahead:
                points.extend(self._bounded(points[0], self.plan(c.lookahead)))
            self._command_pub.publish(joint_trajectory_msg(c.joints, np.stack(points), 1.0 / c.control_hz))
        self.commands_sent += 1
        self.last_published = "command"

    def _bounded(self, start: np.ndarray, plan: list[np.ndarray]) -> list[np.ndarray]:
        """Look-ahead points held to the same joint limits and per-tick delta as commands."""
        out, prev = [], start
        for action in plan:
            action = np.asarray(action, np.float32).reshape(-1)
            if action.shape != start.shape or not np.all(np.isfinite(action)):
                break
            prev = self._action_spec.clamp(action, prev)
            out.append(prev)
        return out

    def _hold_command(self) -> np.ndarray:
        measured = self.measured_positions()
        if measured is None:
            return np.full(self._action_spec.shape, np.nan, np.float32)
        return measured

    def _hold(self) -> np.ndarray:
        if not self._holding or self._hold_target is None:
            self._hold_target = self.measured_positions()  # where the robot is as the hold begins
        if self._hold_target is None:
            return self._hold_command()  # nothing measured yet: publish nothing, the driver holds
        if self._command_pub is not None:
            c = self.config
            if c.command == "forward":
                self._command_pub.publish(forward_command_msg(self._hold_target))
            else:
                self._command_pub.publish(joint_trajectory_msg(c.joints, self._hold_target[None, :],
                                                               1.0 / c.control_hz))
            self.last_published = "hold"
        return self._hold_target.copy()

    def hold(self, reason: str = "") -> None:
        """Hold position; a hold for stale data says which data and since when."""
        if reason == "stale observation":
            reason = self.sensor_problem() or reason
        super().hold(reason)

    # -- health ----------------------------------------------------------------------------------
    def sensor_problem(self) -> str | None:
        """What keeps observations from being fresh, in words; None when every stream is fresh."""
        c = self.config
        now = time.monotonic()
        with self._data:
            seen = self._seen.copy()
            image_t, image_problem, missing = self._image_t, self._image_problem, list(self._missing)
        stale: list[tuple[float, str]] = []
        if np.any(now - seen > c.max_age_s):
            never = [j for j, t in zip(self._observed, seen) if not math.isfinite(t)]
            what = c.joint_states_topic
            if missing:
                what += f" (lacks joint(s) {missing})"
            elif never and len(never) < len(seen):
                what += f" (never reported joint(s) {never})"
            stale.append((float(np.min(seen)), what))
        if c.image_topic and now - image_t > c.max_age_s:
            what = self.image_topic_and_type()[0] + (f" ({image_problem})" if image_problem else "")
            stale.append((image_t, what))
        if not stale:
            return None
        since = min(t for t, _ in stale)
        if math.isfinite(since):
            when = f"{_wall_clock(since)} ({now - since:.1f} s)"
        else:
            when = f"start ({now - self._connected_at:.1f} s ago)"
        return f"no sensor data since {when}: " + "; ".join(w for _, w in stale)

    def _health_extra(self) -> dict[str, Any]:
        return {"received": dict(self.received), "bad_messages": dict(self.bad_messages),
                "commands_sent": self.commands_sent, "last_published": self.last_published,
                **self.ages.counters(),
                "sensor_problem": self.sensor_problem() or ""}
