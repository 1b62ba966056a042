"""``rill eval``: run a trained policy deterministically with frozen statistics."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from agent.actor.steps import StepTransitions
from agent.checkpoints import restore_training
from agent.train import build_stream
from agent.train_config import CONFIG_FILE, TrainConfig
from hal.config import read_yaml_mapping
from hal.errors import ConfigError
from learners.checkpoint import CheckpointError, CheckpointStore
from sim.envs import make_env

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    checkpoint: str
    returns: list[float]
    lengths: list[int]

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))


class _Holder:
    """The attributes ``restore_training`` writes, for a policy that is only evaluated."""

    def __init__(self, env, pre, algo) -> None:
        import collections

        self.env, self.pre, self.algo = env, pre, algo
        self.box = hasattr(env.action_space, "low")
        self.mid_episode_ok = False
        self.recent = collections.deque(maxlen=100)
        self.builder = StepTransitions(pre, algo)


def evaluate(run_dir: Path, episodes: int = 10, seed: int = 10_000, video: Path | None = None) -> EvalResult:
    """Return the raw returns of ``episodes`` deterministic episodes of the run's latest policy."""
    torch.set_num_threads(1)
    run_dir = Path(run_dir)
    if type(episodes) is not int or episodes < 1:
        raise ConfigError(f"rill eval: --episodes must be a positive integer, got {episodes!r}")
    if not (run_dir / CONFIG_FILE).exists():
        raise CheckpointError(f"{run_dir} is not a rill train run directory ({CONFIG_FILE} missing)")
    values = read_yaml_mapping(run_dir / CONFIG_FILE, "run config")
    if "env" not in values and ("robots" in values or "actors" in values):
        raise CheckpointError(f"{run_dir} holds a rill run (robots and actors), not a rill train run, "
                              f"which rill eval evaluates; `rill status {run_dir}` shows its learning")
    config = TrainConfig.from_dict(values)
    found = CheckpointStore(run_dir / "checkpoints").load_latest()
    if found is None:
        raise CheckpointError(f"{run_dir} has no checkpoint to evaluate")
    name, tensors, state = found
    env = make_env(config.env, render_mode="rgb_array" if video else None)
    env, pre, algo = build_stream(config, env)
    env.reset(seed=seed)
    holder = _Holder(env, pre, algo)
    restore_training(holder, tensors, {**state, "mid_episode": False})
    env.reset(seed=seed)  # evaluation episodes draw from their own seed, not the training stream
    frames = []
    returns, lengths = [], []
    for _ in range(episodes):
        raw, _ = env.reset()
        s = pre.reset(raw, update=False)
        total, n, done = 0.0, 0, False
        while not done:
            action = algo.act(s, deterministic=True).action
            if holder.box:
                action = np.clip(action, env.action_space.low, env.action_space.high)
            raw, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            n += 1
            done = terminated or truncated
            s, _ = pre.step(raw, reward, terminated, truncated, update=False)
            if video is not None and len(returns) == 0:
                frames.append(env.render())
        returns.append(total)
        lengths.append(n)
    if video is not None:
        _write_video(Path(video), frames, env.metadata.get("render_fps", 30))
    env.close()
    return EvalResult(name, returns, lengths)


def _write_video(path: Path, frames: list, fps: int) -> None:
    try:
        import imageio.v2 as imageio
    except ImportError as e:
        raise RuntimeError("--video needs imageio and imageio-ffmpeg: pip install 'rill[video]'") from e
    path.parent.mkdir(parents=True, exist_ok=True)
    imageio.mimwrite(path, frames, fps=fps)
