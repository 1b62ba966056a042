"""``RewardedRobot``: a robot whose task signals come from a reward model watching its camera.

A real arm reports joints and frames, not whether it did what it was asked. Wrapped in a
``RewardedRobot``, every new camera frame is scored by the success classifier with the current
instruction (``reward_confidence``), and once ``consecutive`` frames in a row reach the threshold
the episode is a success: ``success`` turns true, ``reward`` is ``success_reward`` on that one tick
(0 on every other) and, with ``end_episode``, ``terminated`` is set until the next ``reset``. The
robot's own ``reward``/``terminated``/``success`` (a simulator has them) are replaced; a simulator's
own success is kept as ``task_success`` so a benchmark can compare the two. ``truncated`` (a time
limit) passes through. Everything else (acting, safety, health) is the wrapped robot's.

The model is checked against the robot's camera when the wrapper is made: another camera name or
frame size is refused, naming both. Scoring runs on the thread that observes (the control loop's);
a frame is scored once, however many ticks it stays the newest.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np

from agent.reward.config import RewardSignalConfig
from hal.errors import ConfigError
from hal.robot import Robot
from hal.specs import FeatureSpec
from policies.reward import RewardModel, RewardModelError

log = logging.getLogger(__name__)


class SuccessDetector:
    """Declares success after ``consecutive`` confident frames of one instruction."""

    def __init__(self, model: RewardModel, threshold: float, consecutive: int) -> None:
        if type(consecutive) is not int or consecutive < 1:  # 0 would declare success on any frame
            raise ConfigError(f"reward: consecutive must be an integer >= 1, got {consecutive!r}")
        self.model, self.threshold, self.consecutive = model, threshold, consecutive
        self.reset()

    def reset(self) -> None:
        self.streak, self.declared, self.confidence = 0, False, 0.0
        self.frames = 0
        self._frame: np.ndarray | None = None
        self._instruction: str | None = None

    def update(self, frame: np.ndarray, instruction: str) -> bool:
        """Score ``frame`` if it is a new one; True on the call that declares success."""
        if frame is self._frame and instruction == self._instruction:
            return False
        if instruction != self._instruction:
            self.streak = 0  # confidence in another task's success says nothing of this one
        self._frame, self._instruction = frame, instruction
        self.confidence = float(self.model.probability(frame, [instruction])[0])
        self.frames += 1
        self.streak = self.streak + 1 if self.confidence >= self.threshold else 0
        if not self.declared and self.streak >= self.consecutive:
            self.declared = True
            return True
        return False


class RewardedRobot:
    """``robot`` with ``reward``, ``terminated``, ``success`` and ``reward_confidence`` from ``model``."""

    def __init__(self, robot: Robot, model: RewardModel, config: RewardSignalConfig) -> None:
        self.inner, self.model, self.config = robot, model, config
        spec = robot.observation_spec
        key = model.image_key
        if key not in spec:
            cameras = sorted(k for k in spec if k.startswith("image."))
            raise RewardModelError(f"robot {robot.name!r} has no camera {key!r} for the reward model "
                                   f"(its cameras: {cameras or 'none'})")
        model.check_camera(key, spec[key].shape)
        if "instruction" not in spec:
            log.warning("robot %s gives no instruction: the reward model scores with an empty one",
                        robot.name)
        self.detector = SuccessDetector(model, config.threshold or model.threshold, config.consecutive)
        self._spec = {**spec, "reward": FeatureSpec((), "float32"), "terminated": FeatureSpec((), "bool"),
                      "truncated": FeatureSpec((), "bool"), "success": FeatureSpec((), "bool"),
                      "reward_confidence": FeatureSpec((), "float32")}
        if "success" in spec:
            self._spec["task_success"] = FeatureSpec((), "bool")
        self.successes = 0

    def __getattr__(self, name: str) -> Any:  # everything else is the wrapped robot's
        return getattr(self.inner, name)

    @property
    def observation_spec(self) -> dict[str, FeatureSpec]:
        return self._spec

    def observe(self) -> dict[str, Any]:
        obs = dict(self.inner.observe())
        if "success" in obs:
            obs["task_success"] = np.bool_(obs["success"])
        d = self.detector
        # A robot that holds for missing data (a sensor, its first instruction) reports a timestamp of
        # -inf: nothing is scored on what is not there.
        fresh = math.isfinite(float(obs.get("timestamp", 0.0)))
        declared = fresh and d.update(obs[self.model.image_key], str(obs.get("instruction", "")))
        if declared:
            self.successes += 1
            log.info("reward model: success (confidence %.3f, %d frames at or above %.3f)", d.confidence,
                     d.streak, d.threshold)
        obs["reward"] = np.float32(self.config.success_reward if declared else 0.0)
        obs["success"] = np.bool_(d.declared)
        obs["terminated"] = np.bool_(d.declared and self.config.end_episode)
        obs["truncated"] = np.bool_(obs.get("truncated", False))
        obs["reward_confidence"] = np.float32(d.confidence)
        return obs

    def new_episode(self) -> None:
        """Forget the last episode's frames and its declared success (the robot is not reset)."""
        self.detector.reset()

    def reset(self) -> None:
        self.detector.reset()
        self.inner.reset()

    def __enter__(self) -> RewardedRobot:
        self.inner.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.inner.disconnect()


def with_reward_model(robot: Robot, config: RewardSignalConfig | None) -> Robot | RewardedRobot:
    """``robot`` wrapped by its reward model, or ``robot`` itself when ``config`` names none."""
    if config is None or not config.model:
        return robot
    from policies.reward import load_reward_model

    model = load_reward_model(config.model)
    wrapped = RewardedRobot(robot, model, config)
    log.info("reward from model %s on %s (threshold %.3f, %d consecutive frames, held-out precision %s, "
             "recall %s)", config.model, model.image_key, wrapped.detector.threshold, config.consecutive,
             model.info.get("held_out", {}).get("precision"), model.info.get("held_out", {}).get("recall"))
    return wrapped
