"""``rill train``: a stream-x learner on a gymnasium environment, one sample at a time.

The loop follows the reference order (act, step, update, then act on the next observation) with
the stream-x preprocessing of ``policies.streamx.StreamXPreprocessor``. Values that are not finite
(a diverging simulator, a broken sensor) are screened before any statistic or weight sees them:
that step is skipped, counted, and the episode restarted.
"""

from __future__ import annotations

import json
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from agent.actor.steps import SteppingActor, StepTransitions
from agent.metrics import RunMetrics
from agent.train_config import TrainConfig, prepare_run_dir
from hal.errors import ConfigError
from learners.checkpoint import CheckpointStore
from learners.streamx import algorithm_spec, build_algorithm, build_preprocessor
from sim import snapshot
from sim.envs import action_layout, make_env, time_limit

log = logging.getLogger(__name__)

PROGRESS_EVERY_STEPS = 1000


def build_stream(config: TrainConfig, env: gym.Env | None = None):
    """``(env, preprocessor, algorithm)`` for a config: the pieces of one training stream."""
    env = env or make_env(config.env)
    layout = action_layout(env)
    continuous = "action_dim" in layout
    use_time = continuous if config.time_feature is None else config.time_feature
    obs_dim = int(np.prod(env.observation_space.shape))
    fast = config.update_path == "fast"
    pre = build_preprocessor(
        obs_dim, config.algo_config.gamma, time_limit(env) if use_time else None, fast=fast
    )
    algo = build_algorithm(
        config.algo, pre.out_dim, config=config.algo_config, seed=config.seed, fast=fast, **layout
    )
    return env, pre, algo


class Trainer(SteppingActor):
    """Runs one training stream to ``config.steps`` with metrics, checkpoints and exact resume."""

    def __init__(self, config: TrainConfig, resume: bool = False, overwrite: bool = False) -> None:
        torch.set_num_threads(1)  # one sample at a time: threads only add synchronization
        self.config = config
        if not algorithm_spec(config.algo).controls:
            raise ConfigError(f"rill train needs a control algorithm; {config.algo} only predicts values")
        # Build (and so validate) everything before the run directory is touched.
        self.env, self.pre, self.algo = build_stream(config)
        self.run_dir = prepare_run_dir(config, resume, overwrite)
        self.box = isinstance(self.env.action_space, gym.spaces.Box)
        if self.box:  # looked up once: the wrapper chain's action_space property is slow
            self.action_low, self.action_high = self.env.action_space.low, self.env.action_space.high
        self.store = CheckpointStore(self.run_dir / "checkpoints", config.keep_checkpoints)
        self.mid_episode_ok = snapshot.supports_mid_episode(self.env)
        # Loop state: everything below (and the builder's episode state) is checkpointed.
        self.builder = StepTransitions(self.pre, self.algo)
        self.step = 0
        self.wall_time = 0.0
        self.recent = deque(maxlen=100)
        self.env.reset(seed=config.seed)  # seeds the env's generator; episodes start in _begin
        self.env_fresh = True
        resume_step = self._resume() if resume else None
        self.metrics = RunMetrics(self.run_dir, resume_step)
        self._write_run_info()

    # -- setup -----------------------------------------------------------------------------------
    def _write_run_info(self) -> None:
        info = {
            "env": self.config.env,
            "algo": self.config.algo,
            "seed": self.config.seed,
            "update_path": self.algo.update_path,
            "obs_dim": self.pre.out_dim,
            "algo_config": self.config.algo_config.to_dict(),
            "time_feature": self.pre.time is not None,
            "torch": torch.__version__,
        }
        (self.run_dir / "run.json").write_text(json.dumps(info, indent=1))

    def _resume(self) -> int:
        from agent.checkpoints import restore_training

        found = self.store.load_latest()
        if found is None:
            log.warning("--resume: %s has no checkpoint yet; starting from step 0", self.run_dir)
            return 0
        name, tensors, state = found
        restore_training(self, tensors, state)
        self.env_fresh = False
        log.info("resumed %s from checkpoint %s at step %d", self.run_dir, name, self.step)
        return self.step

    # -- the loop --------------------------------------------------------------------------------
    def _env_action(self, action):
        if self.box:
            return np.minimum(np.maximum(action, self.action_low), self.action_high)  # np.clip
        return action

    def train_step(self) -> bool:
        """One environment step and one update. Returns True when an episode ended."""
        b = self.builder
        if not b.in_episode:
            self.begin_episode(lambda: self.env.reset()[0], self.config.env)
        chosen = b.choose()
        raw, reward, terminated, truncated, info = self.env.step(self._env_action(chosen.action))
        self.step += 1
        t = b.record(chosen, raw, reward, terminated, truncated, seq=self.step)
        if t is None:  # skipped: not finite
            return True
        self.last_info = self.algo.update(t)
        if t.done:
            self.recent.append(b.ret)
            success = info.get("success")  # on tasks that report it (Meta-World)
            self.metrics.episode(self.step, b.episode, b.ret, b.length, self.wall_time,
                                 None if success is None else bool(success))
        return t.done

    def run(self, on_progress: Callable[[Trainer, float], None] | None = None) -> dict:
        """Train until ``config.steps``; returns the summary also written to ``summary.json``."""
        every = self.config.checkpoint_every
        next_ckpt = (self.step // every + 1) * every
        deltas, sizes = [], []
        t0, step0, last = time.perf_counter(), self.step, time.perf_counter()
        wall0 = self.wall_time
        while self.step < self.config.steps:
            done = self.train_step()
            info = getattr(self, "last_info", None)
            if info is not None:
                deltas.append(abs(info.delta))
                sizes.append(info.step_size)
                self.last_info = None
            self.wall_time = wall0 + time.perf_counter() - t0
            if self.step >= next_ckpt and (done or self.mid_episode_ok):
                self.save_checkpoint()
                next_ckpt = (self.step // every + 1) * every
            if self.step % PROGRESS_EVERY_STEPS == 0:
                now = time.perf_counter()
                rate = PROGRESS_EVERY_STEPS / max(now - last, 1e-9)
                last = now
                self._log_progress(rate, deltas, sizes)
                deltas, sizes = [], []
                if on_progress:
                    on_progress(self, rate)
        self.save_checkpoint()
        elapsed = time.perf_counter() - t0
        summary = self.summary((self.step - step0) / max(elapsed, 1e-9))
        (self.run_dir / "summary.json").write_text(json.dumps(summary, indent=1))
        self.metrics.close()
        self._plot()
        return summary

    def _log_progress(self, rate: float, deltas: list, sizes: list) -> None:
        self.metrics.progress(
            {
                "step": self.step,
                "wall_time": round(self.wall_time, 3),
                "steps_per_s": round(rate, 1),
                "episodes": self.episode,
                "recent_return": self.recent_return(),
                "nonfinite_skipped": self.nonfinite,
                "overshoots": self.algo.overshoots,
                "mean_abs_delta": float(np.mean(deltas)) if deltas else float("nan"),
                "mean_step_size": float(np.mean(sizes)) if sizes else float("nan"),
            }
        )

    def recent_return(self, n: int = 10) -> float:
        if not self.recent:
            return float("nan")
        return float(np.mean(list(self.recent)[-n:]))

    def summary(self, steps_per_s: float) -> dict:
        return {
            "env": self.config.env,
            "algo": self.config.algo,
            "seed": self.config.seed,
            "steps": self.step,
            "episodes": self.episode,
            "final_return_mean_last_10": self.recent_return(10),
            "final_return_mean_last_100": self.recent_return(100),
            "nonfinite_skipped": self.nonfinite,
            "overshoots": self.algo.overshoots,
            "steps_per_s": round(steps_per_s, 1),
            "wall_time_s": round(self.wall_time, 1),
        }

    def save_checkpoint(self) -> Path:
        from agent.checkpoints import capture_training

        tensors, state = capture_training(self)
        path = self.store.save(self.step, tensors, state)
        self.metrics.flush()
        return path

    def _plot(self) -> None:
        from agent.actor.episodes import read_episodes
        from agent.plots import plot_learning_curve

        episodes = read_episodes(self.metrics.episodes_path)
        plot_learning_curve(
            [e.step for e in episodes],
            [e.ret for e in episodes],
            self.run_dir / "learning_curve.png",
            f"{self.config.algo} on {self.config.env} (seed {self.config.seed})",
        )
