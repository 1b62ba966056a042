"""``sim_node``: a simulated MuJoCo robot speaking the topics a real ROS 2 arm speaks.

It builds a ``hal.Robot`` from the registry (``robot_type`` + ``robot_params``; default the
``sim-mujoco`` robot on gym's ``Reacher-v5``, a two-joint arm) and steps it in real time at
``rate_hz``. Each step it publishes ``sensor_msgs/JointState`` (the MuJoCo model's joint names),
every few steps a camera image (the robot's own ``image.*`` observation, or rendered with
``mujoco.Renderer``; ``MUJOCO_GL=egl`` renders without a display), the task's reward, and the
instruction of the current episode; it obeys ``JointTrajectory`` and ``Float64MultiArray``
position commands, so the whole ROS path runs without hardware. ``metrics_file`` (JSON lines, one
per step, written line by line so that a reader tailing it sees each step as it happens) records what
happened, for tests and plots.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from agent.ros.params import check_unknown_parameters, declare_config, read_config
from agent.ros.runtime import NodeRuntime, run_main
from hal.config import RobotConfig, check_number
from hal.errors import ConfigError

log = logging.getLogger(__name__)

ENCODINGS = ("rgb8", "bgr8", "mono8")
COMMAND_MODES = ("auto", "position", "torque", "velocity")  # velocity: the tabletop's pusher


@dataclass
class SimNodeConfig:
    """The ROS parameters of ``sim_node``."""

    robot_type: str = "sim-mujoco"
    robot_params: dict[str, Any] = field(default_factory=dict)  # sim-mujoco: env_id Reacher-v5 if not given
    robot_name: str = "sim-arm"
    episode_steps: int = 0  # 0: the environment's own episode length
    rate_hz: float = 0.0  # 0: the robot's control rate
    joint_states_topic: str = "/joint_states"
    image_topic: str = "/camera/image_raw"  # "": no camera
    image_encoding: str = "rgb8"
    image_width: int = 96
    image_height: int = 96
    camera_hz: float = 10.0
    camera_distance: float = 0.6
    camera_elevation: float = -90.0
    camera_azimuth: float = 90.0
    trajectory_topic: str = "/joint_trajectory_controller/joint_trajectory"
    forward_topic: str = "/forward_position_controller/commands"
    command_mode: str = "auto"  # auto: position servos take targets, torque motors get a PD law
    kp: float = 5.0
    kd: float = 0.3
    instruction: str = ""  # "": the scene's own (a reaching scene names its target)
    instruction_topic: str = "/instruction"
    instruction_hz: float = 1.0
    reward_topic: str = "/reward"  # "": none
    # A simulator-only aid for scripted operators (``scripted_operator``): the goal, the end
    # effector and whether it is there, as JSON on this topic every step ("": none). A real robot has
    # no such topic; a person judges instead.
    task_topic: str = ""
    success_distance: float = 0.02
    velocity_topic: str = "/forward_velocity_controller/commands"  # command_mode velocity
    # In simulation, the scene a person would re-arrange between episodes: a new layout (and
    # instruction) each time the agent's episode state (agent_node's operator.state_topic) says an
    # episode ended ("": never).
    episode_state_topic: str = ""
    metrics_file: str = ""

    def __post_init__(self) -> None:
        if self.robot_type == "sim-mujoco" and "env_id" not in self.robot_params:
            self.robot_params = {**self.robot_params, "env_id": "Reacher-v5"}
        if self.image_encoding not in ENCODINGS:
            raise ConfigError(f"image_encoding must be one of {ENCODINGS}, got {self.image_encoding!r}")
        if self.command_mode not in COMMAND_MODES:
            raise ConfigError(f"command_mode must be one of {COMMAND_MODES}, got {self.command_mode!r}")
        check_number("sim_node", "success_distance", self.success_distance, 0, strict=True)
        for name in ("rate_hz", "kp", "kd"):
            check_number("sim_node", name, getattr(self, name), 0)
        for name in ("camera_hz", "instruction_hz"):
            check_number("sim_node", name, getattr(self, name), 0, strict=True)
        if self.episode_steps < 0 or self.image_width < 1 or self.image_height < 1:
            raise ConfigError("episode_steps must be >= 0 and image_width / image_height >= 1")


def set_episode_steps(env: Any, steps: int) -> bool:
    """Give a gymnasium env's ``TimeLimit`` a new episode length; False if it has none."""
    while env is not None:
        if hasattr(env, "_max_episode_steps"):
            env._max_episode_steps = steps
            return True
        env = getattr(env, "env", None)
    return False


class SimNode:
    """The simulation behind ``sim_node``'s topics; ``tick()`` is one real-time step."""

    def __init__(self, node: Any, config: SimNodeConfig) -> None:
        import mujoco
        from sensor_msgs.msg import Image, JointState
        from std_msgs.msg import Float32, Float64MultiArray, String
        from trajectory_msgs.msg import JointTrajectory

        import sim.robots  # noqa: F401  registers the simulated robot types
        from agent.ros.qos import reliable_qos, sensor_qos
        from agent.ros.sim_joints import CommandFollower, MujocoJoints, mujoco_handles
        from agent.ros.sim_tasks import SceneTask
        from hal.registry import make_robot

        self.node, self.config = node, config
        c = config
        self.robot = make_robot(RobotConfig(c.robot_name, c.robot_type, dict(c.robot_params)))
        if c.episode_steps and not set_episode_steps(getattr(self.robot, "env", None), c.episode_steps):
            log.warning("robot %s has no episode time limit to set; episode_steps ignored", c.robot_name)
        self.robot.connect()
        self.model, self.data = mujoco_handles(self.robot)
        self.joints = MujocoJoints(self.model, self.data)
        mode = c.command_mode
        if mode == "auto":
            mode = "position" if self.joints.position_servos else "torque"
        self.mode = mode
        self.pusher = None
        if mode == "velocity":
            from agent.ros.sim_pusher import PusherAxes, has_pusher

            if not has_pusher(self.robot):
                raise ConfigError(f"command_mode 'velocity' needs a robot with a pusher (sim-tabletop), "
                                  f"not {c.robot_type!r}")
            self.pusher = PusherAxes(self.robot, c.rate_hz or self.robot.control_hz)
        self._scene_reset_after = 0  # the last agent episode whose end re-arranged the scene
        self.follower = CommandFollower(self.joints.commanded)
        self.task = SceneTask(self.model, self.data, c.instruction)
        self.rate_hz = c.rate_hz or self.robot.control_hz
        self._camera_every = max(1, round(self.rate_hz / c.camera_hz))
        self._instruction_every = max(1, round(self.rate_hz / c.instruction_hz))
        self._own_image = next((k for k in self.robot.observation_spec if k.startswith("image.")), None)
        self._renderer = None
        self._camera = mujoco.MjvCamera()
        self.steps = 0
        self.episode = getattr(self.robot, "episode", 0)
        self.instruction = ""
        self._metrics = open(c.metrics_file, "a", buffering=1) if c.metrics_file else None  # noqa: SIM115
        self._t0 = time.monotonic()
        self.pub_joints = node.create_publisher(JointState, c.joint_states_topic, reliable_qos())
        self.pub_image = node.create_publisher(Image, c.image_topic, sensor_qos()) if c.image_topic else None
        self.pub_reward = node.create_publisher(Float32, c.reward_topic, reliable_qos()) if c.reward_topic \
            else None
        self.pub_instruction = node.create_publisher(String, c.instruction_topic, reliable_qos())
        self.pub_task = node.create_publisher(String, c.task_topic, reliable_qos()) if c.task_topic else None
        node.create_subscription(JointTrajectory, c.trajectory_topic, self._on_trajectory, reliable_qos())
        node.create_subscription(Float64MultiArray, c.forward_topic, self._on_forward, reliable_qos())
        if self.pusher is not None:
            node.create_subscription(Float64MultiArray, c.velocity_topic,
                                     lambda msg: self.pusher.on_command(list(msg.data)), reliable_qos())
        if c.episode_state_topic:
            node.create_subscription(String, c.episode_state_topic, self._on_episode_state, reliable_qos())
        log.info("sim_node: %s (%s), joints %s, commanded %s by %s, %.0f Hz", c.robot_name, c.robot_type,
                 self.joints.names, self.joints.commanded,
                 "position targets" if mode == "position" else f"PD (kp={c.kp}, kd={c.kd})", self.rate_hz)
        self._new_episode()
        self.timer = node.create_timer(1.0 / self.rate_hz, self.tick)

    # -- commands --------------------------------------------------------------------------------
    def _on_trajectory(self, msg) -> None:
        from agent.ros.conversions import trajectory_points

        try:
            names, times, points = trajectory_points(msg)
        except ValueError as e:
            self.follower.rejected += 1
            log.error("trajectory rejected: %s", e)
            return
        self.follower.trajectory(names, times, points, time.monotonic(), self.joints.commanded_positions())

    def _on_forward(self, msg) -> None:
        self.follower.forward(list(msg.data))

    def _on_episode_state(self, msg) -> None:
        try:
            state = json.loads(msg.data)
            ended = int(state["episode"]) if state.get("phase") != "running" and state.get("outcome") else 0
        except (ValueError, TypeError, KeyError):
            return
        if ended > self._scene_reset_after:
            self._scene_reset_after = ended
            self.robot.reset()  # a new layout and instruction, as a person would re-arrange the table
            log.info("agent episode %d ended: scene re-arranged", ended)

    # -- one step --------------------------------------------------------------------------------
    def _new_episode(self) -> None:
        self.follower.clear(self.joints.commanded_positions())
        own = ""  # a robot that poses its own task (the tabletop names a block) says it
        if "instruction" in self.robot.observation_spec:
            own = str(self.robot.observe().get("instruction", ""))
        self.instruction = self.task.fixed_instruction or own or self.task.instruction()
        self._publish_instruction()

    def tick(self) -> None:
        from agent.ros.sim_joints import pd_torque

        q, qd = self.joints.commanded_positions(), self.joints.commanded_velocities()
        if self.pusher is not None:
            target = action = self.pusher.action()
        else:
            target = self.follower.target(time.monotonic(), q)
            if self.mode == "position":
                action = target.astype(np.float32)
            else:
                action = pd_torque(target, q, qd, self.config.kp, self.config.kd)
        self.robot.act(action)
        if self.pusher is not None:
            self.pusher.stepped()
        self.steps += 1
        episode = getattr(self.robot, "episode", 0)
        if episode != self.episode:
            self.episode = episode
            self._new_episode()
        elif self.steps % self._instruction_every == 0:
            self._publish_instruction()
        self._publish_state()
        if self.pub_task is not None:
            self._publish_task()
        if self.pub_image is not None and self.steps % self._camera_every == 0:
            self._publish_image()
        self._record(target)

    def _stamp(self):
        return self.node.get_clock().now().to_msg()

    def _publish_state(self) -> None:
        from std_msgs.msg import Float32

        from agent.ros.conversions import joint_state_msg

        names, positions, velocities = self.joints.names, self.joints.positions(), self.joints.velocities()
        if self.pusher is not None:
            from agent.ros.sim_pusher import AXES

            names = [*names, *AXES]
            positions = [*positions, *self.pusher.positions()]
            velocities = [*velocities, *self.pusher.velocities()]
        self.pub_joints.publish(joint_state_msg(names, positions, velocities, self._stamp()))
        if self.pub_reward is not None:
            obs = self.robot.observe()
            reward = float(obs["reward"]) if "reward" in obs else 0.0
            self.pub_reward.publish(Float32(data=reward))

    def _publish_task(self) -> None:
        from std_msgs.msg import String

        if self.pusher is not None:
            success = bool(self.robot.observe().get("success", False))
            self.pub_task.publish(String(data=json.dumps(
                {"episode": self.episode, **self.pusher.task(success, self.instruction)})))
            return
        if not self.task.reaching:  # the scene names no target to judge by
            return
        goal, tip = self.data.body("target").xpos[:2], self.data.body("fingertip").xpos[:2]
        distance = float(np.linalg.norm(tip - goal))
        self.pub_task.publish(String(data=json.dumps({
            "episode": self.episode, "goal": [round(float(v), 5) for v in goal],
            "tip": [round(float(v), 5) for v in tip], "distance": round(distance, 5),
            "success": distance < self.config.success_distance, "instruction": self.instruction})))

    def _publish_instruction(self) -> None:
        from std_msgs.msg import String

        if self.instruction:
            self.pub_instruction.publish(String(data=self.instruction))

    def _render(self) -> np.ndarray:
        import mujoco

        c = self.config
        if self._own_image is not None:
            return np.asarray(self.robot.observe()[self._own_image], np.uint8)
        if self._renderer is None:  # made on the thread that renders: its GL context lives there
            # llvmpipe renders on this thread, not on threads of its own (sim/tabletop/camera.py says
            # why); read when the process makes its first GL context, which may be this one
            os.environ.setdefault("LP_NUM_THREADS", "0")
            self._renderer = mujoco.Renderer(self.model, c.image_height, c.image_width)
            mujoco.mjv_defaultFreeCamera(self.model, self._camera)
            self._camera.distance = c.camera_distance
            self._camera.elevation, self._camera.azimuth = c.camera_elevation, c.camera_azimuth
        self._renderer.update_scene(self.data, camera=self._camera)
        return self._renderer.render()

    def _publish_image(self) -> None:
        from agent.ros.conversions import image_msg

        self.pub_image.publish(image_msg(self._render(), self.config.image_encoding, self._stamp()))

    def _record(self, target: np.ndarray) -> None:
        if self._metrics is None:
            return
        distance = self.task.distance()
        row = {"t": round(time.monotonic() - self._t0, 4), "episode": self.episode, "step": self.steps,
               "q": [round(float(v), 4) for v in self.joints.commanded_positions()],
               "target": [round(float(v), 4) for v in target],
               "distance": None if distance is None else round(distance, 5),
               "trajectories": self.follower.trajectories, "forward_commands": self.follower.forward_commands,
               "rejected": self.follower.rejected, "instruction": self.instruction}
        self._metrics.write(json.dumps(row) + "\n")

    def close(self) -> None:
        self.timer.cancel()
        self.robot.disconnect()
        if self._renderer is not None:
            self._renderer.close()
        if self._metrics is not None:
            self._metrics.close()


def _run(runtime: NodeRuntime) -> int:
    import rclpy

    node = rclpy.create_node("sim_node")
    fields = declare_config(node, SimNodeConfig)
    check_unknown_parameters(node, fields)
    config = read_config(node, SimNodeConfig)
    sim = SimNode(node, config)
    try:
        runtime.spin_until_stopped(node)
    finally:
        sim.close()
        lag = time.monotonic() - sim._t0 - sim.steps / sim.rate_hz
        log.info("sim_node stopped after %d steps (%.1f s behind real time)", sim.steps, max(lag, 0.0))
        runtime.close(node)
    return 0


def main(args: list[str] | None = None) -> int:
    return run_main("sim_node", _run, args)


if __name__ == "__main__":
    raise SystemExit(main())
