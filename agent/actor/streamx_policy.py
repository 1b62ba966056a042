"""``StreamXPolicy``: a stream-x actor on a robot's state, acting with the learner's newest weights.

The learner owns learning; this side only acts. The learner publishes the algorithm's acting
network (``actor.*`` for Stream AC, ``q.*`` for Q/SARSA); ``load_state_dict`` is the one place those
names are read back, for every actor kind. On a robot driven by the control loop, ``take_weights``
(the actor's ``LearnerFeed.take_weights``) swaps newly arrived weights in at the start of each
``act``, on the thread that acts (the control thread: a per-step policy infers inside the tick),
the only one that touches the network. The state is normalized with the
learner client's running statistics, frozen for acting. Each chunk holds one action and its
behaviour log-probability, so the learner can weigh it against newer weights.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from policies.base import ActionChunk, Observation, Policy, PolicyInputError

log = logging.getLogger(__name__)


class StreamXPolicy(Policy):
    def __init__(self, algo: Any, normalize: Callable[[np.ndarray], np.ndarray] | None = None,
                 action_dim: int | None = None, period_s: float = 0.02,
                 take_weights: Callable[[], bool] | None = None, deterministic: bool = False) -> None:
        """``algo`` is a built stream-x algorithm whose acting network receives the weights;
        ``normalize(state)`` returns the network's input; ``take_weights()``, called before each
        inference, loads newly arrived weights (through ``load_state_dict``)."""
        self.algo = algo
        self.module_name, self.module = algo.acting_module()
        self.normalize, self.period_s, self.take_weights = normalize, period_s, take_weights
        self.deterministic = deterministic
        self.chunk_size = 1
        self.action_dim = action_dim
        self._version = 0

    @property
    def version(self) -> int:
        return self._version

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """The published weights' names and shapes (what the link accepts from the learner)."""
        return {f"{self.module_name}.{k}": tuple(v.shape) for k, v in self.module.state_dict().items()}

    def act(self, observation: Observation) -> ActionChunk:
        if self.take_weights is not None:
            self.take_weights()
        state = observation.get("state")
        if state is None:
            raise PolicyInputError("the stream-x policy needs a 'state' observation")
        s = np.asarray(state, np.float32)
        if self.normalize is not None:
            s = self.normalize(s)
        result = self.algo.act(s, deterministic=self.deterministic)
        action = np.asarray(result.action, np.float32).reshape(1, -1)
        return ActionChunk(action, self.period_s, version=self._version, logp=float(result.logp),
                           observed_at=float(observation.get("timestamp", 0.0)))

    def state_dict(self) -> dict[str, Any]:
        return {f"{self.module_name}.{k}": v for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, Any], version: int | None = None) -> None:
        """Weights by their published names (``actor.*`` / ``q.*``); other names are not ours."""
        prefix = f"{self.module_name}."
        self.module.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)})
        if version is not None:
            if self._version == 0:
                log.info("stream-x policy: acting with the learner's weights (version %d)", version)
            self._version = int(version)
