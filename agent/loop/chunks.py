"""Which action a tick executes, and how a new chunk joins the one being executed.

A chunk computed from the observation of tick ``k`` holds the actions for ticks ``k, k+1, ...``.
It arrives some ticks later (inference latency), so its first actions are already in the past and
are skipped. While the old chunk still has actions, the new one takes over by a linear
cross-fade over ``blend_ticks`` ticks: the executed action moves from the old plan to the new one
in equal steps instead of jumping (in the spirit of real-time chunking, without its inpainting).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.base import ActionChunk


@dataclass
class _Active:
    chunk: ActionChunk
    start_tick: int  # the tick whose observation produced the chunk: actions[h] is for start + h


class ChunkSchedule:
    def __init__(self, blend: str = "linear", blend_ticks: int = 5) -> None:
        self.blend, self.blend_ticks = blend, blend_ticks
        self.current: _Active | None = None
        self.previous: _Active | None = None
        self.handover_tick = 0  # tick at which the current chunk took over

    def add(self, chunk: ActionChunk, start_tick: int, now_tick: int) -> bool:
        """Install a chunk made from tick ``start_tick``'s observation; False if it is all in the past."""
        if start_tick + chunk.horizon <= now_tick:
            return False
        self.previous, self.current = self.current, _Active(chunk, start_tick)
        self.handover_tick = now_tick
        return True

    def remaining(self, tick: int) -> int:
        """Actions the current chunk still holds for ticks >= ``tick``."""
        if self.current is None:
            return 0
        return max(0, self.current.start_tick + self.current.chunk.horizon - tick)

    @staticmethod
    def _action(active: _Active | None, tick: int) -> np.ndarray | None:
        if active is None:
            return None
        h = tick - active.start_tick
        if 0 <= h < active.chunk.horizon:
            return active.chunk.actions[h]
        return None

    def action(self, tick: int) -> np.ndarray | None:
        """The action for ``tick``, or None when no chunk covers it (the robot must hold)."""
        new = self._action(self.current, tick)
        if new is None:
            return None
        if self.blend == "none" or self.blend_ticks == 0:
            return new
        old = self._action(self.previous, tick)
        k = tick - self.handover_tick  # ticks since the handover, 0-based
        if old is None or k >= self.blend_ticks:
            return new
        w = (k + 1) / (self.blend_ticks + 1)
        return (1.0 - w) * old + w * new
