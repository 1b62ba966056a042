"""The configuration of a ``rill run`` job: its ``train:`` section, and what each worker is handed.

``rill run`` resolves everything a worker needs (the learner's endpoint, observation and action
widths, the algorithm and its hyperparameters, the policy and its settings) and writes it as one
YAML file per worker group into the run directory (``workers/learner.yaml``,
``workers/actors.<group>.yaml``); the scheduler starts ``rill worker FILE``, which reads it back through
the same dataclasses, so a value is validated once, the same way, wherever it is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hal.config import build
from hal.errors import ConfigError

PACES = ("real-time", "fast")


@dataclass
class RunTrainConfig:
    """The ``train:`` section of a run config."""

    algo: str = "stream-ac"
    seed: int = 0
    steps_per_actor: int = 100_000
    hyper: dict[str, Any] = field(default_factory=dict)
    max_lag: int | None = 64  # simulated robots wait for the learner beyond this; None: never
    episode_steps: int | None = None  # time-feature horizon; default: the simulator's time limit
    policy: str = "streamx"  # a name of agent.policy_registry usable in rill run
    # vla-residual: a saved VLA directory or ``pretrained:NAME`` (one rill ships); None: an untrained
    # tiny VLA built locally (plumbing checks only: its actions are noise)
    vla: str | None = None
    chunk_size: int | None = None  # vla-residual: actions per chunk (default: the VLA's own; tiny: 8)
    residual_scale: float = 1.0
    base_scale: float = 1.0
    control_hz: float | None = None  # vla-residual: loop rate (a simulated robot may run faster)
    # vla-residual: "real-time" keeps the loop's clock (inference on its own thread, as on a robot);
    # "fast" ticks a stepped simulator as fast as it computes, the VLA inside the tick
    pace: str = "real-time"
    keep_images: bool = False
    # a reward model in place of the robot's own reward and success (agent.reward.RewardSignalConfig:
    # model, threshold, consecutive, success_reward, end_episode); None: the robot's own
    reward: Any = None

    def __post_init__(self) -> None:
        from agent.loop.config import MIN_CHUNK
        from agent.policy_registry import policy_kind
        from agent.reward.config import RewardSignalConfig
        from learners.streamx import algorithm_config

        if isinstance(self.reward, dict):
            self.reward = build(RewardSignalConfig, self.reward, "train.reward")
        if self.reward is not None and not isinstance(self.reward, RewardSignalConfig):
            raise ConfigError("train.reward must be a mapping (model, threshold, consecutive, "
                              f"success_reward, end_episode), got {self.reward!r}")
        if self.reward is not None and not self.reward.model:
            raise ConfigError("train.reward.model must name a saved reward model (rill reward train)")

        policy_kind(self.policy, "run", "train.policy")
        if type(self.steps_per_actor) is not int or self.steps_per_actor <= 0:
            raise ConfigError(
                f"train.steps_per_actor must be a positive integer, got {self.steps_per_actor!r}"
            )
        if self.pace not in PACES:
            raise ConfigError(f"train.pace must be one of {PACES}, got {self.pace!r}")
        if self.vla is not None:
            self._check_vla()
        elif self.chunk_size is None:
            self.chunk_size = 8
        if type(self.chunk_size) is not int or self.chunk_size < MIN_CHUNK:
            raise ConfigError(f"train.chunk_size must be an integer >= {MIN_CHUNK}, got {self.chunk_size!r}: "
                              "a chunk's first action is due while it is being computed")
        algorithm_config(self.algo, self.hyper)

    def _check_vla(self) -> None:
        from policies.vla.build import resolve_vla_path
        from policies.vla.checkpoint import VLACheckpointError, read_config

        if not isinstance(self.vla, str) or not self.vla:
            raise ConfigError(f"train.vla must be a VLA directory or pretrained:NAME, got {self.vla!r}")
        try:
            config = read_config(resolve_vla_path(self.vla))
        except VLACheckpointError as e:
            raise ConfigError(f"train.vla {self.vla!r}: {e}") from None
        if self.chunk_size is None:
            self.chunk_size = int(config.chunk_size)
        elif self.chunk_size != config.chunk_size:
            raise ConfigError(f"train.chunk_size {self.chunk_size!r} does not match the chunks of train.vla "
                              f"{self.vla!r} ({config.chunk_size} actions); leave it out to use the VLA's")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunTrainConfig:
        return build(cls, values, "train")


@dataclass
class LearnerWorkerConfig:
    """What the scheduled learner is handed: where to listen and the shapes actors will send."""

    bind: str
    obs_dim: int
    action_dim: int | None = None
    n_actions: int | None = None
    algo: str = "stream-ac"
    seed: int = 0
    hyper: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActorWorkerConfig:
    """What each scheduled actor of a group is handed (its name and robot come from the scheduler)."""

    learner: str
    train: RunTrainConfig
    episode_steps: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = RunTrainConfig.from_dict(self.train)


WORKER_KINDS: dict[str, type] = {"learner": LearnerWorkerConfig, "actor": ActorWorkerConfig}


def write_worker_config(path: Path, config: LearnerWorkerConfig | ActorWorkerConfig) -> Path:
    """Write ``config`` as the worker file at ``path`` (``role`` first, then its fields)."""
    role = next(k for k, cls in WORKER_KINDS.items() if isinstance(config, cls))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump({"role": role, role: asdict(config)}, sort_keys=False))
    tmp.replace(path)
    return path


def read_worker_config(path: Path) -> LearnerWorkerConfig | ActorWorkerConfig:
    """The worker file at ``path``, validated; a bad file is refused with its path and the problem."""
    path = Path(path)
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"worker config {path}: not valid YAML: {e}") from None
    if not isinstance(values, dict) or values.get("role") not in WORKER_KINDS:
        raise ConfigError(f"worker config {path}: expected 'role: learner' or 'role: actor' and its section")
    role = values["role"]
    return build(WORKER_KINDS[role], values.get(role), f"worker config {path} ({role})")
