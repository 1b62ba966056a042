"""``WeightPublisher``: ships the acting network's weights to the actors, often but not always.

The version of published weights is the algorithm's update count when they were packed; actors
stamp it on the transitions they send, so the learner can measure staleness.

Only finite weights are shipped: one NaN or infinity in the acting network makes every action an
actor takes with it NaN. Weights holding one are refused (``refused`` counts the refusals,
``nonfinite`` names the entries), logged with the parameter names, and the last good weights stay
in the box, so actors act on with them. The algorithm's weights do not mend themselves (every
update from NaN weights is NaN), so the updater stops learning on it (``Updater.halted``).
"""

from __future__ import annotations

import logging
import time

from learners.link.tensors import decode
from learners.link.weights import WeightsBox
from learners.link.wire import name_some, nonfinite_weights, pack_weights
from learners.streamx.base import StreamAlgorithm

log = logging.getLogger(__name__)


class WeightPublisher:
    """Publishes after ``every_updates`` updates or ``every_ms`` milliseconds, whichever comes first
    (and only when there is something new)."""

    def __init__(self, algo: StreamAlgorithm, weights: WeightsBox, every_updates: int, every_ms: float,
                 version: int = 0, dtype: str = "float32") -> None:
        import torch

        self.algo, self.weights = algo, weights
        # floating-point weights travel in this dtype (None: as they are)
        self.dtype = None if dtype == "float32" else getattr(torch, dtype)
        self.range_fallbacks = 0  # publications sent as float32: a weight past ``dtype``'s range
        self.every_updates, self.every_ms = every_updates, every_ms
        self.version = version  # of the weights published last (the last good ones)
        self._last_publish = time.monotonic()
        self._published_at = algo.updates
        self.refused = 0  # publications refused for non-finite weights
        self.nonfinite: list[str] = []  # the entries that were not finite at the last refusal

    def publish(self) -> bool:
        """Pack the acting network (keys ``<module>.<parameter>``) and put it in the weights box;
        False, and nothing published, when a value is not finite."""
        name, module = self.algo.acting_module()
        # Packing copies the weights into the blob; the bytes checked are the bytes shipped.
        state = {f"{name}.{k}": v for k, v in module.state_dict().items()}
        fields, blob = pack_weights(self._on_the_wire(state), self.algo.updates)
        self._last_publish = time.monotonic()
        self._published_at = self.algo.updates
        bad = nonfinite_weights(decode(blob)[0])
        if bad and self.dtype is not None:
            original = nonfinite_weights(state)
            if not original:  # finite weights past the wire dtype's range: ship these exactly
                self.range_fallbacks += 1
                if self.range_fallbacks == 1 or self.range_fallbacks % 100 == 0:
                    log.warning("learner: weights after update %d exceed %s's range in %s; published as "
                                "float32 (%d times so far)", self.algo.updates, self.dtype, name_some(bad),
                                self.range_fallbacks)
                fields, blob = pack_weights(state, self.algo.updates)
            bad = original
        if bad:
            self.refused += 1
            if bad != self.nonfinite:
                log.error("learner: weights after update %d not published: non-finite values in %s; the "
                          "actors keep weights v%d", self.algo.updates, name_some(bad), self.version)
            self.nonfinite = bad
            return False
        self.nonfinite = []
        self.version = fields["version"]
        self.weights.put(fields["version"], fields["digest"], blob)
        return True

    def _on_the_wire(self, state: dict) -> dict:
        if self.dtype is None:
            return state
        return {k: v.to(self.dtype) if v.is_floating_point() and v.dtype != self.dtype else v
                for k, v in state.items()}

    def maybe_publish(self) -> None:
        """Publish if updates were made since the last publish and either limit is reached."""
        since = self.algo.updates - self._published_at
        waited_ms = (time.monotonic() - self._last_publish) * 1e3
        if since and (since >= self.every_updates or waited_ms >= self.every_ms):
            self.publish()

