"""Stream AC(lambda) on the compiled path: same networks, same numbers as ``StreamAC``."""

from __future__ import annotations

import numpy as np
import torch

from learners.streamx.base import ActResult, UpdateInfo
from learners.streamx.config import StreamACConfig
from learners.streamx.fast import kernels
from learners.streamx.fast.common import CompiledPath, as_input, begin_step, flipped, trace_decay
from learners.streamx.fast.flat import FlatNetwork
from learners.streamx.stream_ac import StreamAC
from learners.transition import Transition


class FastStreamAC(CompiledPath, StreamAC):
    """``StreamAC`` whose act and update run as compiled kernels over flat float32 buffers.

    Construction, initialization, ``state_dict`` keys and shapes, and the action noise (drawn
    from the same seeded ``torch.Generator``, in the same order) are those of ``StreamAC``, so
    checkpoints move freely between the two paths.
    """

    def __init__(
        self,
        obs_dim: int,
        action_dim: int | None = None,
        n_actions: int | None = None,
        config: StreamACConfig | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__(obs_dim, action_dim=action_dim, n_actions=n_actions, config=config, seed=seed)
        self._bind()

    def _bind(self) -> None:
        heads = [self.actor.logits] if self.discrete else [self.actor.mu, self.actor.sigma]
        self.actor_flat = FlatNetwork(self.actor.body, heads, self.actor_opt)
        self.critic_flat = FlatNetwork(self.critic.body, [self.critic.head], self.critic_opt)
        width = max(self.actor_flat.scratch.shape[0], self.critic_flat.scratch.shape[0])
        self._scratch = np.zeros(width, np.float32)
        self._grad = np.zeros(max(self.actor_flat.n_out, 1), np.float32)
        self._result = np.zeros(3, np.float64)
        n = self.actor_flat.n_out // (1 if self.discrete else 2)
        self._noise = torch.zeros(n)
        self._noise_np = self._noise.numpy()
        self._logp = np.zeros(n, np.float32)
        self._action = np.zeros(1, np.float32)

    def act(self, obs: np.ndarray, deterministic: bool = False) -> ActResult:
        x = as_input(obs)
        f = self.actor_flat
        if self.discrete:
            greedy = kernels.categorical_log_probs(f.params, f.layout, x, f.acts, self._logp)
            if deterministic:
                a = int(greedy)
            else:
                probs = torch.from_numpy(np.exp(self._logp))
                a = int(torch.multinomial(probs, 1, generator=self.generator))
            return ActResult(a, float(self._logp[a]))
        if not deterministic:
            self._noise.normal_(generator=self.generator)  # same draws as torch.randn(shape)
        action = np.empty(self._noise_np.shape[0], np.float32)
        logp = kernels.gaussian_act(f.params, f.layout, x, f.acts, self._noise_np, deterministic, action)
        return ActResult(action, float(logp))

    def log_prob(self, obs: np.ndarray, action) -> float:
        f = self.actor_flat
        if self.discrete:
            kernels.categorical_log_probs(f.params, f.layout, as_input(obs), f.acts, self._logp)
            return float(self._logp[int(action)])
        return float(kernels.gaussian_log_prob(f.params, f.layout, as_input(obs), f.acts, as_input(action)))

    def td_error(self, t: Transition) -> float:
        c = self.critic_flat
        _, delta = kernels.value_delta(c.params, c.layout, c.acts, as_input(t.obs), as_input(t.next_obs),
                                       float(t.reward), self.config.gamma, bool(t.done))
        return float(delta)

    def update(self, t: Transition, policy_weight: float = 1.0) -> UpdateInfo:
        s, s_next = as_input(t.obs), as_input(t.next_obs)
        if self.discrete:
            self._action[0] = int(t.action)
            action = self._action
        else:
            action = as_input(t.action)
        cfg, a, c = self.config, self.actor_flat, self.critic_flat
        beta2, step_t = begin_step(self.actor_opt)
        begin_step(self.critic_opt)
        done = bool(t.done)
        kernels.stream_ac_update(
            a.params, a.traces, a.second_moments, a.directions, a.layout, a.acts,
            c.params, c.traces, c.second_moments, c.directions, c.layout, c.acts,
            self._scratch, self._grad, s, s_next, action, float(t.reward), done, cfg.gamma,
            trace_decay(self.actor_opt), cfg.alpha, cfg.kappa_policy, cfg.kappa_value,
            cfg.entropy_coeff, self.discrete, beta2, step_t, self._result, float(policy_weight))
        delta, self.actor_opt.last_step_size, step = self._result.tolist()
        self.critic_opt.last_step_size = step
        self.updates += 1
        overshoot = False
        if cfg.count_overshoots:
            _, new_delta = kernels.value_delta(c.params, c.layout, c.acts, s, s_next, float(t.reward),
                                               cfg.gamma, done)
            overshoot = flipped(new_delta, delta)
            self.overshoots += overshoot
        return UpdateInfo(delta, step, overshoot)
