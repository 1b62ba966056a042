"""Stream Q(lambda) and SARSA(lambda) on the compiled path: same numbers as ``StreamQ``/``StreamSARSA``."""

from __future__ import annotations

import numpy as np

from learners.streamx.base import ActResult, UpdateInfo
from learners.streamx.fast import kernels
from learners.streamx.fast.common import CompiledPath, as_input, begin_step, flipped, trace_decay
from learners.streamx.fast.flat import FlatNetwork
from learners.streamx.stream_q import StreamQ, StreamSARSA
from learners.transition import Transition


class FastStreamQ(CompiledPath, StreamQ):
    """``StreamQ`` with compiled act and update; exploration draws from the same numpy generator."""

    _cut_off_policy = True  # Watkins: a non-greedy action ends the traces

    def __init__(self, obs_dim: int, n_actions: int, config=None, seed: int = 0) -> None:
        super().__init__(obs_dim, n_actions, config=config, seed=seed)
        self._bind()

    def _bind(self) -> None:
        self.q_flat = FlatNetwork(self.q.body, [self.q.head], self.opt)
        self._result = np.zeros(3, np.float64)

    def act(self, obs: np.ndarray, deterministic: bool = False) -> ActResult:
        f = self.q_flat
        greedy = int(kernels.greedy_action(f.params, f.layout, as_input(obs), f.acts))
        if deterministic:
            return ActResult(greedy)
        eps = self.epsilon
        self.act_steps += 1
        if self.rng.random() < eps:
            return ActResult(int(self.rng.integers(self.n_actions)))
        return ActResult(greedy)

    def _next_action(self, t: Transition) -> int:
        return -1  # bootstrap from max_a' Q(s', a')

    def update(self, t: Transition) -> UpdateInfo:
        s, s_next = as_input(t.obs), as_input(t.next_obs)
        done = bool(t.done)
        next_action = -1 if done else self._next_action(t)
        f, cfg = self.q_flat, self.config
        beta2, step_t = begin_step(self.opt)
        kernels.stream_q_update(
            f.params, f.traces, f.second_moments, f.directions, f.layout, f.acts, f.scratch, f.grad,
            s, s_next, int(t.action), next_action, float(t.reward), done, self._cut_off_policy,
            cfg.gamma, trace_decay(self.opt), cfg.alpha, cfg.kappa, beta2, step_t, self._result)
        delta, step, _ = self._result.tolist()
        self.opt.last_step_size = step
        self.updates += 1
        overshoot = False
        if cfg.count_overshoots:
            new_delta, _ = kernels.q_delta(f.params, f.layout, f.acts, s, s_next, int(t.action),
                                           next_action, float(t.reward), cfg.gamma, done)
            overshoot = flipped(new_delta, delta)
            self.overshoots += overshoot
        return UpdateInfo(delta, step, overshoot)


class FastStreamSARSA(FastStreamQ, StreamSARSA):
    """``StreamSARSA`` on the compiled path: target ``Q(s', a')``, traces cut only at episode end."""

    _cut_off_policy = False

    def _next_action(self, t: Transition) -> int:
        if t.next_action is None:
            raise ValueError("StreamSARSA.update needs transition.next_action for a non-final step")
        return int(t.next_action)
