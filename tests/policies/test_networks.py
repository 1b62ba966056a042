"""Stream-x networks: LayerNorm without affine and LeakyReLU after every hidden layer."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from policies.streamx.networks import GaussianPolicyNetwork, MLPBody


def test_body_is_linear_layernorm_leakyrelu_with_no_learnable_norm():
    body = MLPBody(5, (8, 8))
    x = torch.randn(5)
    h = x
    for layer in body.layers:
        h = layer(h)
        h = (h - h.mean()) / torch.sqrt(h.var(unbiased=False) + 1e-5)
        h = torch.where(h > 0, h, 0.01 * h)
    torch.testing.assert_close(body(x), h)
    assert sum(p.numel() for p in body.parameters()) == (5 * 8 + 8) + (8 * 8 + 8)


def test_batched_and_unbatched_agree_and_sigma_is_softplus():
    net = GaussianPolicyNetwork(6, 2, (16, 16))
    x = torch.randn(4, 6)
    mu_b, sigma_b = net(x)
    mu_0, sigma_0 = net(x[0])
    torch.testing.assert_close(mu_b[0], mu_0)
    torch.testing.assert_close(sigma_b[0], sigma_0)
    torch.testing.assert_close(sigma_0, F.softplus(net.sigma(net.body(x[0]))))
    assert torch.all(sigma_b > 0)
