"""How well a reward model tells success, on episodes it did not train on.

Two measures, both against what the robot (a simulator) reported:

- **frames**: every labelled frame (``agent.reward.data``'s rules) scored at the model's
  threshold: precision and recall, and the share right per kind of frame;
- **episodes**: the ``SuccessDetector`` run over each episode's frames in order, as a robot would
  run it (success after ``consecutive`` confident frames). A declaration is right when the robot
  reported success at that frame or within ``margin`` frames of it; an episode the robot succeeded
  in and the detector never declared is a miss. Precision is right declarations over all
  declarations, recall successful episodes declared over all successful episodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from agent.demos.episodes import IMAGE_PREFIX, read_demos
from agent.reward.data import FrameRules, labelled_frames
from agent.reward.metrics import precision_recall
from agent.reward.robot import SuccessDetector
from agent.reward.trainer import kind_rates, score
from policies.reward import RewardModel


def evaluate_frames(model: RewardModel, paths: Sequence[str | Path], rules: FrameRules,
                    threshold: float | None = None) -> dict[str, Any]:
    data = labelled_frames(paths, model.config.camera, rules)
    probs = score(model.net, data)
    t = model.threshold if threshold is None else threshold
    return {**precision_recall(probs, data.labels, t), "by_kind": kind_rates(probs, data, t)}


def evaluate_episodes(model: RewardModel, paths: Sequence[str | Path], consecutive: int = 3,
                      threshold: float | None = None, margin: int = 5) -> dict[str, Any]:
    key = model.image_key
    detector = SuccessDetector(model, model.threshold if threshold is None else threshold, consecutive)
    right = wrong = missed = successful = episodes = 0
    delays: list[int] = []
    for path in paths:
        for ep in read_demos(path, require_success=False).episodes:
            if ep.aborted:
                continue
            episodes += 1
            frames = [s.obs[key] for s in ep.steps]
            succeeded = [False] + [bool(s.extras.get("success", False)) for s in ep.steps[:-1]]
            texts = [str(s.obs.get("instruction", "")) for s in ep.steps]
            final = ep.final_frame(key.removeprefix(IMAGE_PREFIX))
            if final is not None:
                frames.append(final)
                succeeded.append(ep.success)
                texts.append(texts[-1])
            detector.reset()
            declared_at = next((t for t in range(len(frames)) if detector.update(frames[t], texts[t])), None)
            if any(succeeded):
                successful += 1
            if declared_at is None:
                missed += any(succeeded)
                continue
            window = succeeded[max(0, declared_at - margin):declared_at + margin + 1]
            if any(window):
                right += 1
                delays.append(declared_at - succeeded.index(True))
            else:
                wrong += 1
    declared = right + wrong
    return {"episodes": episodes, "successful": successful, "declared": declared, "right": right,
            "wrong": wrong, "missed": missed,
            "precision": right / declared if declared else 1.0,
            "recall": right / successful if successful else 1.0,
            "delay_frames_median": float(np.median(delays)) if delays else None,
            "consecutive": consecutive, "threshold": detector.threshold}
