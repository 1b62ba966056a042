"""``WeightPublisher``: ships the acting network's weights to the actors, often but not always.

The version of published weights is the algorithm's update count when they were packed; actors
stamp it on the transitions they send, so the learner can measure staleness.
"""

from __future__ import annotations

import time

from learners.link.weights import WeightsBox
from learners.link.wire import pack_weights
from learners.streamx.base import StreamAlgorithm


class WeightPublisher:
    """Publishes after ``every_updates`` updates or ``every_ms`` milliseconds, whichever comes first
    (and only when there is something new)."""

    def __init__(self, algo: StreamAlgorithm, weights: WeightsBox, every_updates: int, every_ms: float,
                 version: int = 0) -> None:
        self.algo, self.weights = algo, weights
        self.every_updates, self.every_ms = every_updates, every_ms
        self.version = version
        self._last_publish = time.monotonic()
        self._published_at = algo.updates

    def publish(self) -> None:
        """Pack the acting network (keys ``<module>.<parameter>``) and put it in the weights box."""
        name, module = self.algo.acting_module()
        self.version = self.algo.updates
        fields, blob = pack_weights({f"{name}.{k}": v for k, v in module.state_dict().items()},
                                    self.version)
        self.weights.put(fields["version"], fields["sha256"], blob)
        self._last_publish = time.monotonic()
        self._published_at = self.algo.updates

    def maybe_publish(self) -> None:
        """Publish if updates were made since the last publish and either limit is reached."""
        since = self.algo.updates - self._published_at
        waited_ms = (time.monotonic() - self._last_publish) * 1e3
        if since and (since >= self.every_updates or waited_ms >= self.every_ms):
            self.publish()
