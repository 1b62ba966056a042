"""Training checkpoints: where they live, how many are kept, and what a trainer's state is.

A checkpoint holds everything a run needs to continue bit-exactly: the algorithm's weights,
traces, RNG and counters; the preprocessor's statistics; the loop's counters; the env's generator
and (MuJoCo, mid-episode) its simulator state. Tensors go to safetensors, the rest to JSON.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from learners.checkpoint import CheckpointError
from learners.streamx.base import ActResult
from sim import snapshot

if TYPE_CHECKING:
    from agent.train import Trainer

log = logging.getLogger(__name__)


def _np(t: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(t))


def capture_training(tr: Trainer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    # Mid-episode state is kept only where the env can be restored to it (MuJoCo); elsewhere a
    # resumed run starts a fresh episode (periodic checkpoints wait for an episode boundary).
    steps = tr.builder
    mid_episode = steps.in_episode and tr.mid_episode_ok
    tensors = {f"algo.{k}": v for k, v in tr.algo.state_dict().items()}
    pre = tr.pre.state_dict()
    tensors["pre.obs.mean"] = _np(pre["obs"]["mean"])
    tensors["pre.obs.m2"] = _np(pre["obs"]["m2"])
    env_state, env_arrays = snapshot.capture(tr.env, mid_episode)
    tensors.update({f"env.{k}": _np(v) for k, v in env_arrays.items()})
    if mid_episode:
        tensors["loop.obs"] = _np(steps.obs)
        if steps.pending is not None:
            tensors["loop.pending_action"] = _np(np.atleast_1d(steps.pending.action))
    state = {
        "step": tr.step,
        "episode": steps.episode,
        "mid_episode": mid_episode,
        "ep_return": steps.ret,
        "ep_length": steps.length,
        "nonfinite": steps.nonfinite,
        "wall_time": tr.wall_time,
        "recent": list(tr.recent),
        "pending_logp": steps.pending.logp if steps.pending is not None else None,
        "pre": {
            "obs_count": pre["obs"]["count"],
            "reward": {
                "trace": pre["reward"]["trace"],
                "count": pre["reward"]["count"],
                "mean": float(pre["reward"]["mean"]),
                "m2": float(pre["reward"]["m2"]),
            },
            "time": pre.get("time"),
        },
        "env": env_state,
        "config": tr.config.to_dict(),
    }
    return tensors, state


def restore_training(tr: Trainer, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
    """Apply a verified checkpoint to a freshly built trainer (all-or-nothing per component)."""
    try:
        algo_state = {k[5:]: v for k, v in tensors.items() if k.startswith("algo.")}
        tr.algo.load_state_dict(algo_state)
        pre = {
            "obs": {
                "count": state["pre"]["obs_count"],
                "mean": tensors["pre.obs.mean"].numpy(),
                "m2": tensors["pre.obs.m2"].numpy(),
            },
            "reward": state["pre"]["reward"],
        }
        if state["pre"].get("time") is not None:
            pre["time"] = state["pre"]["time"]
        tr.pre.load_state_dict(pre)
        env_arrays = {k[4:]: v.numpy() for k, v in tensors.items() if k.startswith("env.")}
        mid = bool(state["mid_episode"])
        snapshot.restore(tr.env, state["env"], env_arrays)
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint does not fit this run: {e}") from e
    steps = tr.builder
    tr.step, steps.episode = int(state["step"]), int(state["episode"])
    steps.nonfinite, tr.wall_time = int(state["nonfinite"]), float(state["wall_time"])
    tr.recent.clear()
    tr.recent.extend(state["recent"])
    steps.abandon()
    if mid:
        steps.obs = tensors["loop.obs"].numpy().copy()
        steps.ret, steps.length = float(state["ep_return"]), int(state["ep_length"])
        if "loop.pending_action" in tensors:
            action = tensors["loop.pending_action"].numpy()
            action = int(action[0]) if not tr.box else action.copy()
            steps.pending = ActResult(action, state["pending_logp"])
