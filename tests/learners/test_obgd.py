"""ObGD and Adaptive ObGD against hand computation, and the overshooting bound."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from learners.streamx.obgd import AdaptiveObGD, ObGD


def _linear(w: list[float]) -> torch.nn.Parameter:
    return torch.nn.Parameter(torch.tensor(w, dtype=torch.float64))


def _grad_step(opt: ObGD, p: torch.nn.Parameter, x: np.ndarray, delta: float, reset: bool) -> float:
    """Backward of the surrogate loss -V(s) = -w.x, then one ObGD step."""
    opt.zero_grad()
    (-(p * torch.tensor(x)).sum()).backward()
    return opt.step(delta, reset=reset)


def test_two_steps_by_hand_with_bound_and_reset():
    alpha, gamma, lamda, kappa = 0.5, 0.9, 0.5, 2.0
    p = _linear([0.1, -0.2])
    opt = ObGD([p], alpha=alpha, gamma=gamma, lamda=lamda, kappa=kappa)

    # Step 1: grad of -w.x is -x. z = -x = [-0.2, -0.1]; |z|_1 = 0.3; dbar = max(0.5, 1) = 1
    # M = 0.5 * 2 * 1 * 0.3 = 0.3 <= 1 -> alpha_eff = 0.5; w <- w - 0.5 * 0.5 * z
    x1, d1 = np.array([0.2, 0.1]), 0.5
    step1 = _grad_step(opt, p, x1, d1, reset=False)
    assert step1 == pytest.approx(0.5)
    w1 = np.array([0.1, -0.2]) - 0.5 * 0.5 * np.array([-0.2, -0.1])
    np.testing.assert_allclose(p.detach().numpy(), w1, rtol=1e-12)
    np.testing.assert_allclose(opt.traces[0].numpy(), [-0.2, -0.1], rtol=1e-12)

    # Step 2: z = 0.45 * [-0.2, -0.1] + [-3, 1] = [-3.09, 0.955]; |z|_1 = 4.045; dbar = 2
    # M = 0.5 * 2 * 2 * 4.045 = 8.09 > 1 -> alpha_eff = 0.5 / 8.09; reset zeroes z afterwards
    x2, d2 = np.array([3.0, -1.0]), -2.0
    step2 = _grad_step(opt, p, x2, d2, reset=True)
    z2 = np.array([-3.09, 0.955])
    assert step2 == pytest.approx(0.5 / 8.09, rel=1e-12)
    np.testing.assert_allclose(p.detach().numpy(), w1 - (0.5 / 8.09) * d2 * z2, rtol=1e-12)
    assert torch.count_nonzero(opt.traces[0]) == 0


@pytest.mark.parametrize("seed", range(5))
def test_one_step_never_flips_delta_of_a_linear_value_function(seed):
    """With inputs in [-1, 1] and kappa >= 1 + gamma, the bound keeps sign(delta) on the same sample."""
    rng = np.random.default_rng(seed)
    gamma, dim = 0.99, 16
    layer = torch.nn.Linear(dim, 1).double()
    opt = ObGD(layer.parameters(), alpha=1.0, gamma=gamma, lamda=0.8, kappa=2.0)
    flips = 0
    for _ in range(400):
        s, s_next = (torch.tensor(rng.uniform(-1, 1, dim)) for _ in range(2))
        reward = float(rng.normal(0, 5))
        done = rng.random() < 0.05

        def delta_now(s=s, s_next=s_next, reward=reward, done=done) -> float:
            with torch.no_grad():
                return reward + gamma * (0.0 if done else float(layer(s_next))) - float(layer(s))

        delta = delta_now()
        opt.zero_grad()
        (-layer(s)).sum().backward()
        opt.step(delta, reset=done)
        after = delta_now()
        flips += np.sign(after) * np.sign(delta) < 0
    assert flips == 0


def test_adaptive_obgd_matches_numpy_reference():
    rng = np.random.default_rng(0)
    alpha, gamma, lamda, kappa, b2, eps = 1.0, 0.99, 0.8, 2.0, 0.999, 1e-8
    p = _linear(list(rng.normal(size=4)))
    opt = AdaptiveObGD([p], alpha=alpha, gamma=gamma, lamda=lamda, kappa=kappa, beta2=b2, eps=eps)
    w, z, v = p.detach().numpy().copy(), np.zeros(4), np.zeros(4)
    for t in range(1, 30):
        x, delta, reset = rng.normal(size=4), float(rng.normal(0, 3)), t % 10 == 0
        _grad_step(opt, p, x, delta, reset)
        z = gamma * lamda * z - x
        v = b2 * v + (1 - b2) * (delta * z) ** 2
        zt = z / np.sqrt(v / (1 - b2**t) + eps)
        bound = alpha * kappa * max(abs(delta), 1.0) * np.abs(zt).sum()
        w = w - alpha / max(bound, 1.0) * delta * zt
        if reset:
            z = np.zeros(4)
        np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-10, atol=1e-12)


def test_state_dict_round_trip_and_shape_check():
    p = _linear([1.0, 2.0])
    opt = AdaptiveObGD([p])
    _grad_step(opt, p, np.array([0.3, -0.4]), 0.7, reset=False)
    other = AdaptiveObGD([_linear([0.0, 0.0])])
    other.load_state_dict(opt.state_dict())
    assert torch.equal(other.traces[0], opt.traces[0]) and other.t == opt.t == 1
    bad = ObGD([_linear([0.0, 0.0, 0.0])])
    with pytest.raises(ValueError, match="shape mismatch"):
        bad.load_state_dict(opt.state_dict())
