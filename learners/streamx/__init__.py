"""The stream-x algorithms (STREAMX.md): ObGD, Stream AC/Q/SARSA/TD(lambda), and a registry.

A new algorithm plugs in by adding an entry to ``ALGORITHMS``; callers build by name.
"""

from __future__ import annotations

import difflib
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
from learners.streamx.stream_ac import StreamAC
from learners.streamx.stream_q import StreamQ, StreamSARSA
from learners.streamx.stream_td import StreamTD

log = logging.getLogger(__name__)

ALGORITHMS: dict[str, tuple[type[StreamAlgorithm], type[StreamXConfig]]] = {
    "stream-ac": (StreamAC, StreamACConfig),
    "stream-q": (StreamQ, StreamQConfig),
    "stream-sarsa": (StreamSARSA, StreamSARSAConfig),
    "stream-td": (StreamTD, StreamTDConfig),
}


def algorithm_config(name: str, overrides: dict[str, Any] | None = None) -> StreamXConfig:
    """The validated config of algorithm ``name`` with ``overrides`` applied."""
    if name not in ALGORITHMS:
        near = difflib.get_close_matches(name, ALGORITHMS, n=3)
        hint = f" (did you mean {', '.join(near)}?)" if near else ""
        raise ConfigError(f"unknown algorithm {name!r}{hint}; known: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name][1].from_dict(dict(overrides or {}))


def fast_algorithm_class(name: str) -> type[StreamAlgorithm] | None:
    """The compiled-path class of algorithm ``name``, or None when numba cannot be imported."""
    try:
        from learners.streamx import fast
    except ImportError as e:  # numba is a dependency; a stripped install still trains, slowly
        log.warning("fast stream-x path unavailable (%s); using the autograd path", e)
        return None
    return {"stream-ac": fast.FastStreamAC, "stream-q": fast.FastStreamQ,
            "stream-sarsa": fast.FastStreamSARSA, "stream-td": fast.FastStreamTD}.get(name)


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
    cls, _ = ALGORITHMS[name]
    config = config or algorithm_config(name)
    if fast:
        cls = fast_algorithm_class(name) or cls
    if issubclass(cls, StreamAC):
        return cls(obs_dim, action_dim=action_dim, n_actions=n_actions, config=config, seed=seed)
    if issubclass(cls, StreamTD):
        return cls(obs_dim, config=config, seed=seed)
    if n_actions is None:
        raise ConfigError(f"{name} needs a discrete action space; this task's actions are continuous"
                          " (use stream-ac)")
    return cls(obs_dim, n_actions, config=config, seed=seed)


__all__ = [
    "ALGORITHMS", "ActResult", "AdaptiveObGD", "ConfigError", "ObGD", "StreamAC", "StreamACConfig",
    "StreamAlgorithm", "StreamQ", "StreamQConfig", "StreamSARSA", "StreamSARSAConfig", "StreamTD",
    "StreamTDConfig", "StreamXConfig", "UpdateInfo", "algorithm_config", "build_algorithm",
    "build_preprocessor", "fast_algorithm_class",
]
