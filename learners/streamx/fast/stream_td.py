"""Stream TD(lambda) on the compiled path: same numbers as ``StreamTD``."""

from __future__ import annotations

import numpy as np

from learners.streamx.base import UpdateInfo
from learners.streamx.fast import kernels
from learners.streamx.fast.common import CompiledPath, as_input, begin_step, flipped, trace_decay
from learners.streamx.fast.flat import FlatNetwork
from learners.streamx.stream_td import StreamTD
from learners.transition import Transition


class FastStreamTD(CompiledPath, StreamTD):
    """``StreamTD`` with compiled predict and update."""

    def __init__(self, obs_dim: int, config=None, seed: int = 0) -> None:
        super().__init__(obs_dim, config=config, seed=seed)
        self._bind()

    def _bind(self) -> None:
        self.value_flat = FlatNetwork(self.value.body, [self.value.head], self.opt)
        self._result = np.zeros(2, np.float64)

    def predict(self, obs: np.ndarray) -> float:
        f = self.value_flat
        return float(kernels.mlp_forward(f.params, f.layout, as_input(obs), f.acts)[0])

    def update(self, t: Transition) -> UpdateInfo:
        s, s_next = as_input(t.obs), as_input(t.next_obs)
        done = bool(t.done)
        f, cfg = self.value_flat, self.config
        beta2, step_t = begin_step(self.opt)
        kernels.stream_td_update(
            f.params, f.traces, f.second_moments, f.directions, f.layout, f.acts, f.scratch, f.grad,
            s, s_next, float(t.reward), done, cfg.gamma, trace_decay(self.opt), cfg.alpha, cfg.kappa,
            beta2, step_t, self._result)
        delta, step = self._result.tolist()
        self.opt.last_step_size = step
        self.updates += 1
        overshoot = False
        if cfg.count_overshoots:
            _, new_delta = kernels.value_delta(f.params, f.layout, f.acts, s, s_next, float(t.reward),
                                               cfg.gamma, done)
            overshoot = flipped(new_delta, delta)
            self.overshoots += overshoot
        return UpdateInfo(delta, step, overshoot)
