"""Success of a policy on held-out seeded episodes of a simulated robot, optionally with what the
policy sees edited (a blanked camera, an instruction naming another block): how the pretraining
run and ``bench.vla`` measure a VLA.

The robot is built fresh from its config with ``seed`` (a simulated robot samples every episode's
scene from it), so the same seed gives the same scenes whatever the policy does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from agent.loop.episodes import EpisodeOutcome, drive_episodes
from hal.config import RobotConfig
from hal.registry import make_robot
from policies.base import ActionChunk, Observation, Policy

Edit = Callable[[Observation], Observation]


@dataclass
class EvalResult:
    episodes: int
    successes: int
    mean_ticks: float
    holds: int
    outcomes: list[EpisodeOutcome] = dataclasses.field(repr=False, default_factory=list)

    @property
    def success_rate(self) -> float:
        return self.successes / max(self.episodes, 1)

    def to_dict(self) -> dict[str, Any]:
        return {"episodes": self.episodes, "successes": self.successes, "success_rate": self.success_rate,
                "mean_ticks": self.mean_ticks, "holds": self.holds}


class EditedObservations(Policy):
    """``policy`` acting on ``edit(observation)``: what it would do if it saw that instead."""

    def __init__(self, policy: Policy, edit: Edit) -> None:
        self.policy, self.edit = policy, edit
        self.action_dim, self.chunk_size = policy.action_dim, policy.chunk_size

    def act(self, observation: Observation) -> ActionChunk:
        return self.policy.act(self.edit(observation))


def blank_cameras(observation: Observation) -> Observation:
    """Every camera frame black: a policy that needs its eyes cannot do the task."""
    return {k: (np.zeros_like(v) if k.startswith("image.") else v) for k, v in observation.items()}


def evaluate_policy(policy: Policy, robot: RobotConfig, episodes: int, seed: int, *, edit: Edit | None = None,
                    on_tick: Callable[[Any], None] | None = None) -> EvalResult:
    """Run ``episodes`` episodes of ``robot`` (a simulated one, stepped) from ``seed``."""
    params = {**robot.params, "seed": int(seed), "real_time": False}
    acting = policy if edit is None else EditedObservations(policy, edit)
    with make_robot(dataclasses.replace(robot, params=params)) as arm:
        steps = arm.episode_steps if hasattr(arm, "episode_steps") else 1000
        _, outcomes = drive_episodes(arm, acting, episodes, on_tick=on_tick, max_ticks=episodes * (steps + 5))
    return EvalResult(len(outcomes), sum(o.success for o in outcomes),
                      float(np.mean([o.ticks for o in outcomes])) if outcomes else 0.0,
                      sum(o.holds for o in outcomes), outcomes)
