"""The actor side of edge-cloud: act with the latest weights, stream transitions to a learner."""

from agent.actor.link import ActorLink
from agent.actor.runner import ActorConfig, ActorRunner

__all__ = ["ActorConfig", "ActorLink", "ActorRunner"]
