"""``rill locator CONFIG``: train a ``MarkerLocator`` on frames a Meta-World simulator labels itself.

Frames come from Meta-World's scripted experts with noise on the hand's motion (so the hand passes
in front of, around and away from the goal, as a policy's will), every ``every``-th frame of
``episodes`` episodes from ``seed``; each is labelled with the pixel where the ``target`` point of
the simulator's ``privileged`` view (Meta-World's goal: 36-38) lands in it
(``MetaWorldEnv.pinhole``). ``val_episodes`` more episodes, from another seed, are held out and
scored in pixels at the end. The loss is the cross-entropy of the grid cell holding the label plus
a small pull of the soft arg-max onto the label itself. A run takes minutes on a CPU, so it keeps no
checkpoints: it writes ``locator.json``, ``locator.safetensors`` and ``metrics.json`` to ``out``.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from hal.config import check_number, construct, read_yaml_mapping, reject_unknown
from hal.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class LocatorTrainConfig:
    """See the module docstring. ``tasks``: Meta-World tasks whose frames it sees (a set name such
    as ``MT10`` or a list); ``camera``/``image_height``/``image_width``: as the robot renders them
    (the VLA's input); ``noise``: the experts' smooth noise on the hand's motion."""

    out: Path
    tasks: Any = field(default_factory=lambda: ["reach-v3"])
    camera: str = "corner2"
    image_height: int = 96
    image_width: int = 96
    target: list[int] = field(default_factory=lambda: [36, 37, 38])
    episodes: int = 150
    val_episodes: int = 30
    every: int = 3
    max_episode_steps: int = 150
    noise: float = 0.5
    seed: int = 300_000
    val_seed: int = 600_000
    steps: int = 1500
    batch_size: int = 32
    lr: float = 2e-3
    channels: int = 32
    threads: int = 2

    def __post_init__(self) -> None:
        self.out = Path(self.out)
        where = "locator"
        for name in ("image_height", "image_width", "episodes", "val_episodes", "every", "max_episode_steps",
                     "steps", "batch_size", "channels", "threads"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise ConfigError(f"{where}.{name} must be a positive integer, got {value!r}")
        for name in ("seed", "val_seed"):
            if type(getattr(self, name)) is not int or getattr(self, name) < 0:
                raise ConfigError(f"{where}.{name} must be a non-negative integer, "
                                  f"got {getattr(self, name)!r}")
        check_number(where, "noise", self.noise)
        check_number(where, "lr", self.lr, strict=True)
        from sim.metaworld.env import PRIVILEGED_DIM
        from sim.metaworld.robot import CAMERAS
        from sim.metaworld.tasks import task_names

        if not isinstance(self.target, list) or len(self.target) != 3 or not all(
                type(i) is int and 0 <= i < PRIVILEGED_DIM for i in self.target):
            raise ConfigError(f"{where}.target must be three indices (a point's x, y, z) into the robot's "
                              f"{PRIVILEGED_DIM}-entry 'privileged' view, got {self.target!r}")
        tasks = task_names(self.tasks, f"{where}.tasks")  # ConfigError with close matches
        for name in ("episodes", "val_episodes"):
            if getattr(self, name) < len(tasks):
                raise ConfigError(f"{where}.{name} must be at least the number of tasks ({len(tasks)}): "
                                  f"each task needs an episode, got {getattr(self, name)}")
        if self.camera not in CAMERAS:
            raise ConfigError(f"{where}.camera must be one of {', '.join(CAMERAS)}, got {self.camera!r}")
        for name in ("image_height", "image_width"):
            if getattr(self, name) < 8 or getattr(self, name) % 2:
                raise ConfigError(f"{where}.{name} must be an even number >= 8 (the locator scores a "
                                  f"half-resolution grid), got {getattr(self, name)!r}")
        if not 4 <= self.channels <= 256:
            raise ConfigError(f"{where}.channels must be within 4..256, got {self.channels!r}")
        if self.max_episode_steps > 500:
            raise ConfigError(f"{where}.max_episode_steps must be at most 500 (Meta-World's episode), "
                              f"got {self.max_episode_steps}")
        shared = set(scene_seeds(self.seed, self.episodes, len(tasks))) & set(
            scene_seeds(self.val_seed, self.val_episodes, len(tasks)))
        if shared:
            raise ConfigError(f"{where}.seed {self.seed} and val_seed {self.val_seed} draw {len(shared)} of "
                              f"the same scenes (e.g. seed {min(shared)}): the held-out episodes must be "
                              "other scenes")

    @classmethod
    def from_yaml(cls, path: str | Path) -> LocatorTrainConfig:
        values = read_yaml_mapping(path, "locator config")
        where = f"locator config {path}"
        reject_unknown(where, values, cls)
        if "out" not in values:
            raise ConfigError(f"{where}: missing out (where the locator is written)")
        try:
            return construct(cls, values, "")
        except ConfigError as e:
            raise ConfigError(f"{where}: {e}") from None


def task_scenes(seed: int, episodes: int, tasks: int) -> list[list[int]]:
    """Per task, the reset seeds of its share of ``episodes`` episodes: the e-th episode of the k-th
    task from ``seed + k + 1000 e`` (tasks in equal shares, the first ones one more)."""
    shares = [episodes // tasks + (k < episodes % tasks) for k in range(tasks)]
    return [[seed + k + 1000 * e for e in range(share)] for k, share in enumerate(shares)]


def scene_seeds(seed: int, episodes: int, tasks: int) -> list[int]:
    """Every reset seed of ``task_scenes``, task after task."""
    return [scene for scenes in task_scenes(seed, episodes, tasks) for scene in scenes]


def collect_frames(config: LocatorTrainConfig, episodes: int,
                   seed: int) -> tuple[np.ndarray, np.ndarray, int]:
    """Frames [N, H, W, 3] and the target's pixel (row, column) [N, 2] from ``episodes`` noisy expert
    episodes, reset from ``scene_seeds`` (the k-th task's expert noise from ``seed + k``), and how
    many frames were left out because the target was outside the frame or behind the camera
    (``ConfigError`` when no frame shows it)."""
    from agent.experts.metaworld import MetaWorldExpert
    from sim.metaworld.env import MetaWorldEnv
    from sim.metaworld.tasks import task_names

    tasks = list(task_names(config.tasks))
    frames, pixels, unseen = [], [], 0
    size = np.array([config.image_height, config.image_width])
    for k, (task, scenes) in enumerate(zip(tasks, task_scenes(seed, episodes, len(tasks)))):
        # (a frame rendered only on the steps whose frames are kept: the same frames, a third the work)
        env = MetaWorldEnv(task, camera=config.camera, image_size=(config.image_height, config.image_width),
                           episode_steps=config.max_episode_steps, camera_every=config.every)
        expert = MetaWorldExpert([task], noise=config.noise, seed=seed + k)
        try:
            for scene in scenes:
                obs, _ = env.reset(seed=scene)
                for step in range(config.max_episode_steps):
                    if step % config.every == 0:
                        (pixel,), (depth,) = env.pinhole().project(obs["privileged"][config.target])
                        if depth > 0 and np.all((pixel >= 0) & (pixel < size)):
                            frames.append(obs[f"image.{config.camera}"])
                            pixels.append(pixel)
                        else:
                            unseen += 1
                    obs, _, terminated, truncated, _ = env.step(expert.act(obs).actions[0])
                    if terminated or truncated:
                        break
        finally:
            env.close()
    if not frames:
        raise ConfigError(f"locator.camera {config.camera!r} never sees the target in {unseen} frames of "
                          f"{episodes} episodes: choose a camera that shows it")
    return np.stack(frames), np.asarray(pixels, np.float32), unseen


def train_locator(config: LocatorTrainConfig, on_step: Callable[[int, float], None] | None = None) -> dict:
    """Collect, train, score on the held-out episodes, save; returns the metrics written."""
    import torch
    import torch.nn.functional as F

    from policies.vla.locator import LocatorConfig, MarkerLocator
    from sim.metaworld.tasks import task_names

    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    frames, pixels, unseen = collect_frames(config, config.episodes, config.seed)
    val_frames, val_pixels, val_unseen = collect_frames(config, config.val_episodes, config.val_seed)
    if unseen or val_unseen:
        log.warning("locator: %d training and %d held-out frames left out: the target was outside the "
                    "frame or behind the camera", unseen, val_unseen)
    collected = time.perf_counter() - start
    log.info("locator: %d training frames, %d held out, collected in %.0f s", len(frames), len(val_frames),
             collected)
    size = (config.image_height, config.image_width)
    locator = MarkerLocator(LocatorConfig(camera=config.camera, image_size=size, channels=config.channels,
                                          target=tuple(config.target), tasks=tuple(task_names(config.tasks))))
    x, y = torch.from_numpy(frames), torch.from_numpy(pixels)
    h, w = config.image_height // 2, config.image_width // 2
    cells = (y / 2).long()
    cells = cells[:, 0].clamp(0, h - 1) * w + cells[:, 1].clamp(0, w - 1)
    optimizer = torch.optim.Adam(locator.parameters(), config.lr)
    generator = torch.Generator().manual_seed(config.seed)
    for step in range(1, config.steps + 1):
        batch = torch.randint(0, len(x), (config.batch_size,), generator=generator)
        logits = locator.logits(x[batch])
        pull = F.smooth_l1_loss(locator.positions(logits), y[batch])
        loss = F.cross_entropy(logits, cells[batch]) + 0.1 * pull
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if on_step is not None:
            on_step(step, float(loss.detach()))
    locator.eval()
    with torch.inference_mode():
        predicted = torch.cat([locator(torch.from_numpy(val_frames[i:i + 256]))
                               for i in range(0, len(val_frames), 256)])
    error = np.linalg.norm(predicted.numpy() - val_pixels, axis=1)
    # what the labels alone give: every frame answered with the training labels' mean pixel
    baseline = np.linalg.norm(pixels.mean(0) - val_pixels, axis=1)
    metrics = {
        "frames": len(frames), "val_frames": len(val_frames), "steps": config.steps,
        "frames_without_the_target": unseen, "val_frames_without_the_target": val_unseen,
        "val_pixel_error": {"median": round(float(np.median(error)), 3),
                            "p90": round(float(np.percentile(error, 90)), 3),
                            "max": round(float(error.max()), 3)},
        "val_pixel_error_of_the_mean_pixel": {"median": round(float(np.median(baseline)), 3)},
        "collect_s": round(collected, 1), "wall_s": round(time.perf_counter() - start, 1),
        "config": {f.name: (str(v) if isinstance(v := getattr(config, f.name), Path) else v)
                   for f in fields(config)},
    }
    locator.save(config.out)
    (config.out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics

