"""Demonstration episodes: what a recorder writes into a replay cache and what training reads back.

A demonstration is an episode of ordinary ``Transition`` records in a ``ReplayCache`` (so demos,
online rollouts and exports share one store and one set of tools), written by actor
``demo-<source>`` where ``source`` says who acted: ``expert`` (a scripted controller), ``human``
(teleoperation) or ``policy`` (a learned policy's own rollouts). Per step:

- ``obs``: the robot's observation as acted on: ``state``, every ``image.<camera>`` frame and the
  ``instruction``;
- ``action``: the action the robot was actually sent (after its own clamping);
- ``reward``, ``terminated``, ``truncated``: what the robot reported at the next tick;
- ``next_obs``: the next ``state`` only: the next frame is the next step's ``obs`` (frames are the
  bulk of a demonstration, so each is stored once); the last step of an episode that ended (not
  one cut short) also holds the final frames (``image.*``), what the robot saw once it was done:
  a reward model learns success from them;
- ``extras``: ``source``, ``success`` (the robot's success flag at the next tick), ``control_hz``
  (the rate it was recorded at), ``label`` where the source acted with deliberate noise (a
  scripted expert's clean action for that step: imitation learns the correction, not the noise),
  ``counterfactual`` where the source can say what it would have done under other instructions
  (instruction -> action, a scripted expert's exact labels for the same frame and state) and, on
  the last step of an episode cut short (the teleoperator went quiet, the policy failed),
  ``aborted``.

``read_demos`` loads a set and refuses what training cannot use, naming the problem.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from learners.cache import CacheConfig, CacheError, ReplayCache
from learners.transition import Transition

SOURCES = ("expert", "human", "policy")
ACTOR_PREFIX = "demo-"
IMAGE_PREFIX = "image."


class DemoSetError(ValueError):
    """A demonstration set training cannot use: empty, without a success, inconsistent, or not
    matching what the policy expects. The message names the set and the problem."""


def demo_actor(source: str) -> str:
    """The actor id a recorder writes ``source``'s episodes under."""
    if source not in SOURCES:
        raise ValueError(f"demonstration source must be one of {', '.join(SOURCES)}, got {source!r}")
    return ACTOR_PREFIX + source


@dataclass(frozen=True)
class DemoFeatures:
    """What every step of a set carries: state width, cameras and their frame shape, action width."""

    state_dim: int
    cameras: dict[str, tuple[int, int, int]]
    action_dim: int

    def mismatches(self, expected: DemoFeatures) -> list[str]:
        """How this set differs from what a policy expects (empty when it fits)."""
        out = []
        if self.state_dim != expected.state_dim:
            out.append(f"state width {self.state_dim}, expected {expected.state_dim}")
        if self.action_dim != expected.action_dim:
            out.append(f"action width {self.action_dim}, expected {expected.action_dim}")
        if sorted(self.cameras) != sorted(expected.cameras):
            out.append(f"cameras {sorted(self.cameras)}, expected {sorted(expected.cameras)}")
        else:
            out.extend(f"camera {c}: frames {self.cameras[c]}, expected {expected.cameras[c]}"
                       for c in sorted(self.cameras) if self.cameras[c] != expected.cameras[c])
        return out


@dataclass
class DemoEpisode:
    """One recorded episode, its steps in order."""

    actor_id: str
    episode: int
    steps: list[Transition]
    source: str = field(init=False)

    def __post_init__(self) -> None:
        self.source = str(self.steps[0].extras.get("source", self.actor_id.removeprefix(ACTOR_PREFIX)))

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def success(self) -> bool:
        return bool(self.steps[-1].extras.get("success", False))

    @property
    def aborted(self) -> bool:
        return bool(self.steps[-1].extras.get("aborted", False))

    @property
    def instruction(self) -> str:
        return str(self.steps[0].obs.get("instruction", ""))

    def states(self) -> np.ndarray:
        return np.stack([np.asarray(t.obs["state"], np.float32) for t in self.steps])

    def actions(self) -> np.ndarray:
        return np.stack([np.asarray(t.action, np.float32).reshape(-1) for t in self.steps])

    def targets(self) -> np.ndarray:
        """What to imitate at each step: the ``label`` where the source gave one, else the action."""
        return np.stack([np.asarray(t.extras.get("label", t.action), np.float32).reshape(-1)
                         for t in self.steps])

    def frames(self, camera: str) -> np.ndarray:
        """``[T, H, W, 3]`` uint8 frames of ``camera``."""
        return np.stack([t.obs[IMAGE_PREFIX + camera] for t in self.steps])

    def final_frame(self, camera: str) -> np.ndarray | None:
        """The frame of ``camera`` after the last action (sets recorded before it was kept: None)."""
        last = self.steps[-1].next_obs
        frame = last.get(IMAGE_PREFIX + camera) if isinstance(last, dict) else None
        return None if frame is None else np.asarray(frame)

    def features(self) -> DemoFeatures:
        first = self.steps[0]
        cameras = {k.removeprefix(IMAGE_PREFIX): tuple(np.shape(v)) for k, v in first.obs.items()
                   if k.startswith(IMAGE_PREFIX)}
        return DemoFeatures(int(np.size(first.obs["state"])), cameras, int(np.size(first.action)))


@dataclass
class DemoSet:
    """The demonstration episodes of a cache, with what they carry."""

    path: Path
    episodes: list[DemoEpisode]
    features: DemoFeatures
    incomplete: int = 0  # episodes cut by the log's end (a recorder killed) or missing a step: skipped

    @property
    def successful(self) -> list[DemoEpisode]:
        return [e for e in self.episodes if e.success]

    def check_matches(self, expected: DemoFeatures, what: str = "the policy") -> None:
        """Refuse a set whose features differ from ``expected``, naming each difference."""
        problems = self.features.mismatches(expected)
        if problems:
            raise DemoSetError(f"demonstrations {self.path} do not match {what}: {'; '.join(problems)}")

    @property
    def instructions(self) -> set[str]:
        return {e.instruction for e in self.episodes}

    def check_tasks(self, tasks: dict[str, str], what: str) -> None:
        """Refuse a set that never demonstrates one of ``tasks`` (task -> its instruction), the tasks
        ``what`` (a robot to evaluate on) will ask for: it was recorded on another task set."""
        missing = [task for task, text in tasks.items() if text not in self.instructions]
        if missing:
            shown = sorted(self.instructions)
            raise DemoSetError(
                f"demonstrations {self.path} were recorded on another task set than {what}: "
                f"{len(missing)} of its {len(tasks)} tasks never appear in them ({', '.join(missing)}); the "
                f"demonstrations' instructions: {'; '.join(shown[:12])}{' ...' if len(shown) > 12 else ''}")

    def summary(self) -> dict[str, Any]:
        """Episodes, success rate, lengths, sources, instructions, features (for ``rill demos info``)."""
        lengths = [e.length for e in self.episodes]
        return {
            "path": str(self.path),
            "episodes": len(self.episodes),
            "successful": len(self.successful),
            "success_rate": len(self.successful) / len(self.episodes),
            "aborted": sum(e.aborted for e in self.episodes),
            "incomplete": self.incomplete,
            "steps": int(sum(lengths)),
            "length": {"mean": float(np.mean(lengths)), "min": int(min(lengths)), "max": int(max(lengths))},
            "sources": dict(collections.Counter(e.source for e in self.episodes)),
            "instructions": dict(collections.Counter(e.instruction for e in self.episodes).most_common()),
            "state_dim": self.features.state_dim,
            "action_dim": self.features.action_dim,
            "cameras": {c: list(s) for c, s in self.features.cameras.items()},
        }


def _check_step(path: Path, t: Transition) -> None:
    where = f"demonstrations {path}: actor {t.actor_id} episode {t.episode} step {t.step}"
    if not isinstance(t.obs, dict) or "state" not in t.obs or not isinstance(t.obs.get("instruction"), str):
        raise DemoSetError(f"{where}: the observation lacks a state or an instruction (not a demonstration)")
    if not np.all(np.isfinite(np.asarray(t.obs["state"], np.float64))) or \
            not np.all(np.isfinite(np.asarray(t.action, np.float64))):
        raise DemoSetError(f"{where}: a state or an action is not finite")


def read_demos(path: str | Path, *, require_success: bool = True) -> DemoSet:
    """The demonstrations in the replay cache at ``path``.

    Raises ``DemoSetError`` when the directory is not a cache, holds no complete demonstration, holds
    none that succeeded (unless ``require_success`` is False), or mixes steps of different shapes.
    A corrupt cache raises the cache's own error (``CacheCorruptError`` naming the segment).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DemoSetError(f"demonstrations {path}: a file, not a demonstration cache (a directory)")
    if not path.is_dir():
        raise DemoSetError(f"demonstrations {path}: no such directory")
    try:
        cache = ReplayCache(path, CacheConfig(read_only=True))
    except CacheError:
        raise
    except (OSError, ValueError) as e:
        raise DemoSetError(f"demonstrations {path}: not a replay cache ({e})") from e
    episodes, incomplete = [], 0
    try:
        for ep in cache.iter_episodes():
            if not ep.actor_id.startswith(ACTOR_PREFIX):
                continue
            if not ep.complete:
                incomplete += 1
                continue
            for t in ep.transitions:
                _check_step(path, t)
            episodes.append(DemoEpisode(ep.actor_id, ep.episode, ep.transitions))
    finally:
        cache.close()
    if not episodes:
        raise DemoSetError(f"demonstrations {path}: no complete demonstration episode "
                           f"({incomplete} incomplete); record some with `rill demos record`")
    features = episodes[0].features()
    for e in episodes[1:]:
        problems = e.features().mismatches(features)
        if problems:
            raise DemoSetError(f"demonstrations {path}: episode {e.episode} of {e.actor_id} differs from the "
                               f"first: {'; '.join(problems)}")
    demos = DemoSet(path, episodes, features, incomplete)
    if require_success and not demos.successful:
        raise DemoSetError(f"demonstrations {path}: none of {len(episodes)} episodes succeeded; "
                           f"imitating failures teaches failure")
    return demos
