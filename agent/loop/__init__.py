"""The streaming perception-decision-action loop: ticks on time, infers concurrently."""

from agent.loop.chunks import ChunkSchedule
from agent.loop.config import LoopConfig
from agent.loop.control import ControlLoop, TickRecord
from agent.loop.stats import LoopStats

__all__ = ["ChunkSchedule", "ControlLoop", "LoopConfig", "LoopStats", "TickRecord"]
