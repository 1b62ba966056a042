"""Making gymnasium environments by id, with errors a user can act on."""

from __future__ import annotations

import difflib
from typing import Any

import gymnasium as gym
import numpy as np


class UnknownEnvError(ValueError):
    """The environment id is not registered with gymnasium."""


def _registered_ids() -> list[str]:
    return sorted(gym.registry.keys())


def make_env(env_id: str, render_mode: str | None = None, **kwargs: Any) -> gym.Env:
    """``gym.make(env_id)`` with a flat Box observation; unknown ids get close matches listed."""
    import sim.tasks  # noqa: F401  registers rill's own tasks

    if env_id not in gym.registry:
        near = difflib.get_close_matches(env_id, _registered_ids(), n=5, cutoff=0.5)
        hint = f"; close matches: {', '.join(near)}" if near else ""
        raise UnknownEnvError(f"unknown environment id {env_id!r}{hint}")
    if render_mode is not None:
        kwargs["render_mode"] = render_mode
    env = gym.make(env_id, **kwargs)
    if not (isinstance(env.observation_space, gym.spaces.Box) and
            len(env.observation_space.shape) == 1):
        _refuse_images_and_text(env_id, env.observation_space)
        env = gym.wrappers.FlattenObservation(env)
    return env


def _refuse_images_and_text(env_id: str, space: gym.Space) -> None:
    """Flattening images and text would hand a state learner raw pixels and character codes."""
    if not isinstance(space, gym.spaces.Dict):
        return
    bad = [k for k, s in space.spaces.items()
           if isinstance(s, gym.spaces.Text) or (isinstance(s, gym.spaces.Box) and len(s.shape) >= 3)]
    if bad:
        if env_id.startswith("rill/MetaWorld-"):
            state_id = env_id.replace("rill/MetaWorld-", "rill/MetaWorldState-")
        else:
            state_id = env_id.replace("-v", "State-v")
        hint = f"; use {state_id} for state-only learning" if state_id in gym.registry else ""
        raise ValueError(f"{env_id} observes {bad} (images or text), which a flat state learner cannot "
                         f"use{hint}")


def time_limit(env: gym.Env, default: int = 1000) -> int:
    """The episode step limit ``T`` of ``env`` (for the time feature)."""
    spec = env.spec
    return int(spec.max_episode_steps) if spec and spec.max_episode_steps else default


def action_layout(env: gym.Env) -> dict[str, Any]:
    """``{"action_dim": n}`` for a Box action space or ``{"n_actions": n}`` for a Discrete one."""
    space = env.action_space
    if isinstance(space, gym.spaces.Box):
        return {"action_dim": int(np.prod(space.shape))}
    if isinstance(space, gym.spaces.Discrete):
        return {"n_actions": int(space.n)}
    raise ValueError(f"unsupported action space {space} (rill's stream-x needs Box or Discrete)")


def stream_layout(env_id: str) -> tuple[int, dict[str, Any]]:
    """The observation width a stream-x learner on ``env_id`` sees (plus the time feature of
    continuous control) and its action layout, read from a throwaway instance."""
    env = make_env(env_id)
    try:
        layout = action_layout(env)
        return int(np.prod(env.observation_space.shape)) + (1 if "action_dim" in layout else 0), layout
    finally:
        env.close()
