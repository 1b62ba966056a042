"""Plain-data descriptions of what a robot observes and accepts, readable while disconnected."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class FeatureSpec:
    """One observation entry: ``shape`` and ``dtype`` (``"str"`` for text such as an instruction,
    which must not be empty)."""

    shape: tuple[int, ...]
    dtype: str
    allow_empty: bool = False  # text only: may the string be empty (e.g. no instruction received yet)?

    def check(self, name: str, value) -> None:
        """Raise ``ValueError`` naming ``name`` if ``value`` does not match this spec."""
        if self.dtype == "str":
            if not isinstance(value, str):
                raise ValueError(f"observation {name!r}: expected str, got {type(value).__name__}")
            if not value.strip() and not self.allow_empty:  # nobody can act on a blank instruction
                raise ValueError(f"observation {name!r}: empty string")
            return
        arr = np.asarray(value)
        if arr.shape != self.shape or arr.dtype != np.dtype(self.dtype):
            raise ValueError(f"observation {name!r}: expected {self.dtype}{list(self.shape)}, "
                             f"got {arr.dtype}{list(arr.shape)}")


@dataclass(frozen=True)
class ActionSpec:
    """The command vector a robot accepts: names per dimension, limits, and a per-tick step bound.

    ``max_delta`` bounds how far one command may move from the previous one (per dimension);
    ``None`` means no rate limit.
    """

    names: tuple[str, ...]
    low: np.ndarray
    high: np.ndarray
    max_delta: np.ndarray | None = None
    shape: tuple[int, ...] = field(init=False)

    def __post_init__(self) -> None:
        low = np.asarray(self.low, np.float32).reshape(-1)
        high = np.asarray(self.high, np.float32).reshape(-1)
        n = len(self.names)
        if low.shape != (n,) or high.shape != (n,):
            raise ValueError(f"ActionSpec: {n} names but low/high of shapes {low.shape}/{high.shape}")
        if np.any(low > high):
            bad = [self.names[i] for i in np.flatnonzero(low > high)]
            raise ValueError(f"ActionSpec: low > high for {bad}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)
        object.__setattr__(self, "shape", (n,))
        if self.max_delta is not None:
            delta = np.broadcast_to(np.asarray(self.max_delta, np.float32), (n,)).copy()
            if np.any(delta <= 0):
                raise ValueError("ActionSpec: max_delta must be > 0")
            object.__setattr__(self, "max_delta", delta)

    @property
    def dim(self) -> int:
        return len(self.names)

    def clamp(self, action: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Limit ``action`` to the joint limits and, if set, to ``max_delta`` from ``previous``."""
        out = np.clip(action, self.low, self.high)
        if self.max_delta is not None and previous is not None:
            out = np.clip(out, previous - self.max_delta, previous + self.max_delta)
        return out.astype(np.float32, copy=False)
