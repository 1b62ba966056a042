"""The stream-x algorithms by name: one table of what each one is and what it needs.

A new algorithm plugs in with one entry in ``ALGORITHMS``. Everything that picks an algorithm by
name reads this table: ``build_algorithm`` and ``algorithm_config``, the learner's config check,
the command lines' choices (``algorithm_names``), and ``StreamAlgorithm.acting_module`` (which
network an actor needs, and so which weights the learner ships).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from hal.config import nearest
from learners.streamx.base import StreamAlgorithm
from learners.streamx.config import (
    ConfigError,
    StreamACConfig,
    StreamQConfig,
    StreamSARSAConfig,
    StreamTDConfig,
    StreamXConfig,
)
from learners.streamx.stream_ac import StreamAC
from learners.streamx.stream_q import StreamQ, StreamSARSA
from learners.streamx.stream_td import StreamTD

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlgorithmSpec:
    """One stream-x algorithm: its classes and what a driver must know about it.

    ``fast`` names its compiled-path class in ``learners.streamx.fast`` (None: autograd only); it
    is imported on first use, since numba is optional. ``controls`` is False for an algorithm
    that only predicts. ``discrete`` / ``continuous`` say which action spaces it can act in.
    ``acting_module`` names the network of ``modules()`` that an actor needs to choose actions
    (None when it does not control). ``policy_weighted``: its ``update`` takes ``policy_weight``,
    the truncated importance weight of its policy-gradient term.
    """

    name: str
    algorithm: type[StreamAlgorithm]
    config: type[StreamXConfig]
    fast: str | None
    controls: bool
    discrete: bool
    continuous: bool
    acting_module: str | None
    policy_weighted: bool = False

    def __post_init__(self) -> None:
        if self.config.name != self.name:
            raise ConfigError(f"algorithm {self.name!r}: its config class is {self.config.name!r}'s")
        if self.controls != (self.acting_module is not None) or self.controls != (
                self.discrete or self.continuous):
            raise ConfigError(f"algorithm {self.name!r}: an algorithm that controls names its acting "
                              "module and an action space; one that only predicts names neither")

    def fast_class(self) -> type[StreamAlgorithm] | None:
        """The compiled-path class, or None when there is none or numba cannot be imported."""
        if self.fast is None:
            return None
        try:
            from learners.streamx import fast
        except ImportError as e:  # numba is a dependency; a stripped install still trains, slowly
            log.warning("fast stream-x path unavailable (%s); using the autograd path", e)
            return None
        return getattr(fast, self.fast)


ALGORITHMS: dict[str, AlgorithmSpec] = {spec.name: spec for spec in (
    AlgorithmSpec("stream-ac", StreamAC, StreamACConfig, fast="FastStreamAC", controls=True,
                  discrete=True, continuous=True, acting_module="actor", policy_weighted=True),
    AlgorithmSpec("stream-q", StreamQ, StreamQConfig, fast="FastStreamQ", controls=True,
                  discrete=True, continuous=False, acting_module="q"),
    AlgorithmSpec("stream-sarsa", StreamSARSA, StreamSARSAConfig, fast="FastStreamSARSA",
                  controls=True, discrete=True, continuous=False, acting_module="q"),
    AlgorithmSpec("stream-td", StreamTD, StreamTDConfig, fast="FastStreamTD", controls=False,
                  discrete=False, continuous=False, acting_module=None),
)}


def algorithm_names(control_only: bool = False) -> list[str]:
    """The registered algorithm names, in table order; ``control_only`` drops prediction-only ones."""
    return [name for name, spec in ALGORITHMS.items() if spec.controls or not control_only]


def algorithm_spec(name: str) -> AlgorithmSpec:
    """The entry of algorithm ``name``; an unknown name is a ``ConfigError`` naming close ones."""
    if name not in ALGORITHMS:
        near = nearest(name, list(ALGORITHMS))
        hint = f" (did you mean {near}?)" if near else ""
        raise ConfigError(f"unknown algorithm {name!r}{hint}; known: {', '.join(ALGORITHMS)}")
    return ALGORITHMS[name]


def spec_of(algorithm: StreamAlgorithm | type[StreamAlgorithm]) -> AlgorithmSpec:
    """The entry of an algorithm instance or class, compiled-path subclasses included.

    The class hierarchy is walked most-derived first: ``FastStreamSARSA`` is a ``StreamQ`` too,
    but it is a ``StreamSARSA`` before that.
    """
    cls = algorithm if isinstance(algorithm, type) else type(algorithm)
    by_class = {spec.algorithm: spec for spec in ALGORITHMS.values()}
    for base in cls.__mro__:
        if base in by_class:
            return by_class[base]
    raise KeyError(f"{cls.__name__} is not a registered stream-x algorithm (learners.streamx.registry)")
