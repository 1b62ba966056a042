"""Labelled frames for the success classifier, from episodes in replay caches.

The labels come from what the episodes say, by these rules (``FrameRules``):

- **success frames**: a frame the robot reported success for (the step before it reported
  ``success``), and the final frame of an episode that ended in success (demonstrations keep it in
  the last step's ``next_obs``);
- **failure frames**: every frame of an episode that did not succeed, and the frames of a
  successful episode more than ``margin`` ticks before its first success ("early frames"); the
  few ticks just before success are left out: the arm is all but there, and either label would
  be noise;
- **hard failures**: every success frame again with the instruction of another goal: the arm is
  at a block, but not at the one those words name. The other instructions are the step's
  ``counterfactual`` keys where the source recorded them, else the instruction with one of
  ``swap_words`` replaced by another;
- episodes cut short (``aborted``) say nothing about success and are skipped;
- **an operator's verdict** (a learning actor's own episodes in a learner's cache, recorded with
  ``learner.keep_images``, whose last transition a person labelled, ``label_source: operator``):
  the final frame is a success frame when the person said success (with the other goals' words, a
  failure) and, when the person said failure, the final frame and every ``failure_stride``-th frame
  of the episode are failure frames. Nothing else of those episodes is labelled: only the end was
  judged. Episodes a reward model ended are never used (a model must not learn from its own word).

Frames of one episode stay together in one split (``split``), so held-out frames come from
episodes the classifier never saw.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from agent.demos.episodes import ACTOR_PREFIX, IMAGE_PREFIX, DemoEpisode, DemoSetError, read_demos

SUCCESS, EARLY, FAILED_EPISODE, HARD = 1, 2, 3, 4  # kinds of labelled frame
KIND_NAMES = {SUCCESS: "success", EARLY: "early", FAILED_EPISODE: "failed episode", HARD: "other goal"}


@dataclass
class FrameRules:
    margin: int = 5  # ticks before the first success left unlabelled
    success_stride: int = 2  # every n-th success frame of a long stay at the goal
    failure_stride: int = 3  # every n-th failure frame
    swap_words: list[str] = field(default_factory=list)  # goal words, for hard failures


@dataclass
class LabelledFrames:
    """Frames with their instruction, label (1 success, 0 failure), kind and episode."""

    frames: np.ndarray  # [N, H, W, 3] uint8
    instructions: list[str]
    labels: np.ndarray  # [N] float32
    kinds: np.ndarray  # [N] int8
    episodes: np.ndarray  # [N] int: which episode (index into ``sources``) a frame came from

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index: np.ndarray) -> LabelledFrames:
        return LabelledFrames(self.frames[index], [self.instructions[i] for i in index], self.labels[index],
                              self.kinds[index], self.episodes[index])

    def split(self, held_out: float, seed: int) -> tuple[LabelledFrames, LabelledFrames]:
        """(train, held-out) with whole episodes on either side."""
        ids = np.unique(self.episodes)
        rng = np.random.default_rng(seed)
        n = max(1, round(held_out * len(ids))) if held_out > 0 else 0
        out = np.isin(self.episodes, rng.choice(ids, size=n, replace=False))
        return self.subset(np.flatnonzero(~out)), self.subset(np.flatnonzero(out))

    def counts(self) -> dict[str, int]:
        return {name: int(np.sum(self.kinds == k)) for k, name in KIND_NAMES.items()}


def swap_instruction(text: str, words: Sequence[str]) -> list[str]:
    """``text`` with its one goal word of ``words`` replaced by each other one ([] if none or several)."""
    found = [w for w in words if re.search(rf"\b{re.escape(w)}\b", text)]
    if len(found) != 1:
        return []
    return [re.sub(rf"\b{re.escape(found[0])}\b", w, text) for w in words if w != found[0]]


class _Builder:
    def __init__(self, camera: str, rules: FrameRules) -> None:
        self.key, self.rules = IMAGE_PREFIX + camera, rules
        self.frames: list[np.ndarray] = []
        self.instructions: list[str] = []
        self.labels: list[float] = []
        self.kinds: list[int] = []
        self.episodes: list[int] = []

    def add(self, frame: np.ndarray, instruction: str, label: float, kind: int, episode: int) -> None:
        self.frames.append(np.asarray(frame, np.uint8))
        self.instructions.append(instruction)
        self.labels.append(label)
        self.kinds.append(kind)
        self.episodes.append(episode)

    def episode(self, ep: DemoEpisode, index: int) -> None:
        r = self.rules
        steps = ep.steps
        # succeeded[t]: the robot reported success at frame t (the previous step's report)
        succeeded = [False] + [bool(s.extras.get("success", False)) for s in steps[:-1]]
        frames = [s.obs[self.key] for s in steps]
        texts = [str(s.obs.get("instruction", "")) for s in steps]
        others = [self._others(s, texts[t]) for t, s in enumerate(steps)]
        final = ep.final_frame(self.key.removeprefix(IMAGE_PREFIX))
        if final is not None:
            succeeded.append(ep.success)
            frames.append(final)
            texts.append(texts[-1])
            others.append(others[-1])
        if not any(succeeded):
            for t in range(0, len(frames), r.failure_stride):
                self.add(frames[t], texts[t], 0.0, FAILED_EPISODE, index)
            return
        first = succeeded.index(True)
        for t in range(0, max(first - r.margin, 0), r.failure_stride):
            self.add(frames[t], texts[t], 0.0, EARLY, index)
        wins = [t for t in range(first, len(frames)) if succeeded[t]]
        chosen = wins[::r.success_stride]
        if wins[-1] not in chosen:
            chosen.append(wins[-1])
        for t in chosen:
            self.add(frames[t], texts[t], 1.0, SUCCESS, index)
            for text in others[t]:
                self.add(frames[t], text, 0.0, HARD, index)
        # frames after success where the robot no longer reported it (it moved off): failures
        for t in range(first, len(frames), r.failure_stride):
            if not succeeded[t] and not any(succeeded[max(first, t - r.margin):t]):
                self.add(frames[t], texts[t], 0.0, EARLY, index)

    def operator_episode(self, steps: list, index: int) -> bool:
        """Label a learning actor's episode by its operator's verdict; False when it has none."""
        last = steps[-1]
        final = last.next_obs.get(self.key) if isinstance(last.next_obs, dict) else None
        if last.extras.get("label_source") != "operator" or final is None:
            return False
        text = str(last.extras.get("instruction", ""))
        if last.extras.get("success"):
            self.add(final, text, 1.0, SUCCESS, index)
            for other in swap_instruction(text, self.rules.swap_words):
                self.add(final, other, 0.0, HARD, index)
            return True
        self.add(final, text, 0.0, FAILED_EPISODE, index)
        for t in range(0, len(steps), self.rules.failure_stride):
            frame = steps[t].obs.get(self.key) if isinstance(steps[t].obs, dict) else None
            if frame is not None:
                self.add(frame, str(steps[t].extras.get("instruction", text)), 0.0, FAILED_EPISODE, index)
        return True

    def _others(self, step, text: str) -> list[str]:
        counterfactual = step.extras.get("counterfactual")
        if counterfactual:
            return [str(k) for k in counterfactual if str(k) != text]
        return swap_instruction(text, self.rules.swap_words)

    def result(self) -> LabelledFrames:
        return LabelledFrames(np.stack(self.frames), self.instructions, np.asarray(self.labels, np.float32),
                              np.asarray(self.kinds, np.int8), np.asarray(self.episodes))


def _learner_episodes(path: str | Path):
    """The complete episodes of learning actors (not demonstrations) in the cache at ``path``."""
    from learners.cache import CacheConfig, CacheError, ReplayCache

    if not Path(path).is_dir():
        return
    try:
        cache = ReplayCache(Path(path), CacheConfig(read_only=True))
    except (CacheError, OSError, ValueError):
        return  # read_demos names the problem
    try:
        for ep in cache.iter_episodes():
            if ep.complete and not ep.actor_id.startswith(ACTOR_PREFIX):
                yield ep.transitions
    finally:
        cache.close()


def labelled_frames(paths: Sequence[str | Path], camera: str, rules: FrameRules) -> LabelledFrames:
    """Every labelled frame of the episodes in the caches at ``paths``.

    Raises ``DemoSetError`` naming the cache when one has no such camera, and when the frames hold
    no success or no failure (a classifier needs both)."""
    builder = _Builder(camera, rules)
    index = 0
    for path in paths:
        labelled = 0
        for steps in _learner_episodes(path):
            labelled += builder.operator_episode(steps, index)
            index += 1
        try:
            demos = read_demos(path, require_success=False)
        except DemoSetError:
            if labelled:  # a learner's cache: no demonstrations, operator-labelled episodes
                continue
            raise
        if camera not in demos.features.cameras:
            raise DemoSetError(f"episodes {path}: no camera {camera!r} "
                               f"(it has {sorted(demos.features.cameras)})")
        for ep in demos.episodes:
            if ep.aborted:
                continue
            builder.episode(ep, index)
            index += 1
    if not builder.labels:
        raise DemoSetError(f"episodes {', '.join(map(str, paths))}: no labelled frame")
    data = builder.result()
    positives = int(data.labels.sum())
    if positives == 0 or positives == len(data):
        raise DemoSetError(f"episodes {', '.join(map(str, paths))}: {positives} success frames of "
                           f"{len(data)}; a success classifier needs successes and failures")
    return data
