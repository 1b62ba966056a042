"""The task a simulated scene poses, in words and as a measure: the instruction and the distance to go.

A reaching scene (a body named ``target`` and an end effector ``fingertip``, as in gym's Reacher)
is instructed ``reach the target at x=0.123 y=-0.045`` and measured by the fingertip's distance
to the target. ``ScriptedReachPolicy`` reads that instruction. Other scenes get the instruction
from ``sim_node``'s ``instruction`` parameter and no distance.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

_GOAL = re.compile(r"x=\s*(-?\d+(?:\.\d+)?)\s*,?\s*y=\s*(-?\d+(?:\.\d+)?)")


def parse_goal(instruction: str) -> np.ndarray | None:
    """The ``(x, y)`` goal an instruction names (``... x=0.1 y=-0.2``), or None."""
    found = _GOAL.search(instruction or "")
    return None if found is None else np.array([float(found.group(1)), float(found.group(2))])


class SceneTask:
    """Instruction and progress of the scene in ``(model, data)``; ``None`` where it has neither."""

    def __init__(self, model: Any, data: Any, instruction: str = "") -> None:
        self.data = data
        names = {model.body(i).name for i in range(model.nbody)}
        self.reaching = {"target", "fingertip"} <= names
        self.fixed_instruction = instruction

    def instruction(self) -> str:
        if self.fixed_instruction or not self.reaching:
            return self.fixed_instruction
        x, y = self.data.body("target").xpos[:2]
        return f"reach the target at x={x:.3f} y={y:.3f}"

    def distance(self) -> float | None:
        if not self.reaching:
            return None
        gap = self.data.body("fingertip").xpos[:2] - self.data.body("target").xpos[:2]
        return float(np.linalg.norm(gap))
