"""``build_policy``: the policy ``agent_node`` runs, from its ``policy.*`` parameters.

- ``replan``: ``agent.testing.policies.ReplanningPolicy`` (a smooth reference with per-chunk
  offsets; for exercising the loop and the ROS path).
- ``reach``: ``ScriptedReachPolicy`` (the simulated reaching demo).
- ``streamx``: ``StreamXPolicy``, acting with the weights the learner publishes (needs
  ``learner.endpoint`` to learn; without it, it acts with its initial weights).
- ``vla``: the vision-language-action policy of ``policies.vla`` (``policy.checkpoint``: a saved
  VLA; empty: a tiny untrained one, for smoke tests). This is the hook for the VLA branch.
- ``class``: any ``Policy`` subclass named by ``policy.class_path``, built with ``action_dim``,
  ``period_s``, ``chunk_size`` and ``policy.args``.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from agent.ros.agent_config import PolicyConfig
from hal.errors import ConfigError
from policies.base import Policy

log = logging.getLogger(__name__)


def build_policy(config: PolicyConfig, state_dim: int, action_dim: int, period_s: float,
                 learner: Any = None) -> Policy:
    """The policy ``config`` names; ``learner`` (a ``TickTransitions``) supplies stream-x weights."""
    args = dict(config.args)
    try:
        if config.type == "replan":
            from agent.testing.policies import ReplanningPolicy

            return ReplanningPolicy(action_dim, config.chunk_size, period_s, **args)
        if config.type == "reach":
            from agent.ros.reach_policy import ScriptedReachPolicy

            return ScriptedReachPolicy(action_dim, period_s, config.chunk_size, **args)
        if config.type == "streamx":
            return _streamx(state_dim, action_dim, period_s, learner, args)
        if config.type == "vla":
            return _vla(config, state_dim, action_dim, args)
        return _from_class_path(config, action_dim, period_s, args)
    except TypeError as e:  # a policy.args key the constructor does not take
        raise ConfigError(f"policy.type {config.type!r}: bad policy.args {args}: {e}") from None


def _streamx(state_dim: int, action_dim: int, period_s: float, learner: Any, args: dict) -> Policy:
    if learner is not None:
        return learner.policy(period_s, **args)
    from agent.actor.streamx_policy import StreamXPolicy
    from learners.streamx import build_algorithm, build_preprocessor

    log.warning("policy.type streamx without learner.endpoint: acting with initial weights, learning nothing")
    pre = build_preprocessor(state_dim, 0.99, None)
    algo = build_algorithm("stream-ac", pre.out_dim, action_dim=action_dim)
    return StreamXPolicy(algo, lambda x: pre.obs_norm(x, update=False), action_dim, period_s, **args)


def _vla(config: PolicyConfig, state_dim: int, action_dim: int, args: dict) -> Policy:
    try:
        vla = importlib.import_module("policies.vla")
    except ImportError as e:
        raise ConfigError(f"policy.type 'vla' needs policies.vla, which this install lacks ({e})") from None
    if config.checkpoint:
        model = vla.load_vla(config.checkpoint)
    else:
        log.warning("policy.type vla without policy.checkpoint: a tiny untrained VLA (smoke tests only)")
        model = vla.tiny_vla(state_dim=state_dim, action_dim=action_dim, chunk_size=config.chunk_size, **args)
    return vla.VLAPolicy(model)


def _from_class_path(config: PolicyConfig, action_dim: int, period_s: float, args: dict) -> Policy:
    module_name, _, qualname = config.class_path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ConfigError(f"policy.class_path {config.class_path!r} cannot be loaded: {e}") from None
    if not (isinstance(obj, type) and issubclass(obj, Policy)):
        raise ConfigError(f"policy.class_path {config.class_path!r} is not a policies.base.Policy subclass")
    return obj(action_dim=action_dim, period_s=period_s, chunk_size=config.chunk_size, **args)
