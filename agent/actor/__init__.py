"""The actor side of edge-cloud: act with the latest weights, stream transitions to a learner."""

from agent.actor.runner import ActorConfig, ActorRunner
from learners.link.client import ActorLink

__all__ = ["ActorConfig", "ActorLink", "ActorRunner"]
