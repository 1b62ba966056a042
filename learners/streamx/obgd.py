"""Overshooting-bounded gradient descent (docs/streamx.md, pieces 1 and 2).

ObGD keeps one accumulating eligibility trace per parameter tensor and takes one bounded step per
sample. Call ``backward()`` of the *negated* prediction (e.g. ``-V(s)``), then ``step(delta, reset)``.
The step size shrinks so that a single update cannot overshoot the TD target on the sample that
produced it: ``alpha_eff = alpha / max(alpha * kappa * max(|delta|, 1) * ||z||_1, 1)``.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch


def l1_norm(tensors: list[torch.Tensor]) -> float:
    """``sum |x|`` over every tensor: each tensor summed in its own dtype, the totals in float64.

    The reference code's order of rounding (``bench.reference.parity`` measured that the order of
    the step's arithmetic, not only its result, decides how closely two float32 runs track)."""
    return sum(torch.stack([t.abs().sum() for t in tensors]).tolist())


class ObGD:
    """ObGD over a fixed list of parameters, with traces that can be swapped per actor stream."""

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        alpha: float = 1.0,
        gamma: float = 0.99,
        lamda: float = 0.8,
        kappa: float = 2.0,
    ) -> None:
        self.params = [p for p in params if p.requires_grad]
        if not self.params:
            raise ValueError("ObGD got no trainable parameters")
        self.alpha, self.gamma, self.lamda, self.kappa = alpha, gamma, lamda, kappa
        self.traces = [torch.zeros_like(p) for p in self.params]
        self.last_step_size = alpha

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def _grads(self) -> list[torch.Tensor]:
        return [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]

    @torch.no_grad()
    def step(self, delta: float, reset: bool = False) -> float:
        """Fold the current gradients into the traces, take the bounded step, return ``alpha_eff``.

        ``reset`` (the episode ended) zeroes the traces *after* the update.
        """
        torch._foreach_mul_(self.traces, self.gamma * self.lamda)
        torch._foreach_add_(self.traces, self._grads())
        step_size = self._bounded_step(delta, l1_norm(self.traces))
        torch._foreach_add_(self.params, torch._foreach_mul(self.traces, delta), alpha=-step_size)
        if reset:
            self.reset_traces()
        self.last_step_size = step_size
        return step_size

    def _bounded_step(self, delta: float, z_norm: float) -> float:
        bound = self.alpha * self.kappa * max(abs(delta), 1.0) * z_norm
        return self.alpha / max(bound, 1.0)

    def reset_traces(self) -> None:
        for z in self.traces:
            z.zero_()

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {f"trace.{i}": z.clone() for i, z in enumerate(self.traces)}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        traces = [state[f"trace.{i}"] for i in range(len(self.traces))]
        for z, new in zip(self.traces, traces):
            if z.shape != new.shape:
                raise ValueError(f"ObGD trace shape mismatch: {tuple(new.shape)} != {tuple(z.shape)}")
        for z, new in zip(self.traces, traces):
            z.copy_(new)


class AdaptiveObGD(ObGD):
    """ObGD with a per-element second-moment normalization of the update direction.

    ``v <- b2 v + (1 - b2)(delta z)^2``, ``zt = z / sqrt(v / (1 - b2^t) + 1e-8)``; the bound uses
    ``||zt||_1`` and the step is ``p <- p - alpha_eff * delta * zt``.
    """

    def __init__(
        self,
        params: Iterable[torch.nn.Parameter],
        alpha: float = 1.0,
        gamma: float = 0.99,
        lamda: float = 0.8,
        kappa: float = 2.0,
        beta2: float = 0.999,
        eps: float = 1e-8,
    ) -> None:
        super().__init__(params, alpha, gamma, lamda, kappa)
        self.beta2, self.eps = beta2, eps
        self.second_moments = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    @torch.no_grad()
    def step(self, delta: float, reset: bool = False) -> float:
        self.t += 1
        torch._foreach_mul_(self.traces, self.gamma * self.lamda)
        torch._foreach_add_(self.traces, self._grads())
        scaled = torch._foreach_mul(self.traces, delta)
        torch._foreach_mul_(self.second_moments, self.beta2)
        torch._foreach_addcmul_(self.second_moments, scaled, scaled, value=1.0 - self.beta2)
        correction = 1.0 - self.beta2**self.t
        denom = torch._foreach_div(self.second_moments, correction)
        torch._foreach_add_(denom, self.eps)
        torch._foreach_sqrt_(denom)
        step_size = self._bounded_step(delta, l1_norm(torch._foreach_div(self.traces, denom)))
        torch._foreach_addcdiv_(self.params, scaled, denom, value=-step_size)
        if reset:
            self.reset_traces()
        self.last_step_size = step_size
        return step_size

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = super().state_dict()
        state.update({f"second_moment.{i}": v.clone() for i, v in enumerate(self.second_moments)})
        state["t"] = torch.tensor(self.t, dtype=torch.int64)
        return state

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        super().load_state_dict(state)
        for i, v in enumerate(self.second_moments):
            v.copy_(state[f"second_moment.{i}"])
        self.t = int(state["t"])


def make_obgd(params, adaptive: bool = False, **kwargs) -> ObGD:
    """ObGD or its adaptive variant, by flag."""
    return AdaptiveObGD(params, **kwargs) if adaptive else ObGD(params, **kwargs)
