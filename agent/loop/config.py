"""``LoopConfig``: timing, blending and safety settings of the control loop."""

from __future__ import annotations

from dataclasses import dataclass, field

from agent.loop.realtime import check_settings
from hal.errors import ConfigError

BLENDS = ("linear", "none")
#: The fewest actions a chunking policy's chunk may hold (a VLA, the scripted experts): on the
#: inference thread, a chunk runs from the tick after the one it was planned on. A one-action policy
#: is a per-step policy, which the loop runs inside the tick (``ControlLoop.infers_in_tick``): right
#: for stream-x, a stall of the tick for a slow chunking model.
MIN_CHUNK = 2


@dataclass
class LoopConfig:
    """How the control loop ticks and joins action chunks.

    - ``control_hz``: tick rate (the robot's control rate).
    - ``asynchronous``: infer on a thread of its own (the default); ``False`` runs the policy inside
      the tick when the chunk runs out, as naive loops do (kept for comparison in ``bench.loop``).
      A per-step policy (one action per chunk: stream-x) runs inside the tick either way: a
      one-action chunk planned on a thread is always late (``ControlLoop`` says why).
    - ``blend`` / ``blend_ticks``: how a new chunk takes over from the one executing: ``linear``
      cross-fades over ``blend_ticks`` ticks; ``none`` switches at once.
    - ``lead_margin_ticks``: the next inference starts when the current chunk has no more than
      (measured inference latency in ticks + this margin) actions left.
    - ``max_obs_age_s``: an observation older than this is stale: flagged, never acted on.
    - ``auto_reset``: when the robot reports the episode ended, ``robot.reset()`` and drop old plans.
    - ``paced``: keep the clock. ``False`` ticks as fast as the robot goes, for a stepped simulator
      (``Robot.stepped``: it advances ``1 / control_hz`` of simulated time per command, so the
      policy sees the same 50 Hz world, only sooner); it needs ``asynchronous=False``: the policy
      runs inside the tick and the simulator waits for it.
    - ``rt_priority``: run the clock thread under ``SCHED_FIFO`` at this priority (1-98; 0, the
      default, leaves ordinary scheduling), as a robot's controller thread does; ``cpus``: pin the
      clock thread to these CPUs (empty: any). Both act on the clock thread only
      (``agent/loop/realtime.py``); a system that refuses them is logged and the loop runs on.
    - ``freeze_gc``: while the loop runs, keep what was alive when it started (the model, the
      robot, the modules) out of Python's garbage collector's walks (``agent/loop/collector.py``):
      a full collection over a loaded VLA's heap holds the GIL for many ticks.
    """

    control_hz: float = 50.0
    asynchronous: bool = True
    blend: str = "linear"
    blend_ticks: int = 5
    lead_margin_ticks: int = 2
    max_obs_age_s: float = 0.2
    latency_window: int = 50
    auto_reset: bool = True  # reset the robot when it reports terminated/truncated
    paced: bool = True
    rt_priority: int = 0
    cpus: list[int] = field(default_factory=list)
    freeze_gc: bool = True

    def __post_init__(self) -> None:
        if not self.control_hz > 0:
            raise ConfigError(f"loop.control_hz must be > 0, got {self.control_hz!r}")
        if self.blend not in BLENDS:
            raise ConfigError(f"loop.blend must be one of {BLENDS}, got {self.blend!r}")
        for name in ("blend_ticks", "lead_margin_ticks", "latency_window"):
            value = getattr(self, name)
            if type(value) is not int or value < (1 if name == "latency_window" else 0):
                raise ConfigError(f"loop.{name} must be a non-negative integer, got {value!r}")
        if not self.paced and self.asynchronous:
            raise ConfigError("loop.paced false (tick as fast as a stepped simulator goes) needs "
                              "loop.asynchronous false: with no clock, the policy runs inside the tick")
        if type(self.freeze_gc) is not bool:
            raise ConfigError(f"loop.freeze_gc must be true or false, got {self.freeze_gc!r}")
        check_settings(self.rt_priority, self.cpus, self.paced, "loop", "loop.paced: true")
        if not self.max_obs_age_s > 0:
            raise ConfigError(f"loop.max_obs_age_s must be > 0, got {self.max_obs_age_s!r}")

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_hz
