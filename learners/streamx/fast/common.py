"""What the fast stream-x algorithms share: input coercion and per-network kernel arguments."""

from __future__ import annotations

import numpy as np

from learners.streamx.base import sign
from learners.streamx.obgd import AdaptiveObGD, ObGD

ADAPTIVE_BETA2 = 0.999  # unused by plain ObGD; a number keeps the kernels' signatures fixed


def as_input(x) -> np.ndarray:
    """A 1-D contiguous float32 view (or copy) of an observation vector."""
    return np.ascontiguousarray(x, dtype=np.float32).reshape(-1)


def trace_decay(opt: ObGD) -> np.float32:
    """``gamma * lambda`` as the float32 scalar the autograd path multiplies the traces by."""
    return np.float32(opt.gamma * opt.lamda)


def begin_step(opt: ObGD) -> tuple[float, int]:
    """``(beta2, t)`` for this update, advancing adaptive ObGD's step counter as its ``step`` does."""
    if isinstance(opt, AdaptiveObGD):
        opt.t += 1
        return opt.beta2, opt.t
    return ADAPTIVE_BETA2, 0


def flipped(new_delta: float, delta: float) -> bool:
    return sign(new_delta) * sign(delta) < 0


class CompiledPath:
    """Mixin of the fast algorithms: ``_bind()`` makes the flat buffers the modules' storage.

    Called at construction and again after unpickling or ``copy.deepcopy`` (both go through
    ``__setstate__``), since a copy of a tensor that shares memory with a numpy buffer no longer
    shares it with the copy of that buffer.
    """

    update_path = "fast"

    def _bind(self) -> None:
        raise NotImplementedError

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._bind()
