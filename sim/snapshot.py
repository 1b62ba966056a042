"""Capture and restore a gymnasium env's state so a training run resumes bit-exactly.

Every env: its ``np_random`` generator (what the next ``reset`` draws from). MuJoCo envs also
mid-episode: the full integration state (``mj_getState(mjSTATE_INTEGRATION)``, which is what
``mj_step`` needs to continue identically) and the time-limit counter. Other envs can be
snapshotted only between episodes; ``supports_mid_episode`` says which case applies.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

_INTEGRATION = mujoco.mjtState.mjSTATE_INTEGRATION


def _mujoco_env(env: gym.Env):
    base = env.unwrapped
    if hasattr(base, "model") and isinstance(getattr(base, "data", None), mujoco.MjData):
        return base
    return None


def _time_limit(env: gym.Env) -> gym.wrappers.TimeLimit | None:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


def supports_mid_episode(env: gym.Env) -> bool:
    return _mujoco_env(env) is not None


def capture(env: gym.Env, mid_episode: bool) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(json_state, arrays)`` describing ``env``; arrays hold the simulator state if mid-episode."""
    state: dict[str, Any] = {"np_random": env.unwrapped.np_random.bit_generator.state}
    arrays: dict[str, np.ndarray] = {}
    if mid_episode:
        base = _mujoco_env(env)
        if base is None:
            raise ValueError(f"{env.spec.id if env.spec else env}: cannot snapshot mid-episode")
        size = mujoco.mj_stateSize(base.model, _INTEGRATION)
        buf = np.empty(size, np.float64)
        mujoco.mj_getState(base.model, base.data, buf, _INTEGRATION)
        arrays["mujoco_state"] = buf
        limit = _time_limit(env)
        state["elapsed_steps"] = int(limit._elapsed_steps) if limit else None
    return state, arrays


def restore(env: gym.Env, state: dict[str, Any], arrays: dict[str, np.ndarray]) -> None:
    """Undo ``capture``: ``env`` must already have been reset once (gymnasium's order check)."""
    env.unwrapped.np_random.bit_generator.state = state["np_random"]
    if "mujoco_state" in arrays:
        base = _mujoco_env(env)
        if base is None:
            raise ValueError("checkpoint holds a MuJoCo state but this env is not a MuJoCo env")
        expected = mujoco.mj_stateSize(base.model, _INTEGRATION)
        buf = np.ascontiguousarray(arrays["mujoco_state"], np.float64)
        if buf.shape != (expected,):
            raise ValueError(f"MuJoCo state of size {buf.size} does not fit this model ({expected})")
        mujoco.mj_setState(base.model, base.data, buf, _INTEGRATION)
        mujoco.mj_forward(base.model, base.data)
        limit = _time_limit(env)
        if limit is not None and state.get("elapsed_steps") is not None:
            limit._elapsed_steps = int(state["elapsed_steps"])
