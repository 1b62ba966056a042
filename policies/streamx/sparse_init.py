"""Sparse initialization (docs/streamx.md, piece 3).

Each output unit starts connected to only ``1 - sparsity`` of its inputs: weights are drawn from
``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` and then exactly ``ceil(sparsity * fan_in)`` randomly chosen
inputs per output row are zeroed. Survivors are not rescaled; biases start at zero.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sparse_init_(
    weight: torch.Tensor, sparsity: float = 0.9, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sparse-initialize ``weight`` in place and return it.

    ``weight`` is ``[out, in]`` (Linear) or ``[out, in, *kernel]`` (Conv); fan-in is the product of
    all but the first dimension (``C_in * kh * kw`` for a 2-D conv).
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity!r}")
    if weight.dim() < 2:
        raise ValueError(f"sparse_init_ needs a weight of >= 2 dims, got shape {tuple(weight.shape)}")
    fan_out = weight.shape[0]
    fan_in = math.prod(weight.shape[1:])
    n_zeros = math.ceil(sparsity * fan_in)
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        rows = weight.view(fan_out, fan_in)
        rows.uniform_(-bound, bound, generator=generator)
        if n_zeros:
            # A random permutation per row; its first n_zeros entries are the inputs to cut.
            keys = torch.rand(fan_out, fan_in, generator=generator)
            cut = keys.argsort(dim=1)[:, :n_zeros]
            rows.scatter_(1, cut, 0.0)
    return weight


def sparse_init_module_(
    module: nn.Module, sparsity: float = 0.9, generator: torch.Generator | None = None
) -> nn.Module:
    """Sparse-initialize every Linear and Conv weight in ``module``; zero their biases."""
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            sparse_init_(layer.weight, sparsity, generator)
            if layer.bias is not None:
                with torch.no_grad():
                    layer.bias.zero_()
    return module
