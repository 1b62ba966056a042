"""The configuration of a ``rill run`` job: its ``train:`` section, and what each worker is handed.

``rill run`` resolves everything a worker needs (the learner's endpoint, observation and action
widths, the algorithm and its hyperparameters, the policy and its settings) as one YAML file per
worker group (``workers/learner.yaml``, ``workers/actors.<group>.yaml``), which the scheduler hands
each worker with its start, into the run directory on the worker's own host; the worker
(``rill worker FILE``) reads it back through the same dataclasses, so a value is validated once,
the same way, wherever it is read. The ``link:`` section says how actors reach the learner when the
scheduler puts them on different hosts.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from agent.vla.inputs import ResidualInputs, residual_inputs_problem
from hal.config import build, check_number, check_type
from hal.errors import ConfigError
from learners.link.spool import SPOOL_DURABILITY

PACES = ("real-time", "fast")


@dataclass
class RunTrainConfig:
    """The ``train:`` section of a run config."""

    algo: str = "stream-ac"
    seed: int = 0
    steps_per_actor: int = 100_000
    hyper: dict[str, Any] = field(default_factory=dict)
    # policy streamx: a simulated robot waits while the learner is this far behind; None: never. The
    # VLA actor does not read it (its loop keeps its own pace, real-time or fast)
    max_lag: int | None = 64
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
    # vla-residual: "process" runs the VLA in a process of its own, so that nothing it does in Python
    # delays the loop's clock; "thread": on the loop's inference thread
    inference: str = "thread"
    # vla-residual, pace real-time: the loop's clock thread under SCHED_FIFO at this priority (0: off)
    # and pinned to these CPUs (LoopConfig.rt_priority / cpus)
    rt_priority: int = 0
    cpus: list[int] = field(default_factory=list)
    keep_images: bool = False
    # vla-residual, simulation-only diagnostic: entries of the robot's ``privileged`` observation
    # (a simulator's ground truth, e.g. Meta-World's goal at 36, 37, 38) that the residual heads also
    # see; a run with them measures what perception costs, and its policy cannot run on a real robot
    privileged_inputs: list[int] = field(default_factory=list)
    # vla-residual: false = the residual sees its other inputs (privileged, state, locator) alone,
    # not the VLA's features
    residual_sees_vla: bool = True
    # vla-residual: entries of the robot's ``state`` the residual also sees (e.g. the hand's x, y, z)
    state_inputs: list[int] = field(default_factory=list)
    # vla-residual: a saved MarkerLocator (rill locator) whose answer, the marker's pixel in the
    # camera frame, the residual also sees
    locator: str | None = None
    # a reward model in place of the robot's own reward and success (agent.reward.RewardSignalConfig:
    # model, threshold, consecutive, success_reward, end_episode); None: the robot's own
    reward: Any = None

    def __post_init__(self) -> None:
        from agent.loop.config import MIN_CHUNK
        from agent.loop.realtime import check_settings
        from agent.policy_registry import policy_kind
        from agent.reward.config import RewardSignalConfig
        from learners.streamx import algorithm_config, algorithm_names, algorithm_spec

        if isinstance(self.reward, dict):
            self.reward = build(RewardSignalConfig, self.reward, "train.reward")
        if self.reward is not None and not isinstance(self.reward, RewardSignalConfig):
            raise ConfigError("train.reward must be a mapping (model, threshold, consecutive, "
                              f"success_reward, end_episode), got {self.reward!r}")
        if self.reward is not None and not self.reward.model:
            raise ConfigError("train.reward.model must name a saved reward model (rill reward train)")

        policy_kind(self.policy, "run", "train.policy")
        if self.locator is not None and (not isinstance(self.locator, str) or not self.locator):
            raise ConfigError(f"train.locator must be the path of a saved locator, got {self.locator!r}")
        if self.locator and not (Path(self.locator) / "locator.json").is_file():
            raise ConfigError(f"train.locator: {self.locator} holds no locator.json (not a saved marker "
                              "locator: rill locator writes one)")
        # (indices into the robot's 'privileged' observation, its simulator's ground truth, and its state)
        names = ("train.privileged_inputs", "train.residual_sees_vla", "train.state_inputs", "train.locator")
        problem = residual_inputs_problem(self.privileged_inputs, self.residual_sees_vla, self.state_inputs,
                                          bool(self.locator), names)
        if problem:
            raise ConfigError(problem)
        # ranges the workers would otherwise find, each failing at every restart with the reason
        # only in its log
        for name in ("seed", "max_lag", "episode_steps"):
            check_type("train", name, getattr(self, name), int, optional=name != "seed")
        check_number("train", "seed", self.seed, 0)
        check_number("train", "max_lag", self.max_lag, 0, optional=True)
        check_number("train", "residual_scale", self.residual_scale, 0, strict=True)
        check_number("train", "base_scale", self.base_scale, 0)
        check_number("train", "control_hz", self.control_hz, 0, strict=True, optional=True)
        check_number("train", "episode_steps", self.episode_steps, 1, optional=True)
        for name in ("residual_scale", "base_scale"):
            if not math.isfinite(getattr(self, name)):
                raise ConfigError(f"train.{name} must be finite, got {getattr(self, name)!r}")
        if type(self.steps_per_actor) is not int or self.steps_per_actor <= 0:
            raise ConfigError(
                f"train.steps_per_actor must be a positive integer, got {self.steps_per_actor!r}"
            )
        if self.pace not in PACES:
            raise ConfigError(f"train.pace must be one of {PACES}, got {self.pace!r}")
        if self.inference not in ("thread", "process"):
            raise ConfigError(f"train.inference must be 'thread' or 'process', got {self.inference!r}")
        check_settings(self.rt_priority, self.cpus, self.pace == "real-time", "train",
                       "train.pace: real-time")
        if self.cpus and self.pace != "real-time":  # the VLA actor pins a real-time clock only
            raise ConfigError(f"train.cpus {self.cpus} needs train.pace: real-time (a fast loop has no "
                              "clock thread to pin)")
        if self.chunk_size is not None and type(self.chunk_size) is not int:  # before the VLA's is compared
            raise ConfigError(f"train.chunk_size must be an integer >= {MIN_CHUNK}, got {self.chunk_size!r}")
        if self.vla is not None:
            self._check_vla()
        elif self.chunk_size is None:
            self.chunk_size = 8
        if type(self.chunk_size) is not int or self.chunk_size < MIN_CHUNK:
            raise ConfigError(f"train.chunk_size must be an integer >= {MIN_CHUNK}, got {self.chunk_size!r}: "
                              "a chunk's first action is due while it is being computed")
        algorithm_config(self.algo, self.hyper)
        if not algorithm_spec(self.algo).controls:
            raise ConfigError(f"train.algo {self.algo!r} only predicts values; rill run's actors need one "
                              f"that controls: {', '.join(algorithm_names(control_only=True))}")

    @property
    def residual_inputs(self) -> ResidualInputs:
        """What a ``vla-residual`` policy's heads see besides the time (checked at construction)."""
        return ResidualInputs(self.residual_sees_vla, tuple(self.privileged_inputs), tuple(self.state_inputs),
                              self.locator)

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
class RunLinkConfig:
    """The ``link:`` section. Learner and actors on one host talk over loopback and need none of it.
    Placed on different hosts (Ray), the learner binds its host's address, and the link then needs
    CurveZMQ keys (``learner_secret`` + ``allow_dir`` and ``actor_secret`` + ``learner_public``, as
    ``rill keys`` makes them) or ``insecure: true`` (a trusted network only). Each path is read on
    the host that uses it, nodes sharing no disk: the learner's two on the learner's host, the
    actors' two on each robot's host; ``{name}`` in ``actor_secret`` becomes the actor's name, the
    id its key may speak for (``allow_dir/<name>.key``). ``spool`` is how each actor's spool
    writes: ``fsync`` (every batch synced before it is sent), ``os-buffered``, ``none``, or
    ``behind`` (sent at once, written only if not acknowledged within a second: camera frames
    written once on a host, not twice; a kill -9 may lose what was not yet acknowledged)."""

    port: int = 0  # 0: a port free on the learner's host when the run starts
    spool: str = "fsync"
    insecure: bool = False
    learner_secret: str = ""
    allow_dir: str = ""
    actor_secret: str = ""
    learner_public: str = ""

    def __post_init__(self) -> None:
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise ConfigError(f"link.port must be an integer in 0..65535 (0: any free port), "
                              f"got {self.port!r}")
        if type(self.insecure) is not bool:
            raise ConfigError(f"link.insecure must be true or false, got {self.insecure!r}")
        if self.spool not in SPOOL_DURABILITY:
            raise ConfigError(f"link.spool must be one of {', '.join(SPOOL_DURABILITY)}, got {self.spool!r}")
        for k in ("learner_secret", "allow_dir", "actor_secret", "learner_public"):
            if not isinstance(getattr(self, k), str):
                raise ConfigError(f"link.{k} must be a path (a string), got {getattr(self, k)!r}")
        given = {k: bool(getattr(self, k)) for k in ("learner_secret", "allow_dir", "actor_secret",
                                                     "learner_public")}
        if any(given.values()) and not all(given.values()):
            missing = ", ".join(f"link.{k}" for k, v in given.items() if not v)
            raise ConfigError(f"link: CurveZMQ needs all four key paths; missing {missing}")

    @property
    def curve(self) -> bool:
        return bool(self.learner_secret)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunLinkConfig:
        return build(cls, values, "link")


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
    curve_secret: str = ""  # CurveZMQ: the learner's secret key file and the actors' allow-list
    allow_dir: str = ""
    insecure: bool = False


@dataclass
class ActorWorkerConfig:
    """What each scheduled actor of a group is handed (its name and robot come from the scheduler)."""

    learner: str
    train: RunTrainConfig
    episode_steps: int | None = None
    curve_secret: str = ""  # CurveZMQ: this actor's secret key file ({name}: the actor's name)...
    learner_key: str = ""  # ...and the learner's public key file
    insecure: bool = False
    spool: str = "fsync"  # how its spool writes (link.spool)

    def __post_init__(self) -> None:
        if isinstance(self.train, dict):
            self.train = RunTrainConfig.from_dict(self.train)


WORKER_KINDS: dict[str, type] = {"learner": LearnerWorkerConfig, "actor": ActorWorkerConfig}


def worker_config_text(config: LearnerWorkerConfig | ActorWorkerConfig) -> str:
    """``config`` as a worker file's YAML (``role`` first, then its fields)."""
    role = next(k for k, cls in WORKER_KINDS.items() if isinstance(config, cls))
    return yaml.safe_dump({"role": role, role: asdict(config)}, sort_keys=False)


def write_worker_config(path: Path, config: LearnerWorkerConfig | ActorWorkerConfig) -> Path:
    """Write ``config`` as the worker file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(worker_config_text(config))
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
