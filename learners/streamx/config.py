"""Hyperparameters of the stream-x algorithms, validated where they enter.

Defaults are the single set from docs/streamx.md. Every config is a dataclass whose ``__post_init__``
rejects a bad value with an error naming the field and the value, before anything runs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from hal.config import construct, reject_unknown
from hal.errors import ConfigError as ConfigError  # rill's one ConfigError, re-exported


def _check(cond: bool, where: str, field: str, value: Any, rule: str) -> None:
    if not cond:
        raise ConfigError(f"{where}.{field} {rule}, got {value!r}")


@dataclass
class StreamXConfig:
    """What every stream-x learner shares."""

    alpha: float = 1.0
    gamma: float = 0.99
    lamda: float = 0.8
    sparsity: float = 0.9
    hidden: tuple[int, ...] = (128, 128)
    adaptive: bool = False
    count_overshoots: bool = False

    name = "stream-x"

    def __post_init__(self) -> None:
        w = self.name
        self.hidden = tuple(int(h) for h in self.hidden)
        _check(self.alpha > 0, w, "alpha", self.alpha, "must be > 0")
        _check(0.0 < self.gamma <= 1.0, w, "gamma", self.gamma, "must be in (0, 1]")
        _check(0.0 <= self.lamda <= 1.0, w, "lamda", self.lamda, "must be in [0, 1]")
        _check(0.0 <= self.sparsity < 1.0, w, "sparsity", self.sparsity, "must be in [0, 1)")
        _check(len(self.hidden) > 0 and all(h > 0 for h in self.hidden), w, "hidden",
               self.hidden, "must be a non-empty list of positive layer widths")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["hidden"] = list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> StreamXConfig:
        """Build from a plain mapping; an unknown key is an error naming the closest valid one."""
        reject_unknown(cls.name, values, cls, "hyperparameter")
        return construct(cls, values, cls.name)


@dataclass
class StreamACConfig(StreamXConfig):
    kappa_policy: float = 3.0
    kappa_value: float = 2.0
    entropy_coeff: float = 0.01

    name = "stream-ac"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.kappa_policy > 0, self.name, "kappa_policy", self.kappa_policy, "must be > 0")
        _check(self.kappa_value > 0, self.name, "kappa_value", self.kappa_value, "must be > 0")
        _check(self.entropy_coeff >= 0, self.name, "entropy_coeff", self.entropy_coeff,
               "must be >= 0")


@dataclass
class StreamQConfig(StreamXConfig):
    hidden: tuple[int, ...] = (32, 32)
    kappa: float = 2.0
    epsilon_start: float = 1.0
    epsilon_end: float = 0.01
    exploration_fraction: float = 0.05
    total_steps: int = 500_000

    name = "stream-q"

    def __post_init__(self) -> None:
        super().__post_init__()
        w = self.name
        _check(self.kappa > 0, w, "kappa", self.kappa, "must be > 0")
        _check(0.0 <= self.epsilon_end <= self.epsilon_start <= 1.0, w, "epsilon_start/end",
               (self.epsilon_start, self.epsilon_end), "must satisfy 0 <= end <= start <= 1")
        _check(0.0 < self.exploration_fraction <= 1.0, w, "exploration_fraction",
               self.exploration_fraction, "must be in (0, 1]")
        _check(self.total_steps > 0, w, "total_steps", self.total_steps, "must be > 0")


@dataclass
class StreamSARSAConfig(StreamQConfig):
    name = "stream-sarsa"


@dataclass
class StreamTDConfig(StreamXConfig):
    kappa: float = 2.0

    name = "stream-td"

    def __post_init__(self) -> None:
        super().__post_init__()
        _check(self.kappa > 0, self.name, "kappa", self.kappa, "must be > 0")
