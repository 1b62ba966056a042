"""The arm's kinematics and its end-effector velocity controller.

The action is a planar end-effector velocity, normalized to [-1, 1] per axis. Each control tick the
controller moves the pusher's *target* by ``velocity * max_speed * dt``, keeps it inside the
reachable workspace and close to where the pusher really is (so a blocked arm does not wind up),
and turns it into joint position targets by closed-form inverse kinematics (the elbow always bends
the same way, so the solution is unique and continuous). The joint position actuators track the
targets. Zero velocity therefore holds the arm where it is: the way a robot holds position.

The joint targets live in ``data.ctrl``, so the controller carries no state of its own and a
simulator snapshot captures it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sim.tabletop.scene import GEOMETRY, Geometry


@dataclass(frozen=True)
class Workspace:
    """Where the pusher may go (table frame, metres): a box cut to the arm's reach."""

    x: tuple[float, float] = (-0.3, 0.3)
    y: tuple[float, float] = (0.08, 0.5)
    r: tuple[float, float] = (0.14, 0.48)  # distance from the base

    def clip(self, x: float, y: float) -> tuple[float, float]:
        x = min(max(x, self.x[0]), self.x[1])
        y = min(max(y, self.y[0]), self.y[1])
        r = math.hypot(x, y)
        if r < self.r[0] or r > self.r[1]:
            scale = min(max(r, self.r[0]), self.r[1]) / max(r, 1e-9)
            x, y = x * scale, y * scale
        return x, y


WORKSPACE = Workspace()


def forward(q1: float, q2: float, g: Geometry = GEOMETRY) -> tuple[float, float]:
    """Pusher position of joint angles ``(q1, q2)`` (zero pose: the arm points along +y)."""
    a = q1 + q2
    return (-g.link1 * math.sin(q1) - g.link2 * math.sin(a), g.link1 * math.cos(q1) + g.link2 * math.cos(a))


def inverse(x: float, y: float, g: Geometry = GEOMETRY) -> tuple[float, float]:
    """Joint angles that put the pusher at ``(x, y)``, elbow angle in [0, pi] (a reachable point)."""
    l1, l2 = g.link1, g.link2
    c2 = (x * x + y * y - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    q2 = math.acos(min(max(c2, -1.0), 1.0))
    q1 = math.atan2(-x, y) - math.atan2(l2 * math.sin(q2), l1 + l2 * math.cos(q2))
    return q1, q2


class EndEffectorController:
    """Planar end-effector velocity control on top of the joint position actuators."""

    def __init__(self, dt: float, max_speed: float = 0.3, max_lead: float = 0.04,
                 workspace: Workspace = WORKSPACE, geometry: Geometry = GEOMETRY) -> None:
        self.dt = dt
        self.max_speed = max_speed  # m/s at action 1.0
        self.max_lead = max_lead  # how far the target may run ahead of the pusher (m)
        self.workspace = workspace
        self.geometry = geometry

    def place(self, data, x: float, y: float) -> None:
        """Put the arm at rest with its pusher at ``(x, y)`` (qpos, qvel and targets)."""
        q1, q2 = inverse(*self.workspace.clip(x, y), self.geometry)
        data.qpos[0], data.qpos[1] = q1, q2
        data.qvel[0] = data.qvel[1] = 0.0
        data.ctrl[0], data.ctrl[1] = q1, q2

    def command(self, data, velocity: np.ndarray) -> None:
        """Set the joint targets for one tick of end-effector ``velocity`` (in [-1, 1]^2)."""
        g = self.geometry
        step = self.max_speed * self.dt
        tx, ty = forward(float(data.ctrl[0]), float(data.ctrl[1]), g)
        tx += float(velocity[0]) * step
        ty += float(velocity[1]) * step
        px, py = forward(float(data.qpos[0]), float(data.qpos[1]), g)
        lead = math.hypot(tx - px, ty - py)
        if lead > self.max_lead:  # blocked or lagging: pull the target back toward the pusher
            k = self.max_lead / lead
            tx, ty = px + (tx - px) * k, py + (ty - py) * k
        q1, q2 = inverse(*self.workspace.clip(tx, ty), g)
        data.ctrl[0], data.ctrl[1] = q1, q2
