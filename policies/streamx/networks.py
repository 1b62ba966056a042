"""Stream-x networks (docs/streamx.md, piece 4): ``Linear -> LayerNorm(no affine) -> LeakyReLU(0.01)``.

Every hidden layer is normalized without learnable affine parameters; all Linear weights (heads
included) are sparse-initialized. The networks work unbatched (``[obs_dim]``, as stream-x runs
them) and batched (``[B, obs_dim]``): LayerNorm acts on the last dimension.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from policies.streamx.sparse_init import sparse_init_module_

LEAKY_SLOPE = 0.01
LAYER_NORM_EPS = 1e-5


class MLPBody(nn.Module):
    """The shared hidden stack: ``in -> h1 -> h2 ...``, each ``Linear -> LayerNorm -> LeakyReLU``."""

    def __init__(self, in_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        if in_dim <= 0 or not hidden or any(h <= 0 for h in hidden):
            raise ValueError(f"MLPBody needs in_dim > 0 and positive hidden sizes, got {in_dim}, {hidden}")
        dims = [in_dim, *hidden]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(dims))
        self.out_dim = dims[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x = layer(x)
            x = F.layer_norm(x, x.shape[-1:], eps=LAYER_NORM_EPS)
            x = F.leaky_relu(x, LEAKY_SLOPE)
        return x


class ValueNetwork(nn.Module):
    """State-value function ``V(s)``: body plus one linear output."""

    def __init__(
        self, obs_dim: int, hidden: Sequence[int], sparsity: float = 0.9, generator=None
    ) -> None:
        super().__init__()
        self.body = MLPBody(obs_dim, hidden)
        self.head = nn.Linear(self.body.out_dim, 1)
        sparse_init_module_(self, sparsity, generator)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(obs)).squeeze(-1)


class QNetwork(nn.Module):
    """Action-value function ``Q(s, .)`` over a discrete action set."""

    def __init__(
        self, obs_dim: int, n_actions: int, hidden: Sequence[int], sparsity: float = 0.9,
        generator=None,
    ) -> None:
        super().__init__()
        self.body = MLPBody(obs_dim, hidden)
        self.head = nn.Linear(self.body.out_dim, n_actions)
        sparse_init_module_(self, sparsity, generator)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(obs))


class GaussianPolicyNetwork(nn.Module):
    """Diagonal Gaussian policy: ``mu`` (linear) and ``sigma = softplus(linear)``.

    No tanh squashing and no minimum sigma (docs/streamx.md): the environment clips the action.
    """

    def __init__(
        self, obs_dim: int, action_dim: int, hidden: Sequence[int], sparsity: float = 0.9,
        generator=None,
    ) -> None:
        super().__init__()
        self.body = MLPBody(obs_dim, hidden)
        self.mu = nn.Linear(self.body.out_dim, action_dim)
        self.sigma = nn.Linear(self.body.out_dim, action_dim)
        sparse_init_module_(self, sparsity, generator)

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(obs)
        return self.mu(h), F.softplus(self.sigma(h))


class CategoricalPolicyNetwork(nn.Module):
    """Softmax policy over a discrete action set; returns logits."""

    def __init__(
        self, obs_dim: int, n_actions: int, hidden: Sequence[int], sparsity: float = 0.9,
        generator=None,
    ) -> None:
        super().__init__()
        self.body = MLPBody(obs_dim, hidden)
        self.logits = nn.Linear(self.body.out_dim, n_actions)
        sparse_init_module_(self, sparsity, generator)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits(self.body(obs))
