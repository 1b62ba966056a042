"""``ResidualPolicy``: a base policy (the VLA) plus a stream-x Gaussian residual actor.

Online RL on the VLA (docs/streamx.md, Stream AC): the VLA stays frozen and a small stream-x actor on
the VLA's features (pooled backbone features + state) adds a correction to its chunk::

    r ~ N(mu(features), sigma(features))          # unclipped, one sample per chunk
    actions = clip(base_actions + scale * r, low, high)

``logp`` is the summed log-density of the *unclipped* ``r`` and ``extras["residual"] = r``: ``r``
is the action the learner's stream AC learns about, on observation ``features``. The critic lives in
the learner only; the actor's weights come back from it by name (``actor.<param>``).

One residual per chunk, broadcast over its ``H`` actions, rather than one per action: the learner's
action stays ``action_dim``-dimensional (the stream-x actor of docs/streamx.md, unchanged) and ``logp`` a
sum of ``action_dim`` terms, not ``H * action_dim``, which keeps the importance weights between
lagging behaviour weights and the learner's current ones usable; and a constant offset shifts the
VLA's trajectory without adding independent noise at the control rate that a robot would feel as
jitter. One ``act`` is one decision, so one transition per chunk.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from policies.base import ActionChunk, Observation, Policy
from policies.streamx.networks import GaussianPolicyNetwork

log = logging.getLogger(__name__)
_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
PREFIX = "actor."


class ResidualWeightsError(ValueError):
    """Shipped actor weights that do not fit the residual actor (names, shapes, values)."""


def gaussian_logp(mu: torch.Tensor, sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Summed log-density of ``x`` under the diagonal Gaussian ``N(mu, sigma^2)``."""
    z = (x - mu) / sigma
    return (-0.5 * z * z - torch.log(sigma) - _HALF_LOG_2PI).sum(-1)


def _per_dim(name: str, value: Any, n: int) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float32)
    try:
        arr = np.broadcast_to(arr, (n,)).copy()
    except ValueError:
        raise ValueError(
            f"ResidualPolicy.{name} must be a number or {n} numbers, got shape {arr.shape}") from None
    if not np.isfinite(arr).all():
        raise ValueError(f"ResidualPolicy.{name} must be finite, got {arr.tolist()}")
    return arr


class ResidualPolicy(Policy):
    """``base`` (any ``Policy`` whose chunks carry ``features``) plus a stream-x residual actor.

    ``feature_dim``, ``low`` and ``high`` default to the base's ``feature_dim``, ``action_low`` and
    ``action_high`` (a ``VLAPolicy`` has them). ``hidden`` and ``sparsity`` must match the
    learner's ``StreamAC`` config so its weights load. ``deterministic`` uses ``r = mu`` (evaluation).
    """

    def __init__(self, base: Policy, feature_dim: int | None = None, scale: float | Sequence[float] = 0.1,
                 low: float | Sequence[float] | None = None, high: float | Sequence[float] | None = None,
                 hidden: Sequence[int] = (128, 128), sparsity: float = 0.9, seed: int = 0,
                 deterministic: bool = False) -> None:
        self.base = base
        self.action_dim = a = int(base.action_dim)
        self.chunk_size = int(base.chunk_size)
        feature_dim = feature_dim if feature_dim is not None else getattr(base, "feature_dim", None)
        if feature_dim is None:
            raise ValueError("ResidualPolicy needs feature_dim: the base policy does not declare one")
        self.feature_dim = int(feature_dim)
        self.scale = _per_dim("scale", scale, a)
        if not (self.scale > 0).all():
            raise ValueError(f"ResidualPolicy.scale must be > 0, got {self.scale.tolist()}")
        low = low if low is not None else getattr(base, "action_low", None)
        high = high if high is not None else getattr(base, "action_high", None)
        if low is None or high is None:
            raise ValueError("ResidualPolicy needs action limits low and high: the base policy has none")
        self.action_low = _per_dim("low", low, a)
        self.action_high = _per_dim("high", high, a)
        if not (self.action_low < self.action_high).all():
            raise ValueError(f"ResidualPolicy needs low < high, got {self.action_low.tolist()}, "
                             f"{self.action_high.tolist()}")
        self.deterministic = bool(deterministic)
        self.actor = GaussianPolicyNetwork(self.feature_dim, a, hidden, sparsity,
                                           torch.Generator().manual_seed(int(seed) + 1))
        self.actor.requires_grad_(False)  # trained in the learner; here weights only arrive by name
        self.generator = torch.Generator().manual_seed(int(seed))
        self._version = 0
        self._lock = threading.Lock()  # weights may arrive on another thread than the one acting
        self.nonfinite = 0  # chunks whose residual was not finite (the base actions were sent)

    @property
    def version(self) -> int:
        return self._version

    def act(self, observation: Observation) -> ActionChunk:
        chunk = self.base.act(observation)
        feats = chunk.features
        if feats is None or feats.shape != (self.feature_dim,):
            raise RuntimeError(f"the base policy's chunk has features of shape "
                               f"{None if feats is None else feats.shape}, expected ({self.feature_dim},)")
        with self._lock, torch.inference_mode():
            version = self._version
            mu, sigma = self.actor(torch.as_tensor(feats, dtype=torch.float32))
            if self.deterministic:
                r = mu
            else:
                r = mu + sigma * torch.randn(mu.shape, generator=self.generator)
            logp = float(gaussian_logp(mu, sigma, r))
        residual = r.numpy().astype(np.float32, copy=True)
        if not (np.isfinite(residual).all() and math.isfinite(logp)):
            # Diverged weights must not reach the robot: send the VLA's own chunk, mark it.
            self.nonfinite += 1
            log.warning("residual actor v%d gave a non-finite residual; sending the base actions", version)
            residual, logp = np.zeros(self.action_dim, np.float32), float("nan")
        actions = np.clip(chunk.actions + self.scale * residual, self.action_low, self.action_high)
        extras = {**chunk.extras, "residual": residual, "base_actions": chunk.actions,
                  "base_version": chunk.version}
        return ActionChunk(actions=actions, period_s=chunk.period_s, version=version, features=feats,
                           logp=logp, observed_at=chunk.observed_at, extras=extras)

    # -- weights by name -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, torch.Tensor]:
        with self._lock:
            return {PREFIX + k: v.detach().clone() for k, v in self.actor.state_dict().items()}

    def load_state_dict(self, state: Mapping[str, Any], version: int | None = None) -> None:
        """Apply the learner's actor weights (``actor.<param>`` keys), all or nothing.

        Every key must be present with its exact shape and finite values; otherwise
        ``ResidualWeightsError`` names the problem and the current weights stay. ``version`` is the
        learner's weights version (default: the current one plus one)."""
        own = self.actor.state_dict()
        expected = {PREFIX + k for k in own}
        missing = sorted(expected - set(state))
        unexpected = sorted(set(state) - expected)
        if missing or unexpected:
            raise ResidualWeightsError(f"actor weights: missing {missing[:5]}, unexpected {unexpected[:5]}")
        staged = {}
        for key in sorted(expected):
            value = state[key]
            t = value.detach() if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
            target = own[key[len(PREFIX):]]
            if tuple(t.shape) != tuple(target.shape):
                raise ResidualWeightsError(f"actor weights: {key!r} has shape {tuple(t.shape)}, "
                                           f"expected {tuple(target.shape)}")
            if not t.is_floating_point() or not torch.isfinite(t).all():
                raise ResidualWeightsError(f"actor weights: {key!r} is not a finite float tensor")
            staged[key[len(PREFIX):]] = t
        with self._lock, torch.no_grad():
            for name, t in staged.items():
                own[name].copy_(t)
            self._version = int(version) if version is not None else self._version + 1
