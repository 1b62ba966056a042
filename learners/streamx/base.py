"""What every stream-x algorithm exposes to the loop or learner that drives it."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from learners.streamx.config import StreamXConfig
from learners.transition import Transition


@dataclass
class ActResult:
    """The action chosen for one observation and its log-probability under the behaviour policy."""

    action: np.ndarray | int
    logp: float = float("nan")


@dataclass
class UpdateInfo:
    """What one update did: the TD error, the effective step size(s), and whether it overshot."""

    delta: float
    step_size: float
    overshoot: bool = False


def sign(x: float) -> float:
    return float((x > 0) - (x < 0))


class StreamAlgorithm(abc.ABC):
    """One-sample-at-a-time learner: ``act(obs)`` then ``update(transition)``, no replay, no batch.

    ``obs`` is the already-normalized float32 vector (see ``policies.streamx.StreamXPreprocessor``).
    Algorithms that bootstrap from the next action (SARSA) set ``needs_next_action``; their driver
    must choose ``next_action`` before calling ``update``. The others are driven in the reference
    order: act, step the environment, update, and only then act on the next observation.
    """

    needs_next_action = False
    update_path = "autograd"  # "fast" for the compiled kernels of learners.streamx.fast
    config: StreamXConfig

    def __init__(self, seed: int) -> None:
        self.generator = torch.Generator().manual_seed(int(seed))
        self.overshoots = 0
        self.updates = 0
        self._streams: dict[str, dict[str, list[torch.Tensor]]] = {}
        self._stream: str | None = None

    @abc.abstractmethod
    def act(self, obs: np.ndarray, deterministic: bool = False) -> ActResult: ...

    @abc.abstractmethod
    def update(self, transition: Transition) -> UpdateInfo: ...

    @abc.abstractmethod
    def modules(self) -> dict[str, torch.nn.Module]:
        """The learnable networks by name (``actor``, ``critic``, ``q``...)."""

    @abc.abstractmethod
    def optimizers(self) -> dict[str, Any]:
        """The ObGD optimizers by network name."""

    def acting_module(self) -> tuple[str, torch.nn.Module]:
        """``(name, network)`` an actor needs to choose actions: AC's ``actor``, Q/SARSA's ``q``.

        The learner ships this network's weights (keys ``<name>.<parameter>``) and actors load
        them into theirs. The name comes from the algorithm's entry in
        ``learners.streamx.registry``; an algorithm that only predicts raises
        ``NotImplementedError``.
        """
        from learners.streamx.registry import spec_of  # the registry imports every algorithm

        spec = spec_of(self)
        if spec.acting_module is None:
            raise NotImplementedError(f"{spec.name} predicts values; it has no network to act with")
        return spec.acting_module, self.modules()[spec.acting_module]

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to continue exactly: weights, traces, RNG state, counters."""
        state: dict[str, torch.Tensor] = {}
        for name, module in self.modules().items():
            for key, value in module.state_dict().items():
                state[f"{name}.{key}"] = value.detach().clone()
        for name, opt in self.optimizers().items():
            for key, value in opt.state_dict().items():
                state[f"{name}_opt.{key}"] = value
        state["rng"] = self.generator.get_state()
        state["counters"] = torch.tensor([self.updates, self.overshoots], dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        """Load everything or nothing: shapes and names are checked before any tensor is copied."""
        expected = self.state_dict()
        missing = sorted(set(expected) - set(state))
        unexpected = sorted(set(state) - set(expected))
        if missing or unexpected:
            raise ValueError(f"algorithm state mismatch: missing {missing}, unexpected {unexpected}")
        for key, value in expected.items():
            if tuple(value.shape) != tuple(state[key].shape):
                raise ValueError(f"algorithm state {key!r}: shape {tuple(state[key].shape)} "
                                 f"!= expected {tuple(value.shape)}")
        for name, module in self.modules().items():
            prefix = f"{name}."
            module.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                    if k.startswith(prefix)})
        for name, opt in self.optimizers().items():
            prefix = f"{name}_opt."
            opt.load_state_dict({k[len(prefix):]: v for k, v in state.items()
                                 if k.startswith(prefix)})
        self.generator.set_state(state["rng"])
        self.updates, self.overshoots = (int(x) for x in state["counters"].tolist())
        self._load_extra_state(state)

    def _load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        """Hook for algorithm-specific counters stored in ``state_dict``."""

    # -- eligibility traces per experience stream -----------------------------------------------
    def select_stream(self, stream: str) -> None:
        """Make ``stream``'s eligibility traces the live ones (weights stay shared).

        A learner fed by several actors keeps one trace set per actor: traces follow one
        trajectory, and interleaving two actors' steps in one trace would credit one actor's
        rewards to the other's actions. Traces are copied in and out, so this works whatever
        storage the optimizers' trace tensors view (the fast path's flat buffers included).
        """
        if stream == self._stream:
            return
        opts = self.optimizers()
        if self._stream is not None:
            saved = self._streams[self._stream]
            for name, opt in opts.items():
                for dst, src in zip(saved[name], opt.traces):
                    dst.copy_(src)
        if stream not in self._streams:
            self._streams[stream] = {name: [torch.zeros_like(z) for z in opt.traces]
                                     for name, opt in opts.items()}
        for name, opt in opts.items():
            for dst, src in zip(opt.traces, self._streams[stream][name]):
                dst.copy_(src)
        self._stream = stream

    def reset_traces(self) -> None:
        """Zero the live stream's traces (its trajectory broke off without an end)."""
        for opt in self.optimizers().values():
            opt.reset_traces()

    def stream_traces(self) -> dict[str, torch.Tensor]:
        """Every stream's traces as flat named tensors (``<stream>/<optimizer>.<i>``)."""
        if self._stream is not None:  # bring the live stream's copy up to date
            live, self._stream = self._stream, None
            self._streams.setdefault(live, {n: [torch.zeros_like(z) for z in o.traces]
                                            for n, o in self.optimizers().items()})
            for name, opt in self.optimizers().items():
                for dst, src in zip(self._streams[live][name], opt.traces):
                    dst.copy_(src)
            self._stream = live
        return {f"{stream}/{name}.{i}": z.clone() for stream, sets in self._streams.items()
                for name, zs in sets.items() for i, z in enumerate(zs)}

    def load_stream_traces(self, tensors: dict[str, torch.Tensor]) -> None:
        streams: dict[str, dict[str, list[torch.Tensor]]] = {}
        opts = self.optimizers()
        for stream in {k.rsplit("/", 1)[0] for k in tensors}:
            streams[stream] = {name: [tensors[f"{stream}/{name}.{i}"].clone() for i in range(len(o.traces))]
                               for name, o in opts.items()}
        self._streams, self._stream = streams, None
        for opt in opts.values():
            opt.reset_traces()

    # -- overshoot monitor -----------------------------------------------------------------------
    def _td_error(self, s: torch.Tensor, s_next: torch.Tensor, t: Transition) -> tuple:
        """``(differentiable prediction, delta)`` for one transition under the current weights."""
        raise NotImplementedError

    def _count_overshoot(self, s: torch.Tensor, s_next: torch.Tensor, t: Transition,
                         delta: float) -> bool:
        """Debug aid: recompute delta after the step; a sign flip means the update overshot."""
        if not self.config.count_overshoots:
            return False
        with torch.no_grad():
            _, new_delta = self._td_error(s, s_next, t)
        flipped = sign(new_delta) * sign(delta) < 0
        self.overshoots += flipped
        return flipped
