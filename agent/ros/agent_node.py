"""``agent_node``: the control loop, a policy and the learner client, on a ``Ros2Robot``.

Configured entirely by ROS parameters (``agent_config``; defaults in ``config/ros_agent.yaml``).
The node's callbacks (sensor messages, diagnostics) run on an executor thread; the control loop
runs on the main thread at ``robot.control_hz`` and never waits for ROS, the policy or the
learner. It publishes loop health on ``/diagnostics`` and rewrites a status file (``status_file``;
empty with a learner client: ``<learner.run_dir>/actors/<actor_id>/status.json``) whose
``supervision`` section (``agent.supervision``) is what ``rill watch`` shows. On SIGINT or
SIGTERM the loop stops, the robot holds where it is (the hold command is acknowledged before ROS
shuts down), the learner link drains for up to two seconds, and the node exits 0. A configuration
error exits 2 with one line naming the parameter.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from agent.ros.agent_config import DERIVED, AgentNodeConfig
from agent.ros.params import check_unknown_parameters, declare_config, read_config
from agent.ros.runtime import NodeRuntime, run_main

log = logging.getLogger(__name__)


def planned_actions(loop: Any, n: int) -> list[np.ndarray]:
    """The next ``n`` actions the loop's chunk schedule holds after the current tick (look-ahead)."""
    out = []
    for h in range(1, n + 1):
        action = loop.schedule.action(loop.tick + h)
        if action is None:
            break
        out.append(action)
    return out


def _instruction_waits(config: AgentNodeConfig) -> Any:
    """The robot's config with ``wait_for_instruction`` decided when left unset: on when something
    reads the task (a reward model, an instruction-following policy, transitions kept as reward-model
    data), so nothing acts on, scores or records an empty instruction while the first is in flight."""
    robot = config.robot
    if robot.wait_for_instruction is not None:
        return robot
    reads = bool(config.reward.model) or config.policy.type in ("vla", "reach") or (
        bool(config.learner.endpoint) and config.learner.keep_images)
    return dataclasses.replace(robot, wait_for_instruction=reads)


def read_agent_config(node: Any) -> AgentNodeConfig:
    """Declare ``agent_node``'s parameters on ``node`` and build its config from them."""
    fields = declare_config(node, AgentNodeConfig, exclude=DERIVED)
    check_unknown_parameters(node, fields)
    control_hz = node.get_parameter("robot.control_hz").value
    fixed = {"loop.control_hz": float(control_hz) if isinstance(control_hz, (int, float)) else 50.0}
    return read_config(node, AgentNodeConfig, exclude=DERIVED, fixed=fixed)


class AgentNode:
    """Everything ``agent_node`` runs, built from its config around a ROS node."""

    def __init__(self, node: Any, config: AgentNodeConfig) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        from agent.loop import ControlLoop
        from agent.ros.policy_factory import build_policy
        from agent.ros.qos import reliable_qos
        from agent.ros.robot import Ros2Robot

        self.node, self.config = node, config
        from agent.reward.robot import with_reward_model

        self.robot = Ros2Robot(node.get_name(), _instruction_waits(config), node=node)
        # What the loop drives: the robot, its task signals from a reward model when reward.model is set
        from hal.errors import ConfigError
        from policies.reward import RewardModelError

        try:
            self.acting = with_reward_model(self.robot, config.reward)
        except RewardModelError as e:  # a model for another camera, a damaged file: refused at start-up
            raise ConfigError(f"reward.model {config.reward.model!r}: {e}") from None
        if config.learner.endpoint and not (config.robot.reward_topic or config.reward.model
                                            or config.operator.enabled):
            log.warning("learning with no reward: robot.reward_topic, reward.model and operator.enabled are "
                        "all unset, so every transition's reward is 0")
        state_dim = self.robot.observation_spec["state"].shape[0]
        action_dim = self.robot.action_spec.dim
        self.learner = None
        if config.learner.endpoint:
            from agent.actor.ticks import TickTransitions

            self.learner = TickTransitions(config.learner, state_dim, action_dim)
        self.policy = build_policy(config.policy, state_dim, action_dim, 1.0 / config.robot.control_hz,
                                   self.learner)
        self.episodes, self.operator_topics, self.intervention = self._operator(node, config)
        self.instruction = ""  # the newest tick's, for the status (set on the control thread, read by report)
        self.status_path = self._status_path(config)
        self._last_status_error = -math.inf
        self.loop = ControlLoop(self.acting, self.policy, config.loop,
                                on_tick=self._on_tick,
                                intervention=self.intervention, episodes=self.episodes)
        self.robot.plan = lambda n: planned_actions(self.loop, n)
        self.diagnostics = node.create_publisher(DiagnosticArray, config.diagnostics_topic, reliable_qos())
        self._timer = node.create_timer(1.0 / config.diagnostics_hz, self.report)
        self._last_log = 0.0
        self.learner_errors = 0

    def _operator(self, node: Any, config: AgentNodeConfig) -> tuple:
        """The episode controller and its topics (``operator.enabled``) and the teleop intervention
        source (``intervention.topic``), each None when off."""
        episodes = topics = intervention = None
        spec = self.robot.action_spec
        if config.operator.enabled:
            from agent.operator.episodes import EpisodeController
            from agent.ros.operator_topics import OperatorTopics

            def measured(obs: dict) -> Any:
                return self.robot.measured_positions()

            # With a learner, episode numbers continue its episode log's (a restarted node).
            episodes = EpisodeController(config.operator, spec.dim, config.robot.control_hz,
                                         reset_robot=self.acting.reset, measure=measured,
                                         on_start=getattr(self.acting, "new_episode", None),
                                         first_episode=1 + (self.learner.episode if self.learner else 0))
            topics = OperatorTopics(node, config.operator, episodes)
        if config.intervention.topic:
            from agent.ros.intervention import TeleopIntervention

            intervention = TeleopIntervention(config.intervention, spec, 1.0 / config.robot.control_hz, node)
        return episodes, topics, intervention

    def _status_path(self, config: AgentNodeConfig) -> Path | None:
        """``status_file``; when empty, ``<learner.run_dir>/actors/<actor_id>/status.json`` next to the
        episode log (with a learner client), so a supervisor always has a file to watch."""
        if config.status_file:
            return Path(config.status_file)
        if self.learner is not None:
            return self.learner.feed.dir / "status.json"
        return None

    def _on_tick(self, record: Any) -> None:
        """Note the tick's instruction; hand the tick to the learner client, whose failure costs that
        transition, never the loop."""
        self.instruction = str(record.observation.get("instruction", self.instruction))
        if self.learner is None:
            return
        try:
            self.learner.on_tick(record)
        except Exception as e:
            self.learner_errors += 1
            if self.learner_errors == 1 or self.learner_errors % 500 == 0:
                log.error("learner client failed on a tick (%d so far): %s: %s", self.learner_errors,
                          type(e).__name__, e)

    def snapshot(self) -> dict[str, Any]:
        from agent.ros.diagnostics import loop_snapshot

        snap = loop_snapshot(self.loop, self.robot, self.learner)
        snap["time"] = time.time()
        snap["supervision"] = self.supervision(snap)
        return snap

    def supervision(self, snap: dict[str, Any]) -> dict[str, Any]:
        """What a person supervising the robot watches (``agent.supervision``), from counters the
        control thread leaves behind: nothing here waits on it or reads a file."""
        from agent.supervision import loop_health, reward_model_state, supervision_section

        if self.episodes is not None:
            state = self.episodes.state()
            episode = {k: state[k] for k in ("episode", "phase", "takeovers", "intervened_steps", "phase_s")}
        else:
            episode = {"episode": self.learner.episode if self.learner else self.loop.episode,
                       "phase": "running", "takeovers": self.learner.takeovers if self.learner else None,
                       "intervened_steps": self.learner.intervened_steps if self.learner else None}
        return supervision_section(
            time_s=snap["time"], period_s=1.0 / self.config.diagnostics_hz, instruction=self.instruction,
            reward_model=reward_model_state(self.acting), episode=episode,
            tally=self.learner.tally if self.learner else None, loop=loop_health(snap))

    def report(self) -> None:
        """Publish diagnostics, rewrite the status file, and log a problem every few seconds."""
        from agent.ros.diagnostics import ERROR, diagnostic_array

        snap = self.snapshot()
        snap["learner_errors"] = self.learner_errors
        if self.episodes is not None:
            topics = self.operator_topics
            snap["episode"] = dict(self.episodes.state(), malformed=sum(topics.malformed.values()),
                                   last_malformed=topics.last_malformed)
        if self.intervention is not None:
            snap["intervention"] = dict(self.loop.interventions.summary(), **self.intervention.stats())
        self.diagnostics.publish(diagnostic_array(snap, f"rill: {self.node.get_name()} control loop",
                                                  self.node.get_fully_qualified_name(),
                                                  self.node.get_clock().now().to_msg()))
        self.write_status(snap)
        if snap["level"] == ERROR and time.monotonic() - self._last_log > 5.0:
            self._last_log = time.monotonic()
            log.warning("control loop holding the robot: %s", snap["message"])

    def write_status(self, snap: dict[str, Any] | None = None, **extra: Any) -> None:
        """Replace the status file (``status_path``) with ``snap`` (atomically: a reader never sees
        half of it); a failure to write is logged, never raised into the timer."""
        if self.status_path is None:
            return
        snap = dict(snap or self.snapshot(), **extra)
        if extra.get("stopped"):
            snap["supervision"]["loop"]["state"] = "stopped"
        path = self.status_path
        tmp = path.with_name(path.name + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(snap, default=str))
            os.replace(tmp, path)
        except OSError as e:
            if time.monotonic() - self._last_status_error > 30.0:
                self._last_status_error = time.monotonic()
                log.error("status file %s: could not write it: %s", path, e)

    def run(self, should_stop) -> None:
        self.robot.interrupt = should_stop
        self.robot.connect()
        log.info("agent_node: %d joints %s at %.0f Hz, policy %s, commands on %s%s",
                 self.robot.action_spec.dim, list(self.robot.action_spec.names), self.robot.control_hz,
                 self.config.policy.type, self.config.robot.trajectory_topic
                 if self.config.robot.command == "trajectory" else self.config.robot.forward_topic,
                 f", learner {self.config.learner.endpoint}" if self.learner else "")
        try:
            self.loop.run(self.config.ticks or None, should_stop=should_stop)
        finally:
            self.robot.disconnect()  # holds, and waits for the hold to be acknowledged
            if self.learner is not None:
                self.learner.close(drain_s=2.0)
            self._timer.cancel()
            extra = {}
            if self.episodes is not None:
                self.operator_topics.close()
                extra["episode"] = self.episodes.state()
            if self.intervention is not None:
                extra["intervention"] = dict(self.loop.interventions.summary(), **self.intervention.stats())
            self.write_status(stopped=True, last_published=self.robot.last_published, **extra)
            log.info("agent_node stopped after %d ticks (%d holds); robot held", self.loop.stats.ticks,
                     self.loop.stats.holds)


def _run(runtime: NodeRuntime) -> int:
    import rclpy

    node = rclpy.create_node("agent_node")
    try:
        agent = AgentNode(node, read_agent_config(node))
        runtime.spin_in_background(node)
        agent.run(runtime.stop.is_set)
    finally:
        runtime.close(node)
    return 0


def main(args: list[str] | None = None) -> int:
    return run_main("agent_node", _run, args)


if __name__ == "__main__":
    raise SystemExit(main())
