"""Stream AC(lambda): actor-critic, one sample at a time (docs/streamx.md)."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from learners.streamx.base import ActResult, StreamAlgorithm, UpdateInfo, sign
from learners.streamx.config import StreamACConfig
from learners.streamx.obgd import make_obgd
from learners.transition import Transition
from policies.streamx.networks import (
    CategoricalPolicyNetwork,
    GaussianPolicyNetwork,
    ValueNetwork,
)

_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def gaussian_logp_entropy(
    mu: torch.Tensor, sigma: torch.Tensor, action: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed log-density of ``action`` and summed entropy of a diagonal Gaussian."""
    log_sigma = torch.log(sigma)
    z = (action - mu) / sigma
    logp = (-0.5 * z * z - log_sigma - _HALF_LOG_2PI).sum(-1)
    entropy = (0.5 + _HALF_LOG_2PI + log_sigma).sum(-1)
    return logp, entropy


class StreamAC(StreamAlgorithm):
    """Stream AC(lambda) with a diagonal Gaussian (continuous) or softmax (discrete) actor.

    Per update, with the current weights: ``delta = r + gamma V(s') (1 - done) - V(s)``; critic
    loss ``-V(s)``; actor loss ``-log pi(a|s) - c sign(delta) H(pi(.|s))``; ObGD on the actor, then
    on the critic, both with the same delta. Continuous actions are sampled unclipped: the
    environment (or robot) clips, and ``log pi`` is of the unclipped sample.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int | None = None,
        n_actions: int | None = None,
        config: StreamACConfig | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(seed)
        if (action_dim is None) == (n_actions is None):
            raise ValueError("StreamAC needs exactly one of action_dim (continuous) or n_actions")
        self.config = cfg = config or StreamACConfig()
        self.discrete = n_actions is not None
        init = torch.Generator().manual_seed(int(seed) + 1)
        if self.discrete:
            self.actor = CategoricalPolicyNetwork(obs_dim, n_actions, cfg.hidden, cfg.sparsity, init)
        else:
            self.actor = GaussianPolicyNetwork(obs_dim, action_dim, cfg.hidden, cfg.sparsity, init)
        self.critic = ValueNetwork(obs_dim, cfg.hidden, cfg.sparsity, init)
        common = dict(adaptive=cfg.adaptive, alpha=cfg.alpha, gamma=cfg.gamma, lamda=cfg.lamda)
        self.actor_opt = make_obgd(self.actor.parameters(), kappa=cfg.kappa_policy, **common)
        self.critic_opt = make_obgd(self.critic.parameters(), kappa=cfg.kappa_value, **common)

    def modules(self):
        return {"actor": self.actor, "critic": self.critic}

    def optimizers(self):
        return {"actor": self.actor_opt, "critic": self.critic_opt}

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> ActResult:
        s = torch.as_tensor(obs, dtype=torch.float32)
        if self.discrete:
            logits = self.actor(s)
            logp_all = F.log_softmax(logits, -1)
            if deterministic:
                a = int(logits.argmax())
            else:
                a = int(torch.multinomial(logp_all.exp(), 1, generator=self.generator))
            return ActResult(a, float(logp_all[a]))
        mu, sigma = self.actor(s)
        if deterministic:
            a = mu
        else:
            a = mu + sigma * torch.randn(mu.shape, generator=self.generator)
        logp, _ = gaussian_logp_entropy(mu, sigma, a)
        return ActResult(a.numpy(), float(logp))

    def _actor_logp_entropy(self, s: torch.Tensor, a) -> tuple[torch.Tensor, torch.Tensor]:
        if self.discrete:
            logp_all = F.log_softmax(self.actor(s), -1)
            entropy = -(logp_all.exp() * logp_all).sum(-1)
            return logp_all[int(a)], entropy
        mu, sigma = self.actor(s)
        return gaussian_logp_entropy(mu, sigma, torch.as_tensor(a, dtype=torch.float32))

    def _td_error(self, s: torch.Tensor, s_next: torch.Tensor, t: Transition) -> tuple:
        v = self.critic(s)
        with torch.no_grad():
            v_next = float(self.critic(s_next))
        target = t.reward + self.config.gamma * v_next * (0.0 if t.done else 1.0)
        return v, target - v.item()

    @torch.no_grad()
    def log_prob(self, obs: np.ndarray, action) -> float:
        """``log pi(action | obs)`` under the current weights (for importance weights)."""
        logp, _ = self._actor_logp_entropy(torch.as_tensor(obs, dtype=torch.float32), action)
        return float(logp)

    @torch.no_grad()
    def td_error(self, t: Transition) -> float:
        """``delta`` of ``t`` under the current critic, without learning (the learner's imitation
        rule reads its sign before the update)."""
        s = torch.as_tensor(t.obs, dtype=torch.float32)
        s_next = torch.as_tensor(t.next_obs, dtype=torch.float32)
        return float(self._td_error(s, s_next, t)[1])

    def update(self, t: Transition, policy_weight: float = 1.0) -> UpdateInfo:
        """One stream AC(lambda) step. ``policy_weight`` scales the policy-gradient term (a
        truncated importance weight when the action came from older weights); 1 on-policy."""
        s = torch.as_tensor(t.obs, dtype=torch.float32)
        s_next = torch.as_tensor(t.next_obs, dtype=torch.float32)
        v, delta = self._td_error(s, s_next, t)
        self.critic_opt.zero_grad()
        (-v).backward()
        logp, entropy = self._actor_logp_entropy(s, t.action)
        self.actor_opt.zero_grad()
        (-policy_weight * logp - self.config.entropy_coeff * sign(delta) * entropy).backward()
        self.actor_opt.step(delta, reset=t.done)
        step = self.critic_opt.step(delta, reset=t.done)
        self.updates += 1
        return UpdateInfo(delta, step, self._count_overshoot(s, s_next, t, delta))
