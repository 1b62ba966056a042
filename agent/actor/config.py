"""How an actor reaches its learner: the one configuration every actor kind's link is built from."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path

from hal.config import check_number
from hal.errors import ConfigError
from learners.cache.batch import COMPRESS
from learners.link.security import CurveClient
from learners.link.spool import SPOOL_DURABILITY as DURABILITY
from learners.link.wire import check_actor_id


@dataclass
class LearnerClientConfig:
    """The link to a learner. ``endpoint: ""`` runs without one (no transitions are kept)."""

    endpoint: str = ""
    actor_id: str = ""  # "": ros-<hostname>
    run_dir: str = "runs/ros-agent"
    algo: str = "stream-ac"
    gamma: float = 0.99
    insecure: bool = False
    curve_secret: str = ""
    learner_key: str = ""
    durability: str = "fsync"
    # transitions carry the camera frames and the instruction too (the learner's cache keeps them,
    # for training a reward model on operator-labelled episodes)
    keep_images: bool = False
    # "zstd": camera frames travel and are stored compressed (several times smaller when they
    # compress; frames that do not are sent as they are); "none": always raw
    compress: str = "zstd"

    def __post_init__(self) -> None:
        if not self.actor_id:
            self.actor_id = "ros-" + socket.gethostname().split(".")[0]
        check_actor_id(self.actor_id, "learner.actor_id")
        if self.durability not in DURABILITY:
            raise ConfigError(f"learner.durability must be one of {DURABILITY}, got {self.durability!r}")
        if self.compress not in (*COMPRESS, "none"):
            raise ConfigError(f"learner.compress must be one of {(*COMPRESS, 'none')}, got {self.compress!r}")
        check_number("learner", "gamma", self.gamma, 0)
        if bool(self.curve_secret) != bool(self.learner_key):
            raise ConfigError("learner.curve_secret and learner.learner_key go together (CurveZMQ)")

    def curve_client(self) -> CurveClient | None:
        """The CurveZMQ client keys, when configured (else plain TCP, loopback only by default)."""
        if not self.curve_secret:
            return None
        return CurveClient(Path(self.curve_secret), Path(self.learner_key))
