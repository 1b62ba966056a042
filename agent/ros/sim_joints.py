"""What ``sim_node`` needs of a simulated MuJoCo robot: named joints, and commands that move them.

``MujocoJoints`` reads the joint names, positions and velocities from the robot's MuJoCo model
(the names a ``JointState`` carries) and finds which joint each actuator drives. A robot whose
actuators are position servos takes joint targets as its action directly; one with torque motors
(gym's Reacher, Pusher) gets them through a PD law, so both obey the same position command topics
a ros2_control arm does. ``CommandFollower`` turns the newest ``JointTrajectory`` (interpolated in
time from its receipt, like ``joint_trajectory_controller``) or forward command into a target.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


class NotAMujocoRobotError(TypeError):
    """``sim_node`` was given a robot that exposes no MuJoCo model and data."""


def mujoco_handles(robot: Any) -> tuple[Any, Any]:
    """``(model, data)`` of a simulated robot: its own ``model`` / ``data``, or its gym env's."""
    for owner in (robot, getattr(getattr(robot, "env", None), "unwrapped", None)):
        model, data = getattr(owner, "model", None), getattr(owner, "data", None)
        if model is not None and data is not None and hasattr(model, "njnt"):
            return model, data
    raise NotAMujocoRobotError(
        f"robot {getattr(robot, 'name', robot)!r} ({type(robot).__name__}) exposes no MuJoCo model and "
        "data; sim_node drives MuJoCo robots (sim-mujoco, sim-tabletop)"
    )


class MujocoJoints:
    """The one-degree-of-freedom joints (hinge, slide) of a MuJoCo robot, and its actuated ones."""

    def __init__(self, model: Any, data: Any) -> None:
        import mujoco

        self.model, self.data = model, data
        one_dof = (int(mujoco.mjtJoint.mjJNT_HINGE), int(mujoco.mjtJoint.mjJNT_SLIDE))
        ids = [j for j in range(model.njnt) if int(model.jnt_type[j]) in one_dof]
        self.names = [model.joint(j).name or f"joint{j}" for j in ids]
        self._qpos = np.array([model.jnt_qposadr[j] for j in ids], np.intp)
        self._dof = np.array([model.jnt_dofadr[j] for j in ids], np.intp)
        commanded, servo = [], []
        for a in range(model.nu):
            if int(model.actuator_trntype[a]) != int(mujoco.mjtTrn.mjTRN_JOINT):
                raise NotAMujocoRobotError(f"actuator {a} drives no joint; sim_node needs joint actuators")
            joint = int(model.actuator_trnid[a, 0])
            if joint not in ids:
                raise NotAMujocoRobotError(f"actuator {a} drives a joint of more than one degree of freedom")
            commanded.append(ids.index(joint))
            # A position servo: affine bias with -kp on the joint position (MJCF <position>).
            servo.append(int(model.actuator_biastype[a]) == int(mujoco.mjtBias.mjBIAS_AFFINE)
                         and model.actuator_biasprm[a, 1] < 0)
        self._commanded = np.array(commanded, np.intp)
        self.commanded = [self.names[i] for i in commanded]
        self.position_servos = bool(servo) and all(servo)

    def positions(self) -> np.ndarray:
        return self.data.qpos[self._qpos].astype(np.float64)

    def velocities(self) -> np.ndarray:
        return self.data.qvel[self._dof].astype(np.float64)

    def commanded_positions(self) -> np.ndarray:
        return self.positions()[self._commanded]

    def commanded_velocities(self) -> np.ndarray:
        return self.velocities()[self._commanded]


def pd_torque(target: np.ndarray, q: np.ndarray, qd: np.ndarray, kp: float, kd: float) -> np.ndarray:
    """The torque command of a PD position controller (the robot clamps it to its limits)."""
    return (kp * (target - q) - kd * qd).astype(np.float32)


class CommandFollower:
    """The commanded joints' target now, from the newest trajectory or forward command."""

    def __init__(self, joints: Sequence[str]) -> None:
        self.joints = list(joints)
        self._index = {name: i for i, name in enumerate(self.joints)}
        self._times = np.zeros(0)
        self._points = np.zeros((0, len(self.joints)))
        self._start = np.zeros(len(self.joints))
        self._received = 0.0
        self._target: np.ndarray | None = None
        self.trajectories = 0
        self.forward_commands = 0
        self.rejected = 0

    def clear(self, hold: np.ndarray) -> None:
        """Forget every command: hold ``hold`` (a new episode starts where the robot is)."""
        self._times = np.zeros(0)
        self._target = np.asarray(hold, np.float64).copy()

    def trajectory(self, names: list[str], times: np.ndarray, points: np.ndarray, now: float,
                   current: np.ndarray) -> None:
        """Follow a trajectory from ``now``; joints it does not name keep their current target."""
        unknown = [n for n in names if n not in self._index]
        if unknown or len(times) == 0:
            self.rejected += 1
            log.error("trajectory rejected: %s", f"unknown joint(s) {unknown}; this robot has {self.joints}"
                      if unknown else "it has no points")
            return
        base = self.target(now, current)
        full = np.repeat(base[None, :], len(times), axis=0)
        for k, name in enumerate(names):
            full[:, self._index[name]] = points[:, k]
        self._times, self._points, self._start, self._received = times, full, base, now
        self.trajectories += 1

    def forward(self, values: Sequence[float]) -> None:
        values = np.asarray(values, np.float64)
        if values.shape != (len(self.joints),) or not np.all(np.isfinite(values)):
            self.rejected += 1
            log.error("forward command of %d values rejected: this robot takes %d (%s)", values.size,
                      len(self.joints), ", ".join(self.joints))
            return
        self._times = np.zeros(0)
        self._target = values
        self.forward_commands += 1

    def target(self, now: float, current: np.ndarray) -> np.ndarray:
        """Where the joints should be at ``now`` (the current position if never commanded)."""
        if len(self._times):
            elapsed = now - self._received
            t = np.concatenate([[0.0], self._times])
            p = np.concatenate([self._start[None, :], self._points])
            self._target = np.array([np.interp(elapsed, t, p[:, j]) for j in range(p.shape[1])])
        if self._target is None:
            self._target = np.asarray(current, np.float64).copy()
        return self._target
