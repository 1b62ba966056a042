"""The asynchronous learner: ingest transitions from many actors, learn, publish weights."""

from learners.service.config import LearnerConfig
from learners.service.learner import LearnerService

__all__ = ["LearnerConfig", "LearnerService"]
