"""Sparse initialization: exact zero counts per row, bounds, zero biases, conv fan-in."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from policies.streamx.networks import GaussianPolicyNetwork, QNetwork, ValueNetwork
from policies.streamx.sparse_init import sparse_init_, sparse_init_module_


@pytest.mark.parametrize(("fan_in", "fan_out"), [(11, 128), (128, 128), (17, 3), (4, 32), (1000, 7)])
def test_linear_rows_have_exactly_ceil_sparsity_zeros_and_bounded_values(fan_in, fan_out):
    layer = nn.Linear(fan_in, fan_out)
    sparse_init_module_(layer, 0.9, torch.Generator().manual_seed(0))
    w = layer.weight.detach()
    zeros_per_row = (w == 0).sum(dim=1)
    assert torch.all(zeros_per_row == math.ceil(0.9 * fan_in))
    assert torch.all(w.abs() <= 1 / math.sqrt(fan_in))
    assert torch.all(layer.bias == 0)
    # Rows are cut independently: with enough inputs, two rows almost never share a zero pattern.
    if fan_in >= 100:
        assert not torch.equal(w[0] == 0, w[1] == 0)


def test_conv_fan_in_is_channels_times_kernel():
    conv = nn.Conv2d(3, 8, kernel_size=(3, 5))
    sparse_init_module_(conv, 0.9)
    rows = conv.weight.detach().reshape(8, -1)
    fan_in = 3 * 3 * 5
    assert torch.all((rows == 0).sum(dim=1) == math.ceil(0.9 * fan_in))
    assert torch.all(rows.abs() <= 1 / math.sqrt(fan_in))
    assert torch.all(conv.bias == 0)


def test_survivors_are_uniform_not_rescaled():
    w = sparse_init_(torch.empty(64, 1000), 0.5, torch.Generator().manual_seed(1))
    survivors = w[w != 0]
    bound = 1 / math.sqrt(1000)
    assert survivors.abs().max() <= bound
    assert survivors.abs().mean() == pytest.approx(bound / 2, rel=0.05)  # mean of |U(-b, b)| is b/2


def test_every_linear_in_stream_x_networks_is_sparse_heads_included():
    nets = (ValueNetwork(20, (32, 32)), QNetwork(20, 4, (32, 32)), GaussianPolicyNetwork(20, 3, (32, 32)))
    for net in nets:
        for layer in net.modules():
            if isinstance(layer, nn.Linear):
                assert torch.all((layer.weight == 0).sum(1) == math.ceil(0.9 * layer.in_features))
                assert torch.all(layer.bias == 0)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="sparsity"):
        sparse_init_(torch.empty(3, 3), 1.0)
    with pytest.raises(ValueError, match="dims"):
        sparse_init_(torch.empty(3), 0.9)
