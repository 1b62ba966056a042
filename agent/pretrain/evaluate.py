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

    def by_instruction(self) -> dict[str, dict[str, Any]]:
        """Episodes, successes and success rate per instruction (per task, on a multi-task robot)."""
        out: dict[str, dict[str, Any]] = {}
        for o in self.outcomes:
            row = out.setdefault(str(o.final.get("instruction", "")), {"episodes": 0, "successes": 0})
            row["episodes"] += 1
            row["successes"] += int(o.success)
        for row in out.values():
            row["success_rate"] = row["successes"] / row["episodes"]
        return out

    def to_dict(self) -> dict[str, Any]:
        out = {"episodes": self.episodes, "successes": self.successes, "success_rate": self.success_rate,
               "mean_ticks": self.mean_ticks, "holds": self.holds}
        tasks = self.by_instruction()
        if len(tasks) > 1:
            out["by_instruction"] = tasks
        return out


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


class InstructionSwap:
    """Language grounding: every instruction re-pointed at another block (the next colour of
    ``colors``), with how close the arm came to *that* block in each episode.

    ``edit`` rewrites the instruction the policy sees; ``on_tick`` follows the pusher and the named
    block in the robot's ``privileged`` view (a ``state: proprio`` tabletop arm). Run the robot with
    ``terminate_on_success: false``: passing the block the scene asked for must not end the episode.
    """

    def __init__(self, colors: list[str], tolerance: float = 0.05) -> None:
        self.colors, self.tolerance = list(colors), tolerance
        self.closest: list[float] = []  # per finished episode: the nearest the pusher came, metres
        self._named: int | None = None
        self._best = float("inf")

    def _swap(self, instruction: str) -> tuple[str, int]:
        words = instruction.split()
        for i, word in enumerate(words):
            if word in self.colors:
                named = (self.colors.index(word) + 1) % len(self.colors)
                words[i] = self.colors[named]
                return " ".join(words), named
        raise ValueError(f"instruction {instruction!r} names none of the colours {self.colors}")

    def edit(self, observation: Observation) -> Observation:
        text, self._named = self._swap(str(observation["instruction"]))
        return {**observation, "instruction": text}

    def on_tick(self, record: Any) -> None:
        obs = record.observation
        if "privileged" in obs and "instruction" in obs:
            _, named = self._swap(str(obs["instruction"]))
            scene = np.asarray(obs["privileged"], np.float64)
            pusher, block = scene[4:6], scene[6 + 2 * named:8 + 2 * named]
            self._best = min(self._best, float(np.linalg.norm(pusher - block)))
        if record.episode_end:
            self.closest.append(self._best)
            self._best = float("inf")

    @property
    def reached_rate(self) -> float:
        return float(np.mean([d < self.tolerance for d in self.closest])) if self.closest else 0.0
