"""Probe scenes: first frames of freshly reset scenes of a simulated robot, for the privileged probe.

Demonstrations show few scenes (Meta-World's MT10 set: about 46 goal positions a task), few
enough that a probe on the VLA's features memorises them instead of learning to find a small
marker. A reset and a render cost tens of milliseconds and need no expert, so ``collect_scenes``
draws many more: each reset's observation (frames, instruction, state, ``privileged`` view) becomes
a one-step episode of a ``DemoSet`` in memory, with a zero action that nothing imitates, and
``BCSamples`` turns it into the VLA's inputs with the chosen privileged entries. Only the probe's
loss is computed on them. The scenes follow from ``seed`` (the robot draws every scene from it),
so a resumed run collects exactly the same ones.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from agent.demos.episodes import DemoEpisode, DemoSet
from hal.config import RobotConfig
from hal.registry import make_robot, robot_class
from learners.transition import Transition

log = logging.getLogger(__name__)


class SceneError(ValueError):
    """A robot cannot provide probe scenes (no ``privileged`` view, or no camera)."""


def collect_scenes(robot: RobotConfig, scenes: int, seed: int) -> DemoSet:
    """``scenes`` freshly reset scenes of ``robot`` (a simulated one) from ``seed``, as one-step
    episodes. A robot type that names its tasks (``task_instructions``, e.g. ``sim-metaworld``)
    gets them in equal shares, each task from its own robot (a reset without an ended episode
    keeps a multi-task robot on its task); the k-th task's scenes from ``seed + k``."""
    tasks = getattr(robot_class(robot.type), "task_instructions", None)
    names = list(tasks(robot.params)) if tasks is not None else [None]
    episodes: list[DemoEpisode] = []
    for k, task in enumerate(names):
        share = scenes // len(names) + (k < scenes % len(names))
        params = {**robot.params, "seed": int(seed) + k, "real_time": False}
        if task is not None:
            params["tasks"] = [task]
        episodes += _scenes_of(dataclasses.replace(robot, params=params), share, len(episodes))
    features = episodes[0].features()
    log.info("collected %d probe scenes of %s from seed %d", scenes, robot.name, seed)
    return DemoSet(Path(f"<{scenes} scenes of {robot.name} from seed {seed}>"), episodes, features)


def _scenes_of(robot: RobotConfig, scenes: int, first: int) -> list[DemoEpisode]:
    episodes = []
    with make_robot(robot) as arm:
        for i in range(first, first + scenes):
            obs = arm.reset()
            if "privileged" not in obs:
                raise SceneError(f"robot {robot.name!r} ({robot.type}) has no 'privileged' view: it cannot "
                                 f"give probe scenes")
            kept = {k: v for k, v in obs.items() if k in ("state", "instruction", "privileged")
                    or k.startswith("image.")}
            if not any(k.startswith("image.") for k in kept):
                raise SceneError(f"robot {robot.name!r} ({robot.type}) renders no camera: nothing to probe")
            action = np.zeros(arm.action_spec.shape, np.float32)
            step = Transition(obs=kept, action=action, reward=0.0, next_obs={}, terminated=True,
                              truncated=False, actor_id="scenes", episode=i)
            episodes.append(DemoEpisode("scenes", i, [step]))
    return episodes
