"""``ScriptedReachPolicy``: moves a planar two-link arm's fingertip to the goal its instruction names.

Not learned: the scripted policy of the simulated demo (``sim.launch.py``) and of the closed-loop
test, which shows the ROS path (joint states and instruction in, trajectories out) moves the arm
where it is told. It solves the two-link inverse kinematics for ``reach the target at x=.. y=..``
(the elbow solution nearest the current joints) and plans a chunk that closes a fixed fraction
of the remaining joint error each tick. No goal in the instruction: it refuses to act
(``PolicyInputError``) and the loop holds the robot.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from agent.ros.sim_tasks import parse_goal
from policies.base import ActionChunk, Observation, Policy, PolicyInputError


def two_link_ik(goal: np.ndarray, lengths: Sequence[float], near: np.ndarray) -> np.ndarray:
    """Joint angles putting a planar two-link arm's tip at ``goal`` (clipped to its reach), the
    elbow solution closest to ``near``; the base angle unwrapped to within pi of ``near``."""
    l1, l2 = float(lengths[0]), float(lengths[1])
    x, y = float(goal[0]), float(goal[1])
    r = min(max(math.hypot(x, y), abs(l1 - l2) + 1e-6), l1 + l2 - 1e-6)
    cos_elbow = (r * r - l1 * l1 - l2 * l2) / (2 * l1 * l2)
    best, best_cost = None, math.inf
    for elbow in (math.acos(max(-1.0, min(1.0, cos_elbow))), -math.acos(max(-1.0, min(1.0, cos_elbow)))):
        base = math.atan2(y, x) - math.atan2(l2 * math.sin(elbow), l1 + l2 * math.cos(elbow))
        base = near[0] + (base - near[0] + math.pi) % (2 * math.pi) - math.pi
        q = np.array([base, elbow])
        cost = float(np.sum((q - near[:2]) ** 2))
        if cost < best_cost:
            best, best_cost = q, cost
    return best


class ScriptedReachPolicy(Policy):
    def __init__(self, action_dim: int = 2, period_s: float = 0.05, chunk_size: int = 10,
                 link_lengths: Sequence[float] = (0.1, 0.11), gain: float = 0.3) -> None:
        if action_dim != 2:
            raise ValueError(f"ScriptedReachPolicy drives a two-joint planar arm, not {action_dim} joints")
        if not 0 < gain <= 1:
            raise ValueError(f"gain must be in (0, 1], got {gain}")
        self.action_dim, self.period_s, self.chunk_size = action_dim, period_s, chunk_size
        self.link_lengths, self.gain = tuple(link_lengths), gain
        self.calls = 0

    def act(self, observation: Observation) -> ActionChunk:
        goal = parse_goal(str(observation.get("instruction", "")))
        if goal is None:
            raise PolicyInputError(f"no goal in the instruction {observation.get('instruction', '')!r} "
                                   "(expected '... x=<m> y=<m>')")
        q = np.asarray(observation["state"], np.float64)[:2]
        target = two_link_ik(goal, self.link_lengths, q)
        remaining = (1.0 - self.gain) ** np.arange(1, self.chunk_size + 1)[:, None]
        actions = target[None, :] + (q - target)[None, :] * remaining
        self.calls += 1
        return ActionChunk(actions.astype(np.float32), self.period_s, version=self.calls,
                           observed_at=float(observation.get("timestamp", 0.0)))
