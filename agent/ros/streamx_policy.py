"""``StreamXPolicy``: a stream-x actor on the robot's state, acting with the learner's newest weights.

The learner owns learning; this side only acts. Weights arrive in the link's mailbox and are
swapped in between two inferences (on the inference thread, which is the only one that touches
the network). The state is normalized with the learner client's running statistics, frozen for
acting (the client updates them once per tick as it builds transitions). Each chunk holds one
action and its behaviour log-probability, so the learner can weigh it against newer weights.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from policies.base import ActionChunk, Observation, Policy, PolicyInputError

log = logging.getLogger(__name__)


class StreamXPolicy(Policy):
    def __init__(self, algo: Any, module_name: str, module: Any, normalize: Any, action_dim: int,
                 period_s: float, mailbox: Any = None, deterministic: bool = False) -> None:
        """``algo`` is a built stream-x algorithm whose acting network ``module`` (named
        ``module_name`` on the wire) receives the weights; ``normalize(state)`` returns the
        network's input; ``mailbox.take()`` gives ``(version, state_dict, arrived)`` or None."""
        self.algo, self.module_name, self.module = algo, module_name, module
        self.normalize, self.period_s, self.mailbox = normalize, period_s, mailbox
        self.deterministic = deterministic
        self.chunk_size = 1
        self.action_dim = action_dim
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def _take_weights(self) -> None:
        if self.mailbox is None:
            return
        item = self.mailbox.take()
        if item is None:
            return
        version, state, _ = item
        prefix = f"{self.module_name}."
        self.module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        if self._version == 0:
            log.info("stream-x policy: acting with the learner's weights (version %d)", version)
        self._version = int(version)

    def act(self, observation: Observation) -> ActionChunk:
        self._take_weights()
        state = observation.get("state")
        if state is None:
            raise PolicyInputError("the stream-x policy needs a 'state' observation")
        s = self.normalize(np.asarray(state, np.float32))
        result = self.algo.act(s, deterministic=self.deterministic)
        action = np.asarray(result.action, np.float32).reshape(1, -1)
        return ActionChunk(action, self.period_s, version=self._version, logp=float(result.logp),
                           observed_at=float(observation.get("timestamp", 0.0)))

    def state_dict(self) -> dict[str, Any]:
        return {f"{self.module_name}.{k}": v for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        prefix = f"{self.module_name}."
        self.module.load_state_dict({k[len(prefix):]: v for k, v in state.items()})
