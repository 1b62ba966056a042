"""``SensorIntake``: what a ``Ros2Robot`` hears on its topics, and the observation it makes of it.

In: ``sensor_msgs/JointState`` (joints matched by name; several publishers may each report some
joints), ``sensor_msgs/Image`` or ``CompressedImage`` (sensor-data QoS), ``std_msgs/String``
instruction, optionally a ``std_msgs/Float32`` reward.

Freshness: each message's age is measured on arrival against its header stamp (``timing``);
messages older than ``max_age_s`` are dropped and counted. The observation's ``timestamp`` is the
monotonic time of its oldest part (the stalest joint, the image), and ``-inf`` while a part has
never arrived, so the control loop sees stale data and holds: it never acts on an observation
made from nothing; with ``wait_for_instruction`` the same holds until a first instruction
arrives (an instruction never goes stale: it stands until the next one). ``problem()`` says in
words what is missing (``no sensor data since 14:03:05.120 (2.3 s): /joint_states``, ``no
instruction yet on /instruction``), for the hold's reason and the robot's health.

The callbacks run on the executor's thread, the readers on the control loop's: one lock guards
the latest values.
"""

from __future__ import annotations

import logging
import math
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
    image_to_rgb,
)
from agent.ros.log_throttle import LogThrottle
from agent.ros.robot_config import Ros2RobotConfig
from agent.ros.timing import MessageAges, stamp_ns
from hal.robot import Observation
from hal.specs import FeatureSpec

log = logging.getLogger(__name__)


def _wall_clock(monotonic_t: float) -> str:
    wall = time.time() - (time.monotonic() - monotonic_t)
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f".{int(wall % 1 * 1000):03d}"


class SensorIntake:
    """The subscriptions of robot ``robot_name`` (named in log lines) and the latest fresh data.

    ``observation_spec`` is plain data, known before ``start``. ``received``, ``bad_messages``
    and ``ages`` count every message per topic, for the robot's health.
    """

    def __init__(self, robot_name: str, config: Ros2RobotConfig) -> None:
        self.robot_name = robot_name
        self.config = c = config
        self._observed = [*c.joints, *c.extra_state_joints]
        n = len(self._observed)
        self.observation_spec: dict[str, FeatureSpec] = {
            "state": FeatureSpec((2 * n,), "float32"),
            "instruction": FeatureSpec((), "str", allow_empty=True)}
        if c.image_topic:
            self.observation_spec[self.image_key] = FeatureSpec((c.image_height, c.image_width, 3), "uint8")
        if c.reward_topic:
            self.observation_spec["reward"] = FeatureSpec((), "float32")
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
        self._throttle = LogThrottle()
        self.started_at = time.monotonic()  # "no sensor data since start (x s ago)" counts from here
        self._node: Any = None
        self._subs: list[Any] = []

    @property
    def image_key(self) -> str:
        return f"image.{self.config.camera}"

    def image_topic_and_type(self) -> tuple[str, str]:
        """The camera topic subscribed to and ``raw`` or ``compressed`` (image_transport naming)."""
        topic = self.config.image_topic
        if not self.config.compressed:
            return topic, "raw"
        return (topic if topic.endswith("/compressed") else topic.rstrip("/") + "/compressed"), "compressed"

    # -- subscribing -----------------------------------------------------------------------------
    def start(self, node: Any) -> None:
        """Subscribe on ``node`` (whoever spins it delivers the messages)."""
        from sensor_msgs.msg import CompressedImage, Image, JointState
        from std_msgs.msg import Float32, String

        from agent.ros.qos import reliable_qos, sensor_qos

        c = self.config
        self._node = node
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
        self.started_at = time.monotonic()

    def stop(self) -> None:
        """Unsubscribe. The node stays the robot's (or its owner's) to destroy."""
        for sub in self._subs:
            self._node.destroy_subscription(sub)
        self._subs = []

    def wait_until_fresh(self, timeout_s: float, interrupt: Callable[[], bool] | None = None) -> bool:
        """Wait until every sensor stream (joints, camera) is fresh and, with ``wait_for_instruction``,
        an instruction is in; False on timeout or ``interrupt()``."""
        deadline = time.monotonic() + timeout_s
        while self.problem() is not None:
            if time.monotonic() >= deadline or (interrupt is not None and interrupt()):
                return False
            time.sleep(0.01)
        return True

    # -- callbacks (executor thread) -------------------------------------------------------------
    def _accept(self, topic: str, header) -> float | None:
        now_ros = self._node.get_clock().now().nanoseconds
        t = self.ages.accept(topic, stamp_ns(header.stamp), now_ros, time.monotonic())
        if t is not None:
            self.received[topic] += 1
        elif self._throttle(f"stale:{topic}"):
            log.warning("robot %s: dropping messages on %s older than %.3f s (%d so far)", self.robot_name,
                        topic, self.config.max_age_s, self.ages.dropped_stale[topic])
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
                log.error("robot %s: malformed JointState: %s", self.robot_name, e)
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
                            self.robot_name, topic, lost)
        elif was:
            log.info("robot %s: %s reports every configured joint again", self.robot_name, topic)

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
                log.error("robot %s: %s: %s", self.robot_name, topic, e)
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

    # -- reading (control loop thread) -----------------------------------------------------------
    def observation(self) -> tuple[Observation, np.ndarray | None]:
        """The observation of the latest data, with its ``timestamp``, and the commanded joints'
        positions in it (None before every one was measured), both read at one instant."""
        c = self.config
        with self._data:
            ts = float(np.min(self._seen))
            if c.image_topic:
                ts = min(ts, self._image_t)
            obs: Observation = {"state": np.concatenate([self._pos, self._vel]).astype(np.float32),
                                "instruction": self._instruction}
            if c.image_topic:
                obs[self.image_key] = self._image.copy()
            if c.reward_topic:
                obs["reward"] = np.float32(self._reward)
            known = bool(np.all(np.isfinite(self._seen[: len(c.joints)])))
            measured = self._pos[: len(c.joints)].copy()
        if c.wait_for_instruction and not obs["instruction"]:
            ts = -math.inf
        obs["timestamp"] = ts if math.isfinite(ts) else -math.inf
        return obs, (measured if known else None)

    def measured_positions(self) -> np.ndarray | None:
        """The commanded joints' latest measured positions, or None before every one was seen."""
        with self._data:
            n = len(self.config.joints)
            if not np.all(np.isfinite(self._seen[:n])):
                return None
            return self._pos[:n].copy()

    def problem(self) -> str | None:
        """What keeps observations from being fresh, in words; None when every stream is fresh."""
        c = self.config
        now = time.monotonic()
        with self._data:
            seen = self._seen.copy()
            image_t, image_problem, missing = self._image_t, self._image_problem, list(self._missing)
            no_instruction = bool(c.wait_for_instruction) and not self._instruction
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
        waiting = f"no instruction yet on {c.instruction_topic}" if no_instruction else None
        if not stale:
            return waiting
        since = min(t for t, _ in stale)
        if math.isfinite(since):
            when = f"{_wall_clock(since)} ({now - since:.1f} s)"
        else:
            when = f"start ({now - self.started_at:.1f} s ago)"
        text = f"no sensor data since {when}: " + "; ".join(w for _, w in stale)
        return f"{text}; {waiting}" if waiting else text
