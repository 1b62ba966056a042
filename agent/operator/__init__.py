"""Operators: a person (or a script standing in for one) running a robot's episodes and taking
over from the policy.

Robot-independent parts, used by ``agent_node`` (over ROS topics, ``agent/ros/operator_topics.py``
and ``agent/ros/intervention.py``) and by ``rill actor --keyboard`` (a terminal):

- ``config.OperatorConfig``: time limit, home pose, reset speed and timeouts, outcome rewards;
- ``events``: the operator's words (start, stop, success, failure, reset), parsed and refused by name;
- ``episodes.EpisodeController``: the episode state machine the ``ControlLoop`` consults each tick;
- ``intervention``: what an intervention source tells the loop each tick (active, command, lost);
- ``keyboard.KeyboardOperator``: keys to interventions and events (pure, tested on characters);
  ``terminal.TerminalKeys`` feeds it from a raw tty.
"""

from agent.operator.config import OperatorConfig
from agent.operator.episodes import Directive, EpisodeController, EpisodeEnd
from agent.operator.events import EVENTS, OperatorEvent, OperatorEventError
from agent.operator.intervention import Intervention, InterventionSource

__all__ = ["EVENTS", "Directive", "EpisodeController", "EpisodeEnd", "Intervention", "InterventionSource",
           "OperatorConfig", "OperatorEvent", "OperatorEventError"]
