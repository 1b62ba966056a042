"""``OperatorTopics``: an ``EpisodeController`` spoken to over ROS topics.

Events arrive on ``operator.event_topic`` as ``std_msgs/String`` JSON, ``{"episode": 3, "event":
"success"}`` (events: start, stop, success, failure, reset); a message that is not such an event
is refused, counted and logged with what is wrong, and one naming an episode other than the one
it may act on is refused by the controller with both numbers. The episode state (``episode``,
``next``, ``phase``, the last ``outcome`` and ``ended_by``, ``takeovers``, ``intervened_steps``,
refusals) goes out on ``operator.state_topic`` as JSON, at every change and twice a second, so an
operator (or the scripted one) can address the right episode.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import Any

from agent.operator.config import OperatorConfig
from agent.operator.episodes import EpisodeController
from agent.operator.events import OperatorEvent, OperatorEventError

log = logging.getLogger(__name__)


class OperatorTopics:
    def __init__(self, node: Any, config: OperatorConfig, controller: EpisodeController) -> None:
        from std_msgs.msg import String

        from agent.ros.qos import reliable_qos

        self.controller = controller
        self.malformed: collections.Counter[str] = collections.Counter()
        self.last_malformed = ""
        self._String = String
        self._published = -1
        self.pub = node.create_publisher(String, config.state_topic, reliable_qos())
        node.create_subscription(String, config.event_topic, self._on_event, reliable_qos())
        self._timer = node.create_timer(0.05, self._tick)
        self._since = 0

    def _on_event(self, msg: Any) -> None:
        try:
            event = OperatorEvent.parse(msg.data, source="topic")
        except OperatorEventError as e:
            self.malformed[str(e).split(":")[0][:40]] += 1
            self.last_malformed = str(e)
            log.warning("operator message refused: %s", e)
            return
        self.controller.submit(event)

    def _tick(self) -> None:
        """Publish on change, and every 0.5 s regardless (a late joiner learns the state)."""
        self._since += 1
        if self.controller.changes != self._published or self._since >= 10:
            self.publish()

    def publish(self) -> None:
        self._published, self._since = self.controller.changes, 0
        state = dict(self.controller.state(), malformed=sum(self.malformed.values()))
        self.pub.publish(self._String(data=json.dumps(state)))

    def close(self) -> None:
        self._timer.cancel()
