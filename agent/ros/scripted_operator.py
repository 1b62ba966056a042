"""``scripted_operator``: a node standing in for the person at a simulated two-link arm.

It does what a person does at ``agent_node`` with ``operator.enabled`` and a teleop intervention:
starts each episode (``operator.event_topic``, addressing the episode the agent publishes on its
state topic), watches the arm, takes over when the arm heads away from the named target
(publishing ``std_msgs/Bool`` true on ``active_topic`` and joint commands toward the target on
``teleop_topic``), releases it, and marks the episode ``success`` when the fingertip is there or
``failure`` after ``give_up_s`` (with ``call_off_every`` N it also calls every Nth episode it starts
off as a ``failure`` after ``call_off_after_s``, as a person does with a run not worth finishing).
What it judges by is ``sim_node``'s ``task_topic`` (goal,
fingertip, distance): a simulator-only aid, where a real person would use their eyes.

``probe_bad_input`` first sends what an operator must not be able to get through: an event for an
episode that does not exist, a teleop command of the wrong width and one holding NaN.
``metrics_file`` records each thing it did (JSON lines), for tests.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.ros.params import check_unknown_parameters, declare_config, read_config
from agent.ros.runtime import NodeRuntime, run_main
from hal.config import check_number
from hal.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class ScriptedOperatorConfig:
    task_topic: str = "/sim/task"
    state_topic: str = "/rill/episode"
    event_topic: str = "/rill/operator/event"
    teleop_topic: str = "/teleop/command"
    active_topic: str = "/teleop/active"
    joint_states_topic: str = "/joint_states"
    joints: list[str] = field(default_factory=lambda: ["joint0", "joint1"])
    link_lengths: list[float] = field(default_factory=lambda: [0.1, 0.11])
    rate_hz: float = 20.0
    away_ticks: int = 3  # the distance grew this many samples in a row: the arm heads away
    away_margin: float = 0.01  # ... by at least this much in all (m)
    step: float = 0.15  # the largest joint change a command asks for (rad)
    give_up_s: float = 15.0
    # joints: commands are joint targets toward the goal (a two-link arm, by inverse kinematics);
    # velocity: commands are the end effector's velocity toward it (sim_node command_mode velocity)
    command: str = "joints"
    gain: float = 8.0  # velocity: command = clip(gain * (goal - tip), -1, 1)
    # mark success only after the simulator has reported it this long (a reward model watching the
    # camera may end the episode first); 0: at once
    success_after_s: float = 0.0
    call_off_every: int = 0  # 0: never
    call_off_after_s: float = 0.5
    start_delay_s: float = 0.5
    probe_bad_input: bool = False
    metrics_file: str = ""

    def __post_init__(self) -> None:
        for name in ("rate_hz", "step", "give_up_s"):
            check_number("scripted_operator", name, getattr(self, name), 0, strict=True)
        check_number("scripted_operator", "start_delay_s", self.start_delay_s, 0)
        check_number("scripted_operator", "success_after_s", self.success_after_s, 0)
        check_number("scripted_operator", "gain", self.gain, 0, strict=True)
        check_number("scripted_operator", "call_off_after_s", self.call_off_after_s, 0)
        if isinstance(self.call_off_every, bool) or not isinstance(self.call_off_every, int) \
                or self.call_off_every < 0:
            raise ConfigError("scripted_operator.call_off_every must be an integer >= 0, "
                              f"got {self.call_off_every!r}")
        if self.command not in ("joints", "velocity"):
            raise ConfigError(f"command must be 'joints' or 'velocity', got {self.command!r}")


class ScriptedOperator:
    def __init__(self, node: Any, config: ScriptedOperatorConfig) -> None:
        from sensor_msgs.msg import JointState
        from std_msgs.msg import Bool, Float64MultiArray, String

        from agent.ros.qos import reliable_qos

        self.node, self.config = node, config
        self._Bool, self._Array, self._String = Bool, Float64MultiArray, String
        self.state: dict | None = None
        self.task: dict | None = None
        self.q: np.ndarray | None = None
        self.active = False
        self.history: list[float] = []
        self.started: dict[int, int] = {}  # episode -> how many this operator had started with it
        self.marked: set[int] = set()
        self.waiting_since: float | None = None
        self.running_since: float | None = None
        self.success_since: float | None = None
        self.recent_success: list[bool] = []  # the simulator's word over the last task messages
        self.judged: set[int] = set()
        self.probed = not config.probe_bad_input
        # Line-buffered: a reader tailing the file sees each line as it happens.
        self._metrics = open(config.metrics_file, "a", buffering=1) if config.metrics_file else None  # noqa: SIM115
        q = reliable_qos()
        self.pub_event = node.create_publisher(String, config.event_topic, q)
        self.pub_command = node.create_publisher(Float64MultiArray, config.teleop_topic, q)
        self.pub_active = node.create_publisher(Bool, config.active_topic, q)
        node.create_subscription(String, config.state_topic, self._on_state, q)
        node.create_subscription(String, config.task_topic, self._on_task, q)
        node.create_subscription(JointState, config.joint_states_topic, self._on_joints, q)
        self.timer = node.create_timer(1.0 / config.rate_hz, self.tick)

    # -- intake ----------------------------------------------------------------------------------
    def _on_state(self, msg: Any) -> None:
        self.state = json.loads(msg.data)

    def _on_task(self, msg: Any) -> None:
        self.task = json.loads(msg.data)
        if self.state is not None and self.state.get("phase") == "running":
            self.recent_success = [*self.recent_success[-14:], bool(self.task.get("success"))]

    def _on_joints(self, msg: Any) -> None:
        by_name = dict(zip(msg.name, msg.position))
        if all(n in by_name for n in self.config.joints):
            self.q = np.array([by_name[n] for n in self.config.joints])

    # -- acting ----------------------------------------------------------------------------------
    def _record(self, what: str, **data: Any) -> None:
        log.info("scripted operator: %s %s", what, data)
        if self._metrics is not None:
            self._metrics.write(json.dumps({"t": round(time.monotonic(), 3), "what": what, **data}) + "\n")
            self._metrics.flush()

    def _event(self, event: str, episode: int) -> None:
        self.pub_event.publish(self._String(data=json.dumps({"episode": episode, "event": event})))
        self._record("event", event=event, episode=episode)

    def _probe(self) -> None:
        self._event("success", 999)
        self.pub_command.publish(self._Array(data=[0.1, 0.2, 0.3]))
        self.pub_command.publish(self._Array(data=[math.nan, 0.0]))
        self._record("probed")
        self.probed = True

    def _set_active(self, active: bool, episode: int) -> None:
        if active != self.active:
            self._record("take over" if active else "release", episode=episode)
        self.active = active
        self.history.clear()

    def tick(self) -> None:
        now = time.monotonic()
        state, task, q = self.state, self.task, self.q
        if state is None or task is None or q is None:
            return
        if not self.probed:
            self._probe()
        phase, episode = state["phase"], int(state["episode"])
        if phase != "running" and state.get("outcome") and episode not in self.judged:
            # what the simulator said as the episode ended, next to who ended it (for tests)
            self.judged.add(episode)
            self._record("ended", episode=episode, ended_by=state.get("ended_by"), outcome=state["outcome"],
                         sim_success=any(self.recent_success))
            self.recent_success = []
        if phase != "running":
            self._set_active(False, episode)
            self.running_since = None
            self.waiting_since = self.waiting_since or now
            if phase == "waiting" and state["next"] not in self.started \
                    and now - self.waiting_since >= self.config.start_delay_s:
                self.started[state["next"]] = len(self.started) + 1
                self._event("start", int(state["next"]))
        elif episode not in self.marked:
            self.waiting_since = None
            self.running_since = self.running_since or now
            self._running(episode, task, q, now)
        self.pub_active.publish(self._Bool(data=self.active))

    def _running(self, episode: int, task: dict, q: np.ndarray, now: float) -> None:
        from agent.ros.reach_policy import two_link_ik

        if task["success"]:
            self.success_since = self.success_since or now
        else:
            self.success_since = None
        if self.success_since is not None and now - self.success_since >= self.config.success_after_s:
            self.marked.add(episode)
            self._set_active(False, episode)
            self._event("success", episode)
            return
        every, nth = self.config.call_off_every, self.started.get(episode)
        called_off = every > 0 and nth is not None and nth % every == 0 \
            and now - self.running_since >= self.config.call_off_after_s
        if called_off or now - self.running_since > self.config.give_up_s:
            self.marked.add(episode)
            self._set_active(False, episode)
            self._event("failure", episode)
            return
        if not self.active:
            self.history = ([*self.history, float(task["distance"])])[-(self.config.away_ticks + 1):]
            h = self.history
            away = len(h) > self.config.away_ticks and all(b > a for a, b in itertools.pairwise(h))
            if away and h[-1] - h[0] >= self.config.away_margin:
                self._set_active(True, episode)
            return
        if self.config.command == "velocity":
            gap = np.asarray(task["goal"]) - np.asarray(task["tip"])
            velocity = np.clip(self.config.gain * gap, -1.0, 1.0)
            self.pub_command.publish(self._Array(data=[float(v) for v in velocity]))
            return
        target = two_link_ik(np.asarray(task["goal"]), self.config.link_lengths, q)
        command = q + np.clip(target - q, -self.config.step, self.config.step)
        self.pub_command.publish(self._Array(data=[float(v) for v in command]))

    def close(self) -> None:
        self.timer.cancel()
        if self._metrics is not None:
            self._metrics.close()


def _run(runtime: NodeRuntime) -> int:
    import rclpy

    node = rclpy.create_node("scripted_operator")
    fields = declare_config(node, ScriptedOperatorConfig)
    check_unknown_parameters(node, fields)
    operator = ScriptedOperator(node, read_config(node, ScriptedOperatorConfig))
    try:
        runtime.spin_until_stopped(node)
    finally:
        operator.close()
        runtime.close(node)
    return 0


def main(args: list[str] | None = None) -> int:
    return run_main("scripted_operator", _run, args)


if __name__ == "__main__":
    raise SystemExit(main())
