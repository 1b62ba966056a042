"""The configuration of a training run and the run directory that holds it."""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from hal.config import construct, reject_unknown
from hal.errors import ConfigError
from learners.checkpoint import PREFIX
from learners.streamx import algorithm_config, algorithm_spec

CONFIG_FILE = "config.yaml"
# Fields that make a run what it is: resuming with any of these changed is a different run.
IDENTITY_FIELDS = ("env", "algo", "seed", "hyper", "time_feature")
# Both compute the same algorithm with interchangeable checkpoints, so it is not an identity field.
UPDATE_PATHS = ("fast", "autograd")


@dataclass
class TrainConfig:
    """``rill train``: one stream-x learner on one gymnasium environment."""

    env: str = "Hopper-v5"
    algo: str = "stream-ac"
    steps: int = 1_000_000
    seed: int = 0
    run: str = "runs/train"
    checkpoint_every: int = 100_000
    keep_checkpoints: int = 3
    time_feature: bool | None = None  # None: on for continuous control, off for discrete
    update_path: str = "fast"  # "fast": compiled kernels for the stock MLPs; "autograd": torch
    hyper: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or self.steps <= 0:
            raise ConfigError(f"train.steps must be a positive integer, got {self.steps!r}")
        if not isinstance(self.checkpoint_every, int) or self.checkpoint_every <= 0:
            raise ConfigError(
                f"train.checkpoint_every must be a positive integer, got {self.checkpoint_every!r}"
            )
        if self.keep_checkpoints < 1:
            raise ConfigError(f"train.keep_checkpoints must be >= 1, got {self.keep_checkpoints!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"train.seed must be a non-negative integer, got {self.seed!r}")
        if self.update_path not in UPDATE_PATHS:
            raise ConfigError(
                f"train.update_path must be one of {', '.join(UPDATE_PATHS)}, got {self.update_path!r}"
            )
        hyper = dict(self.hyper)
        if "total_steps" in {f.name for f in fields(algorithm_spec(self.algo).config)}:
            hyper.setdefault("total_steps", self.steps)  # the exploration schedule's length
        self.algo_config = algorithm_config(self.algo, hyper)  # validates every hyperparameter

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        reject_unknown("train config", values, cls, "key")
        return construct(cls, values, "train config")

    @classmethod
    def from_yaml(cls, path: Path) -> TrainConfig:
        try:
            values = yaml.safe_load(Path(path).read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{path}: not valid YAML: {e}") from e
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys, got {type(values).__name__}")
        return cls.from_dict(values)


class RunDirectoryError(RuntimeError):
    """The run directory cannot be used as asked (occupied, or holds a different run)."""


def prepare_run_dir(config: TrainConfig, resume: bool, overwrite: bool) -> Path:
    """Create, reuse or replace ``config.run``; refuse to mix two different runs in one directory."""
    run = Path(config.run)
    cfg_file = run / CONFIG_FILE
    occupied = run.exists() and any(run.iterdir())
    if occupied and overwrite:
        shutil.rmtree(run)
        occupied = False
    if occupied and not resume:
        raise RunDirectoryError(
            f"run directory {run} already holds a run; pass --resume to continue "
            "it or --overwrite to replace it"
        )
    if resume:
        if not cfg_file.exists():
            raise RunDirectoryError(f"--resume: {run} holds no run ({CONFIG_FILE} missing)")
        stored = yaml.safe_load(cfg_file.read_text()) or {}
        mine = config.to_dict()
        diff = [f"{k}: {stored.get(k)!r} -> {mine[k]!r}" for k in IDENTITY_FIELDS if stored.get(k) != mine[k]]
        if diff:
            raise RunDirectoryError(
                f"--resume: {run} holds a different run ({'; '.join(diff)}); "
                "use another --run directory or --overwrite"
            )
        reached = max((int(p.name[len(PREFIX):]) for p in (run / "checkpoints").glob(f"{PREFIX}*")
                       if p.is_dir() and p.name[len(PREFIX):].isdigit()), default=0)
        if config.steps < reached:  # nothing to do, and config.yaml would understate the run
            raise RunDirectoryError(f"--resume: {run} is at step {reached} already, past --steps "
                                    f"{config.steps}; give more steps to continue it")
    run.mkdir(parents=True, exist_ok=True)
    for sub in ("checkpoints", "metrics"):
        (run / sub).mkdir(exist_ok=True)
    cfg_file.write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    return run
