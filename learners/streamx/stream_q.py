"""Stream Q(lambda) and Stream SARSA(lambda): action values, one sample at a time (docs/streamx.md)."""

from __future__ import annotations

import numpy as np
import torch

from learners.streamx.base import ActResult, StreamAlgorithm, UpdateInfo
from learners.streamx.config import StreamQConfig, StreamSARSAConfig
from learners.streamx.obgd import make_obgd
from learners.transition import Transition
from policies.streamx.networks import QNetwork


def linear_schedule(start: float, end: float, duration: float, t: int) -> float:
    """Linear decay from ``start`` to ``end`` over ``duration`` steps, then held at ``end``."""
    return max(start + (end - start) * t / duration, end)


def _pcg64_to_tensor(rng: np.random.Generator) -> torch.Tensor:
    """numpy's PCG64 state (two 128-bit integers and a buffered word) as 40 fixed bytes."""
    st = rng.bit_generator.state
    raw = (st["state"]["state"].to_bytes(16, "little") + st["state"]["inc"].to_bytes(16, "little")
           + int(st["has_uint32"]).to_bytes(4, "little") + int(st["uinteger"]).to_bytes(4, "little"))
    return torch.tensor(list(raw), dtype=torch.uint8)


def _pcg64_from_tensor(rng: np.random.Generator, tensor: torch.Tensor) -> None:
    raw = bytes(tensor.tolist())
    rng.bit_generator.state = {
        "bit_generator": "PCG64",
        "state": {"state": int.from_bytes(raw[:16], "little"),
                  "inc": int.from_bytes(raw[16:32], "little")},
        "has_uint32": int.from_bytes(raw[32:36], "little"),
        "uinteger": int.from_bytes(raw[36:40], "little"),
    }


class StreamQ(StreamAlgorithm):
    """Stream Q(lambda) (Watkins): epsilon-greedy behaviour, greedy max target.

    ``delta = r + gamma max_a' Q(s', a') (1 - done) - Q(s, a)``; traces are cut after the update
    when the episode ended or the action taken was non-greedy (exploratory *and* different from the
    argmax, judged with the same weights the action was chosen with).
    """

    def __init__(
        self, obs_dim: int, n_actions: int, config: StreamQConfig | None = None, seed: int = 0
    ) -> None:
        super().__init__(seed)
        self.config = cfg = config or self._default_config()
        self.n_actions = n_actions
        self.rng = np.random.default_rng(seed)
        init = torch.Generator().manual_seed(int(seed) + 1)
        self.q = QNetwork(obs_dim, n_actions, cfg.hidden, cfg.sparsity, init)
        self.opt = make_obgd(self.q.parameters(), adaptive=cfg.adaptive, alpha=cfg.alpha,
                             gamma=cfg.gamma, lamda=cfg.lamda, kappa=cfg.kappa)
        self.act_steps = 0

    def _default_config(self) -> StreamQConfig:
        return StreamQConfig()

    def modules(self):
        return {"q": self.q}

    def optimizers(self):
        return {"q": self.opt}

    @property
    def epsilon(self) -> float:
        c = self.config
        return linear_schedule(c.epsilon_start, c.epsilon_end,
                               c.exploration_fraction * c.total_steps, self.act_steps)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = False) -> ActResult:
        greedy = int(self.q(torch.as_tensor(obs, dtype=torch.float32)).argmax())
        if deterministic:
            return ActResult(greedy)
        eps = self.epsilon
        self.act_steps += 1
        if self.rng.random() < eps:
            return ActResult(int(self.rng.integers(self.n_actions)))
        return ActResult(greedy)

    def _target(self, s_next: torch.Tensor, t: Transition) -> float:
        return float(self.q(s_next).max())

    def _cut_traces(self, q: torch.Tensor, t: Transition) -> bool:
        return t.done or int(t.action) != int(q.argmax())

    def _td_error(self, s, s_next, t: Transition) -> tuple[torch.Tensor, float]:
        q = self.q(s)
        with torch.no_grad():
            bootstrap = 0.0 if t.done else self._target(s_next, t)
        return q, t.reward + self.config.gamma * bootstrap - q[int(t.action)].item()

    def update(self, t: Transition) -> UpdateInfo:
        s = torch.as_tensor(t.obs, dtype=torch.float32)
        s_next = torch.as_tensor(t.next_obs, dtype=torch.float32)
        q, delta = self._td_error(s, s_next, t)
        cut = self._cut_traces(q.detach(), t)
        self.opt.zero_grad()
        (-q[int(t.action)]).backward()
        step = self.opt.step(delta, reset=cut)
        self.updates += 1
        return UpdateInfo(delta, step, self._count_overshoot(s, s_next, t, delta))

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = super().state_dict()
        state["act_steps"] = torch.tensor(self.act_steps, dtype=torch.int64)
        state["np_rng"] = _pcg64_to_tensor(self.rng)
        return state

    def _load_extra_state(self, state: dict[str, torch.Tensor]) -> None:
        self.act_steps = int(state["act_steps"])
        _pcg64_from_tensor(self.rng, state["np_rng"])


class StreamSARSA(StreamQ):
    """Stream SARSA(lambda): on-policy target ``Q(s', a')`` with ``a'`` chosen before the update.

    Traces are cut only when the episode ends.
    """

    needs_next_action = True

    def _default_config(self) -> StreamSARSAConfig:
        return StreamSARSAConfig()

    def _target(self, s_next: torch.Tensor, t: Transition) -> float:
        if t.next_action is None:
            raise ValueError("StreamSARSA.update needs transition.next_action for a non-final step")
        return float(self.q(s_next)[int(t.next_action)])

    def _cut_traces(self, q: torch.Tensor, t: Transition) -> bool:
        return t.done
