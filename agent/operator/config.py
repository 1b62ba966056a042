"""``OperatorConfig``: how operator-run episodes start, end and reset (``agent_node``'s ``operator.*``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from hal.config import check_number
from hal.errors import ConfigError


@dataclass
class OperatorConfig:
    """Operator-controlled episodes (``agent/operator/episodes.py``).

    - ``enabled``: run episodes through the ``EpisodeController``; false keeps the loop's own
      ``auto_reset`` (the robot's reported episode ends, nothing else).
    - ``event_topic`` / ``state_topic``: (ROS) where operator events arrive (``std_msgs/String``,
      JSON ``{"episode": N, "event": "success"}``) and where the episode state is published.
    - ``wait_for_start``: after a reset, hold until the operator says ``start``; false starts the
      next episode by itself. ``wait_timeout_s``: start anyway after this long (0: wait forever).
    - ``time_limit_s``: an episode running this long ends as ``timeout`` (0: no limit).
    - ``home_pose``: where the reset routine moves the robot (action space, e.g. joint positions),
      at most ``reset_speed`` units per second, until within ``home_tolerance``, through the
      robot's own ``act`` and clamps; it gives up after ``reset_timeout_s`` (the robot holds).
      Empty: the reset is the robot's own ``reset()`` (a simulator's new episode).
    - ``success_reward`` / ``failure_reward``: added to the reward of the last transition of an
      episode the operator marked.
    """

    enabled: bool = False
    event_topic: str = "/rill/operator/event"
    state_topic: str = "/rill/episode"
    wait_for_start: bool = True
    wait_timeout_s: float = 0.0
    time_limit_s: float = 0.0
    home_pose: list[float] = field(default_factory=list)
    reset_speed: float = 0.5
    home_tolerance: float = 0.01
    reset_timeout_s: float = 10.0
    success_reward: float = 1.0
    failure_reward: float = 0.0

    def __post_init__(self) -> None:
        for name in ("wait_timeout_s", "time_limit_s"):
            check_number("operator", name, getattr(self, name), 0)
        for name in ("reset_speed", "home_tolerance", "reset_timeout_s"):
            check_number("operator", name, getattr(self, name), 0, strict=True)
        for name in ("success_reward", "failure_reward"):
            value = getattr(self, name)
            check_number("operator", name, value, -math.inf)
            if not math.isfinite(value):
                raise ConfigError(f"operator.{name} must be finite, got {value!r}")
        if not isinstance(self.home_pose, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                for v in self.home_pose):
            raise ConfigError(f"operator.home_pose must be a list of finite numbers, got {self.home_pose!r}")
        self.home_pose = [float(v) for v in self.home_pose]
        if self.enabled and self.event_topic == self.state_topic:
            raise ConfigError(f"operator.event_topic and operator.state_topic must differ, both are "
                              f"{self.event_topic!r}")
