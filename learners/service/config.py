"""``LearnerConfig``: every setting of the learner service, validated where it is built."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hal.errors import ConfigError
from learners.cache.batch import MAX_BATCH_ROWS
from learners.cache.config import DURABILITY_MODES
from learners.link.security import CurveServer, check_endpoint, check_plaintext_endpoint
from learners.streamx.registry import algorithm_names

WEIGHTS_DTYPES = ("float32", "float16", "bfloat16")


@dataclass
class LearnerConfig:
    """How a learner listens, learns, publishes and persists.

    ``obs_dim`` and ``action_dim`` / ``n_actions`` fix the shapes every actor must send.
    Weights are published every ``publish_every_updates`` updates or ``publish_every_ms``,
    whichever comes first, in ``weights_dtype``; a checkpoint is written every
    ``checkpoint_every_updates`` updates and when the learner stops. ``importance_clip``
    truncates the importance weight ``min(clip, pi/mu)`` of the policy update (``None``: off).
    """

    bind: str
    run_dir: Path
    obs_dim: int
    action_dim: int | None = None
    n_actions: int | None = None
    algo: str = "stream-ac"
    hyper: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    publish_every_updates: int = 100
    publish_every_ms: float = 500.0
    # The dtype floating-point weights travel in: "float32" ships them exactly; "float16" or
    # "bfloat16" halves the bytes (and the time to publish, send, check and load them), and the
    # actors act with the rounded weights (their behaviour log-probabilities are of those).
    weights_dtype: str = "float32"
    checkpoint_every_updates: int = 20_000
    importance_clip: float | None = 1.0
    session_timeout_s: float = 30.0
    insecure: bool = False
    curve: CurveServer | None = None
    durability: str = "fsync"
    max_batch_records: int = 4096
    # The largest |value| accepted in an observation, action or reward. Stream-x inputs are
    # normalized (a few units; about sqrt(steps) at the very worst), so a value past this is a
    # corrupt or broken stream, and one such value would wreck the weights every actor shares.
    max_abs_value: float = 1e6
    fast: bool = True
    # Replay cache retention (None: keep everything): the oldest segments past this size or age
    # are deleted, checked every ``retention_every_s``, never one the updater has not consumed and
    # a checkpoint covered (a restarted learner resumes from its checkpoint's cache position).
    retention_bytes: int | None = None
    retention_age_s: float | None = None
    retention_every_s: float = 60.0
    cache_segment_bytes: int = 64 * 1024 * 1024  # retention deletes whole segments

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        check_endpoint(self.bind, "learner", bind=True)  # refuse before anything is created on disk
        if self.curve is None:
            check_plaintext_endpoint(self.bind, self.insecure, "learner")
        if (self.action_dim is None) == (self.n_actions is None):
            raise ConfigError("learner: exactly one of action_dim (continuous) or n_actions (discrete)")
        checks = [("obs_dim", self.obs_dim, 1), ("publish_every_updates", self.publish_every_updates, 1),
                  ("checkpoint_every_updates", self.checkpoint_every_updates, 1),
                  ("max_batch_records", self.max_batch_records, MAX_BATCH_ROWS)]  # what actors send
        for name, value, low in checks:
            if type(value) is not int or value < low:
                raise ConfigError(f"learner.{name} must be an integer >= {low}, got {value!r}")
        if not self.publish_every_ms > 0:
            raise ConfigError(f"learner.publish_every_ms must be > 0, got {self.publish_every_ms!r}")
        if self.durability not in DURABILITY_MODES:
            raise ConfigError(f"learner.durability must be one of {', '.join(DURABILITY_MODES)}, got "
                              f"{self.durability!r}")
        if self.weights_dtype not in WEIGHTS_DTYPES:
            raise ConfigError(f"learner.weights_dtype must be one of {', '.join(WEIGHTS_DTYPES)}, "
                              f"got {self.weights_dtype!r}")
        if self.importance_clip is not None and not self.importance_clip > 0:
            raise ConfigError(f"learner.importance_clip must be > 0 or None, got {self.importance_clip!r}")
        keep = self.retention_bytes
        if keep is not None and (type(keep) is not int or keep < 0):
            raise ConfigError(f"learner.retention_bytes must be an integer >= 0 or None, got {keep!r}")
        age = 1.0 if self.retention_age_s is None else self.retention_age_s  # None: no age limit
        for name, value in (("retention_age_s", age), ("retention_every_s", self.retention_every_s),
                            ("max_abs_value", self.max_abs_value)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ConfigError(f"learner.{name} must be a number > 0, got {getattr(self, name)!r}")
        names = algorithm_names(control_only=True)  # a learner ships weights that actors act with
        if self.algo not in names:
            choices = f"{', '.join(names[:-1])} or {names[-1]}" if len(names) > 1 else names[0]
            raise ConfigError(f"learner.algo must be {choices}, got {self.algo!r}")

    @property
    def spec(self) -> dict[str, Any]:
        """What an actor's hello must declare to be accepted."""
        return {"obs_dim": self.obs_dim, "action_dim": self.action_dim, "n_actions": self.n_actions,
                "algo": self.algo}
