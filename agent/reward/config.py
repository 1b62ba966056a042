"""The reward model's configs: what ``rill reward train`` trains (``RewardTrainConfig``), and how a
robot without a reward uses a trained one (``RewardSignalConfig``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from agent.reward.data import FrameRules
from hal.config import check_number, check_type, construct, read_yaml_mapping, reject_unknown
from hal.errors import ConfigError


@dataclass
class RewardTrainConfig:
    """A success classifier from labelled episodes.

    - ``episodes``: replay caches of episodes (``rill demos record``: a scripted expert's or a
      person's demonstrations, a policy's own rollouts); labelled by ``rules`` (``agent.reward.data``).
    - ``out``: where the model goes (``reward_model.json``, ``model.safetensors``, ``metrics.json``).
    - ``camera``: which camera it reads; ``model``: the network's shape (``RewardModelConfig``).
    - ``held_out``: the share of episodes kept out of training; the threshold is chosen on them:
      the lowest whose precision reaches ``target_precision`` (a false success rewards the wrong
      behaviour and ends the episode; a missed one only delays), the best F1 when none does.
    """

    episodes: list[Path]
    out: Path
    camera: str = "front"
    steps: int = 3000
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 1e-4
    shift: int = 4  # frame translation augmentation, pixels
    held_out: float = 0.15
    target_precision: float = 0.97
    seed: int = 0
    threads: int = 2
    log_every: int = 100
    rules: FrameRules = field(default_factory=FrameRules)
    model: dict[str, Any] = field(default_factory=dict)  # RewardModelConfig fields; camera, size: the data's

    def __post_init__(self) -> None:
        if isinstance(self.episodes, (str, Path)):
            self.episodes = [self.episodes]
        if not isinstance(self.episodes, list) or not self.episodes:
            raise ConfigError(f"reward.episodes must be a list of episode caches, got {self.episodes!r}")
        self.episodes = [Path(p) for p in self.episodes]
        self.out = Path(self.out)
        check_type("reward", "camera", self.camera, str)
        for name in ("steps", "batch_size", "threads", "log_every"):
            check_type("reward", name, getattr(self, name), int)
            check_number("reward", name, getattr(self, name), 1)
        for name in ("shift", "seed"):
            check_type("reward", name, getattr(self, name), int)
            check_number("reward", name, getattr(self, name), 0)
        check_number("reward", "lr", self.lr, 0, strict=True)
        check_number("reward", "weight_decay", self.weight_decay, 0)
        if not 0.0 < self.held_out < 1.0:
            raise ConfigError(f"reward.held_out must be within (0, 1), got {self.held_out!r}")
        if not 0.0 < self.target_precision <= 1.0:
            raise ConfigError(f"reward.target_precision must be within (0, 1], got {self.target_precision!r}")
        if isinstance(self.rules, dict):
            reject_unknown("reward.rules", self.rules, FrameRules)
            self.rules = FrameRules(**self.rules)
        r = self.rules
        for name in ("margin", "success_stride", "failure_stride"):
            check_type("reward.rules", name, getattr(r, name), int)
            check_number("reward.rules", name, getattr(r, name), 0 if name == "margin" else 1)
        if not isinstance(r.swap_words, list) or not all(isinstance(w, str) and w for w in r.swap_words):
            raise ConfigError(f"reward.rules.swap_words must be a list of words, got {r.swap_words!r}")
        check_type("reward", "model", self.model, dict)
        fixed = {"camera", "image_height", "image_width"} & set(self.model)
        if fixed:
            raise ConfigError(f"reward.model: {sorted(fixed)} come from the episodes' frames, not the config")

    @classmethod
    def from_dict(cls, values: Any, where: str = "reward config") -> RewardTrainConfig:
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
        reject_unknown(where, values, cls)
        missing = [f.name for f in fields(cls) if f.name in ("episodes", "out") and f.name not in values]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        return construct(cls, values, where)

    @classmethod
    def from_yaml(cls, path: str | Path) -> RewardTrainConfig:
        return cls.from_dict(read_yaml_mapping(path, "reward config"), f"reward config {path}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["episodes"], out["out"] = [str(p) for p in self.episodes], str(self.out)
        return out


@dataclass
class RewardSignalConfig:
    """A robot's task signals from a reward model (``RewardedRobot``).

    - ``model``: a saved reward model directory ("": none; the robot's own reward is used).
    - ``threshold``: override the model's own (chosen on held-out episodes when it was trained).
    - ``consecutive``: success is declared after this many consecutive confident frames (distinct
      camera frames, not control ticks): one lucky frame is not a success.
    - ``success_reward``: the reward on the tick success is declared (0 on every other tick).
    - ``end_episode``: a declared success ends the episode (``terminated``).
    """

    model: str = ""
    threshold: float = 0.0  # 0: the model's own
    consecutive: int = 3
    success_reward: float = 1.0
    end_episode: bool = True

    def __post_init__(self) -> None:
        check_type("reward", "model", self.model, str)
        check_number("reward", "threshold", self.threshold, 0)
        if self.threshold >= 1.0:
            raise ConfigError(f"reward.threshold must be below 1 (0: the model's own), "
                              f"got {self.threshold!r}")
        check_type("reward", "consecutive", self.consecutive, int)
        check_number("reward", "consecutive", self.consecutive, 1)
        check_number("reward", "success_reward", self.success_reward, 0, strict=True)
        check_type("reward", "end_episode", self.end_episode, bool)
