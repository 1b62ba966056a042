"""Stream TD(lambda): state-value prediction for a fixed policy or a signal stream (docs/streamx.md)."""

from __future__ import annotations

import numpy as np
import torch

from learners.streamx.base import ActResult, StreamAlgorithm, UpdateInfo
from learners.streamx.config import StreamTDConfig
from learners.streamx.obgd import make_obgd
from learners.transition import Transition
from policies.streamx.networks import ValueNetwork


class StreamTD(StreamAlgorithm):
    """Learns ``V(s)`` with ``delta = r + gamma V(s') (1 - done) - V(s)`` and loss ``-V(s)``.

    It predicts and does not control: ``act`` is not defined; use ``predict``.
    """

    def __init__(self, obs_dim: int, config: StreamTDConfig | None = None, seed: int = 0) -> None:
        super().__init__(seed)
        self.config = cfg = config or StreamTDConfig()
        init = torch.Generator().manual_seed(int(seed) + 1)
        self.value = ValueNetwork(obs_dim, cfg.hidden, cfg.sparsity, init)
        self.opt = make_obgd(self.value.parameters(), adaptive=cfg.adaptive, alpha=cfg.alpha,
                             gamma=cfg.gamma, lamda=cfg.lamda, kappa=cfg.kappa)

    def modules(self):
        return {"value": self.value}

    def optimizers(self):
        return {"value": self.opt}

    @torch.no_grad()
    def predict(self, obs: np.ndarray) -> float:
        return float(self.value(torch.as_tensor(obs, dtype=torch.float32)))

    def act(self, obs: np.ndarray, deterministic: bool = False) -> ActResult:
        raise NotImplementedError("StreamTD predicts values; it does not choose actions")

    def _td_error(self, s, s_next, t: Transition) -> tuple[torch.Tensor, float]:
        v = self.value(s)
        with torch.no_grad():
            v_next = 0.0 if t.done else float(self.value(s_next))
        return v, t.reward + self.config.gamma * v_next - v.item()

    def update(self, t: Transition) -> UpdateInfo:
        s = torch.as_tensor(t.obs, dtype=torch.float32)
        s_next = torch.as_tensor(t.next_obs, dtype=torch.float32)
        v, delta = self._td_error(s, s_next, t)
        self.opt.zero_grad()
        (-v).backward()
        step = self.opt.step(delta, reset=t.done)
        self.updates += 1
        return UpdateInfo(delta, step, self._count_overshoot(s, s_next, t, delta))
