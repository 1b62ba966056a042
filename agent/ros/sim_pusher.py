"""The tabletop arm's pusher in ``sim_node``: two Cartesian axes commanded in velocity.

The ``sim-tabletop`` robot is driven by the planar velocity of its pusher (its end effector), not by
joint targets. ``sim_node`` with ``command_mode: velocity`` speaks for it as a velocity-controlled
arm would: it publishes the pusher as two prismatic joints ``pusher_x`` / ``pusher_y`` (position and
velocity, in ``JointState`` with the arm's own joints), and takes ``std_msgs/Float64MultiArray``
velocity commands for them (``agent_node``'s ``robot.command: velocity``), each the robot's own
action in [-1, 1]. A command older than ``timeout_s`` is not obeyed: the pusher is sent zero
velocity, as a velocity controller stops when its commands stop. Commands of the wrong width or
with non-finite values are refused, counted and logged.

``task()`` is the scene as a scripted operator needs it (a simulator-only aid: a person would use
their eyes): the named block's position, the pusher's, their distance and the simulator's success.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

AXES = ("pusher_x", "pusher_y")


def has_pusher(robot: Any) -> bool:
    env = getattr(getattr(robot, "env", None), "unwrapped", None)
    return env is not None and hasattr(env, "pusher_xy") and hasattr(env, "goal")


class PusherAxes:
    """The pusher of ``robot`` (a ``sim-tabletop``) as velocity-commanded axes, stepped at ``rate_hz``."""

    def __init__(self, robot: Any, rate_hz: float, timeout_s: float = 0.25) -> None:
        if not has_pusher(robot):
            raise ValueError(f"robot {robot.name!r} has no pusher to command in velocity "
                             "(a sim-tabletop has)")
        self.robot, self.env = robot, robot.env.unwrapped
        self.dt, self.timeout_s = 1.0 / rate_hz, timeout_s
        self.dim = robot.action_spec.dim
        self.refused = 0
        self.received = 0
        self._command: tuple[np.ndarray, float] | None = None
        self._last = np.asarray(self.env.pusher_xy(), np.float64)
        self._velocity = np.zeros(2)

    def on_command(self, values: list[float]) -> None:
        command = np.asarray(values, np.float64)
        if command.shape != (self.dim,) or not np.all(np.isfinite(command)):
            self.refused += 1
            if self.refused == 1 or self.refused % 100 == 0:
                log.error("velocity command refused (%d so far): %s values %s for %d axes %s", self.refused,
                          len(values), [round(v, 3) for v in values], self.dim, list(AXES))
            return
        self._command = (command.astype(np.float32), time.monotonic())
        self.received += 1

    def action(self) -> np.ndarray:
        """What to send the robot this step: the newest fresh command, else zero velocity."""
        latest = self._command
        if latest is None or time.monotonic() - latest[1] > self.timeout_s:
            return np.zeros(self.dim, np.float32)
        return latest[0]

    def stepped(self) -> None:
        """Measure the pusher after a step (its velocity by finite difference)."""
        now = np.asarray(self.env.pusher_xy(), np.float64)
        self._velocity = (now - self._last) / self.dt
        self._last = now

    def positions(self) -> list[float]:
        return [float(v) for v in self._last]

    def velocities(self) -> list[float]:
        return [float(v) for v in self._velocity]

    def task(self, success: bool, instruction: str) -> dict[str, Any]:
        env = self.env
        goal = env.data.qpos[env._block_qpos[env.goal, :2]]
        distance = float(np.linalg.norm(self._last - goal))
        return {"goal": [round(float(v), 5) for v in goal], "tip": [round(float(v), 5) for v in self._last],
                "distance": round(distance, 5), "success": bool(success), "instruction": instruction}
