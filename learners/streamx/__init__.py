"""The stream-x algorithms (docs/streamx.md): ObGD, Stream AC/Q/SARSA/TD(lambda), built by name.

A new algorithm plugs in by adding an entry to ``ALGORITHMS`` (``learners.streamx.registry``).
"""

from __future__ import annotations

import logging
from typing import Any

from learners.streamx.base import ActResult, StreamAlgorithm, UpdateInfo
from learners.streamx.config import (
    ConfigError,
    StreamACConfig,
    StreamQConfig,
    StreamSARSAConfig,
    StreamTDConfig,
    StreamXConfig,
)
from learners.streamx.obgd import AdaptiveObGD, ObGD
from learners.streamx.registry import (
    ALGORITHMS,
    AlgorithmSpec,
    algorithm_names,
    algorithm_spec,
    spec_of,
)
from learners.streamx.stream_ac import StreamAC
from learners.streamx.stream_q import StreamQ, StreamSARSA
from learners.streamx.stream_td import StreamTD

log = logging.getLogger(__name__)


def algorithm_config(name: str, overrides: dict[str, Any] | None = None) -> StreamXConfig:
    """The validated config of algorithm ``name`` with ``overrides`` applied."""
    return algorithm_spec(name).config.from_dict(dict(overrides or {}))


def fast_algorithm_class(name: str) -> type[StreamAlgorithm] | None:
    """The compiled-path class of algorithm ``name``, or None when numba cannot be imported."""
    return algorithm_spec(name).fast_class()


def build_preprocessor(obs_dim: int, gamma: float, time_limit: int | None, fast: bool = False):
    """The stream-x input pipeline; ``fast`` compiles its per-step call (bit-identical results)."""
    from policies.streamx.normalization import StreamXPreprocessor

    if fast:
        try:
            from learners.streamx.fast.preprocess import FastStreamXPreprocessor
        except ImportError as e:
            log.warning("compiled preprocessing unavailable (%s); using numpy", e)
        else:
            return FastStreamXPreprocessor(obs_dim, gamma, time_limit)
    return StreamXPreprocessor(obs_dim, gamma, time_limit)


def build_algorithm(
    name: str,
    obs_dim: int,
    *,
    action_dim: int | None = None,
    n_actions: int | None = None,
    config: StreamXConfig | None = None,
    seed: int = 0,
    fast: bool = False,
) -> StreamAlgorithm:
    """Build algorithm ``name`` for a continuous (``action_dim``) or discrete (``n_actions``) task.

    ``fast`` picks the compiled update path (same numbers, same state); the result's
    ``update_path`` says which path was built.
    """
    spec = algorithm_spec(name)
    config = config or spec.config()
    cls = (spec.fast_class() if fast else None) or spec.algorithm
    if spec.continuous:  # it takes either action space and checks that exactly one is given
        return cls(obs_dim, action_dim=action_dim, n_actions=n_actions, config=config, seed=seed)
    if not spec.controls:
        return cls(obs_dim, config=config, seed=seed)
    if n_actions is None:
        use = " or ".join(n for n, s in ALGORITHMS.items() if s.continuous)
        raise ConfigError(f"{name} needs a discrete action space; this task's actions are continuous"
                          f" (use {use})")
    return cls(obs_dim, n_actions, config=config, seed=seed)


__all__ = [
    "ALGORITHMS", "ActResult", "AdaptiveObGD", "AlgorithmSpec", "ConfigError", "ObGD", "StreamAC",
    "StreamACConfig", "StreamAlgorithm", "StreamQ", "StreamQConfig", "StreamSARSA",
    "StreamSARSAConfig", "StreamTD", "StreamTDConfig", "StreamXConfig", "UpdateInfo",
    "algorithm_config", "algorithm_names", "algorithm_spec", "build_algorithm", "build_preprocessor",
    "fast_algorithm_class", "spec_of",
]
