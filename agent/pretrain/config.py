"""``PretrainConfig``: what ``rill pretrain`` trains, on what, and how it checks itself."""

from __future__ import annotations

import inspect
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from hal.config import (
    RobotConfig,
    check_number,
    check_type,
    construct,
    nearest,
    read_yaml_mapping,
    reject_unknown,
)
from hal.errors import ConfigError

# VLA settings a new VLA takes from the demonstrations (and the config's chunk_size and seed)
FROM_THE_DEMOS = ("state_dim", "action_dim", "chunk_size", "camera_names")


class PretrainStateError(ValueError):
    """A checkpoint to resume from is missing, damaged, or from a different run's config. (Here, not
    in ``trainer``, so that the CLI's error list does not import the VLA and transformers.)"""


TRAINABLE = ("all", "heads")  # heads: state encoder, feature head, action head (backbone frozen)
LOSSES = ("l1", "mse")


@dataclass
class PretrainConfig:
    """Behaviour cloning of a VLA from demonstrations.

    - ``demos``: the demonstration cache (``rill demos record`` / ``rill demos import``).
    - ``out``: the run directory: ``checkpoints/last`` (resumable), ``model/`` (the final VLA, Hugging
      Face layout), ``tensorboard/``, ``metrics.jsonl``, ``eval.json``.
    - ``vla``: a saved VLA to start from (a directory, or ``pretrained:NAME`` for one rill ships);
      empty: a new tiny VLA from ``seed``, shaped by the demos.
    - ``new_heads``: with ``vla``, keep its backbone and feature head (how it sees and reads) and
      draw its state encoder and action head anew from ``seed``: it learns to act again.
    - ``chunk_size``: actions per chunk the VLA plans (a new VLA only).
    - ``trainable``: ``all`` (the backbone learns to see, too) or ``heads``.
    - ``counterfactual``: train on the counterfactual labels demonstrations carry (the same frame
      under another instruction, with the expert's action for it; ``agent.pretrain.data``).
    - ``val_episodes``: demonstration episodes held out of training for the validation loss.
    - ``only_successful``: train on the episodes that succeeded only (success-filtered imitation).
    - ``privileged_targets``: indices into the demonstrations' ``privileged`` view (the simulator's
      own, e.g. Meta-World's goal position at 36-38) that a linear probe on the VLA's features must
      predict, standardised within each instruction (the task alone tells nothing), with weight
      ``privileged_weight`` beside the imitation loss: features that carry where this scene's goal
      is, for the action head and for the online-RL heads on top. The probe is a training aid and
      is not part of the saved VLA. ``probe_scenes``: besides the demonstrations' frames, the probe
      learns on the first frames of this many freshly reset scenes of ``eval_robot`` (drawn from
      ``probe_seed``; ``agent.pretrain.scenes``), so that it cannot just memorise the few scenes
      the demonstrations show; the per-task standardisation then comes from those scenes.
    - ``eval_robot``: the simulated robot to measure success on (``name``, ``type``, ``params``);
      ``eval_episodes`` episodes from ``eval_seed`` (held out: demonstrations use other seeds),
      every ``eval_every`` steps and at the end. None: no evaluation.
    """

    demos: Path
    out: Path
    vla: Path | None = None
    chunk_size: int = 4
    steps: int = 3000
    batch_size: int = 32
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup_steps: int = 100
    trainable: str = "all"
    loss: str = "l1"
    shift: int = 4  # frame translation augmentation, pixels
    counterfactual: bool = True  # learn from an expert's labels under other instructions, where kept
    val_episodes: int = 2
    eval_robot: RobotConfig | None = None
    eval_episodes: int = 20
    eval_seed: int = 100_000
    eval_every: int = 1000
    checkpoint_every: int = 250
    log_every: int = 25
    seed: int = 0
    threads: int = 1
    extra: dict[str, Any] = field(default_factory=dict)  # further VLAConfig fields for a new VLA
    new_heads: bool = False
    only_successful: bool = False
    privileged_targets: list[int] = field(default_factory=list)
    privileged_weight: float = 1.0
    probe_scenes: int = 0
    probe_seed: int = 200_000

    def __post_init__(self) -> None:
        self.demos, self.out = Path(self.demos), Path(self.out)
        self.vla = Path(self.vla) if self.vla else None
        if self.extra:
            self._check_extra()
        for name in ("chunk_size", "steps", "batch_size", "checkpoint_every", "log_every", "threads",
                     "eval_every"):
            check_type("pretrain", name, getattr(self, name), int)
            check_number("pretrain", name, getattr(self, name), 1)
        for name in ("warmup_steps", "shift", "val_episodes", "eval_episodes", "seed", "eval_seed"):
            check_type("pretrain", name, getattr(self, name), int)
            check_number("pretrain", name, getattr(self, name), 0)
        check_number("pretrain", "lr", self.lr, 0, strict=True)
        check_number("pretrain", "weight_decay", self.weight_decay, 0)
        if self.trainable not in TRAINABLE:
            raise ConfigError(f"pretrain.trainable must be one of {', '.join(TRAINABLE)}, "
                              f"got {self.trainable!r}")
        if self.loss not in LOSSES:
            raise ConfigError(f"pretrain.loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check_type("pretrain", "new_heads", self.new_heads, bool)
        check_type("pretrain", "only_successful", self.only_successful, bool)
        if not isinstance(self.privileged_targets, list) or not all(
                isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in self.privileged_targets):
            raise ConfigError(f"pretrain.privileged_targets must be a list of non-negative indices, got "
                              f"{self.privileged_targets!r}")
        if len(set(self.privileged_targets)) != len(self.privileged_targets):
            raise ConfigError(f"pretrain.privileged_targets names an index twice: {self.privileged_targets}")
        check_number("pretrain", "privileged_weight", self.privileged_weight, 0)
        if not math.isfinite(self.privileged_weight):
            raise ConfigError(f"pretrain.privileged_weight must be finite, got {self.privileged_weight!r}")
        for name in ("probe_scenes", "probe_seed"):
            check_type("pretrain", name, getattr(self, name), int)
            check_number("pretrain", name, getattr(self, name), 0)
        if self.probe_scenes and not self.privileged_targets:
            raise ConfigError("pretrain.probe_scenes needs pretrain.privileged_targets: what the probe "
                              "predicts")
        if self.new_heads and self.vla is None:
            raise ConfigError("pretrain.new_heads needs pretrain.vla: the VLA whose backbone to keep")
        if isinstance(self.eval_robot, dict):
            self.eval_robot = RobotConfig(**self.eval_robot)
        if self.probe_scenes and self.eval_robot is None:
            raise ConfigError("pretrain.probe_scenes needs pretrain.eval_robot: the simulated robot whose "
                              "scenes the probe learns on")

    def _check_extra(self) -> None:
        """``extra`` names fields of a new VLA's config (a typo would be written into its config.json
        and do nothing); the ones the trainer sets from the demonstrations are not among them."""
        from policies.vla.config import VLAConfig

        check_type("pretrain", "extra", self.extra, dict)
        declared = inspect.get_annotations(VLAConfig)
        settable = [k for k, v in declared.items() if "ClassVar" not in str(v) and k not in FROM_THE_DEMOS]
        for key in self.extra:
            if key in FROM_THE_DEMOS:
                raise ConfigError(f"pretrain.extra.{key}: set from the demonstrations, not here")
            if key not in settable:
                near = nearest(str(key), settable)
                hint = f"; did you mean {near!r}?" if near else f"; VLA settings: {', '.join(settable)}"
                raise ConfigError(f"pretrain.extra: unknown VLA setting {key!r}{hint}")

    @classmethod
    def from_dict(cls, values: Any, where: str = "pretrain config") -> PretrainConfig:
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(values).__name__}")
        reject_unknown(where, values, cls)
        missing = [f.name for f in fields(cls) if f.name in ("demos", "out") and f.name not in values]
        if missing:
            raise ConfigError(f"{where}: missing {', '.join(missing)}")
        return construct(cls, values, where)

    @classmethod
    def from_yaml(cls, path: str | Path) -> PretrainConfig:
        return cls.from_dict(read_yaml_mapping(path, "pretrain config"), f"pretrain config {path}")

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["demos"], out["out"] = str(self.demos), str(self.out)
        out["vla"] = str(self.vla) if self.vla else None
        return out
