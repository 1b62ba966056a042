"""Where an actor's experience comes from: a gymnasium environment or a ``hal.Robot``.

Both give raw float vectors and task signals; the actor does the stream-x preprocessing. A
robot supplies its reward and episode end as observation entries (``reward``, ``terminated``,
``truncated``: a simulated robot reads them off its simulator; a real one gets them from a task
module), and its ``act`` clamps every command to the robot's limits, whatever the policy says.

For a person in the loop (``agent/operator/stepping.py``) both also tell ``state()`` (the newest
raw observation), ``last_sent`` (the action the world last took, after clipping or clamping; None
before the first) and ``hold(reason)`` (keep still for a step; True when the world moves on
meanwhile, as a robot's does, so the next step must start from a fresh observation).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from hal.robot import Robot
from sim.envs import action_layout, time_limit


class GymSource:
    def __init__(self, env: gym.Env, seed: int) -> None:
        self.env = env
        self.layout = action_layout(env)
        self.box = "action_dim" in self.layout
        self.obs_dim = int(np.prod(env.observation_space.shape))
        self.time_limit = time_limit(env) if self.box else None
        if self.box:
            self.low, self.high = env.action_space.low, env.action_space.high
        self.last_sent: np.ndarray | None = None
        self._raw = np.asarray(env.reset(seed=seed)[0])

    def reset(self) -> np.ndarray:
        self._raw = np.asarray(self.env.reset()[0])
        return self._raw

    def state(self) -> np.ndarray:
        """The newest observation (of the last reset or step)."""
        return self._raw

    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        if self.box:
            action = np.clip(action, self.low, self.high)
        raw, reward, terminated, truncated, _ = self.env.step(action)
        self.last_sent, self._raw = action, np.asarray(raw)
        return raw, float(reward), bool(terminated), bool(truncated)

    def hold(self, reason: str = "") -> bool:
        """A simulated env stands still between steps: nothing to do, nothing missed."""
        return False

    def close(self) -> None:
        self.env.close()


_SIGNALS = ("success", "task_success", "reward_confidence")


class RobotSource:
    """Drives a connected ``hal.Robot`` whose observations carry ``state`` and task signals."""

    def __init__(self, robot: Robot, episode_steps: int | None) -> None:
        spec = robot.observation_spec
        missing = [k for k in ("state", "reward", "terminated", "truncated") if k not in spec]
        if missing:
            raise ValueError(f"robot {robot.name!r} cannot feed a learner: its observations lack {missing}")
        self.robot = robot
        self.layout: dict[str, Any] = {"action_dim": robot.action_spec.dim}
        self.box = True
        self.obs_dim = int(np.prod(spec["state"].shape))
        self.time_limit = episode_steps
        self.last_sent: np.ndarray | None = None
        # what the robot said of its task beyond the 4-tuple (its success, a reward model's
        # confidence): an episode controller labels the episode with it
        self.signals: dict[str, Any] = {}

    def reset(self) -> np.ndarray:
        self.signals = {}
        self.robot.reset()
        self.last_sent = None
        return self.state()

    def state(self) -> np.ndarray:
        return np.asarray(self.robot.observe()["state"], np.float32)

    def hold(self, reason: str = "") -> bool:
        self.robot.hold(reason)
        return True

    def step(self, action) -> tuple[np.ndarray, float, bool, bool]:
        self.last_sent = self.robot.act(action)  # clamped to the robot's limits
        obs = self.robot.observe()
        self.signals = {k: obs[k] for k in _SIGNALS if k in obs}
        return (
            np.asarray(obs["state"], np.float32),
            float(obs["reward"]),
            bool(obs["terminated"]),
            bool(obs["truncated"]),
        )

    def close(self) -> None:
        """The worker context holds and disconnects the robot; nothing to do here."""
