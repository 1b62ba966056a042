"""``RewardModel``: a trained ``SuccessClassifier`` with its threshold, saved and loaded strictly.

A saved reward model is a directory: ``reward_model.json`` (format, version, the network's config,
the decision threshold chosen on held-out data, how it was measured, the SHA-256 of the weights)
and ``model.safetensors``. Loading checks, before any weight is used, that the JSON is whole,
the config valid, the weights' checksum right and every tensor's name and shape the network's;
any problem raises ``RewardModelError`` naming the file and the problem. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from hal.errors import ConfigError
from policies.reward.model import RewardModelConfig, SuccessClassifier, encode_instructions

PRETRAINED_DIR = Path(__file__).parent / "pretrained"
SHIPPED_PREFIX = "pretrained:"  # how a config names a reward model rill ships
FORMAT = "rill-reward-model"
FORMAT_VERSION = 1
META = "reward_model.json"
WEIGHTS = "model.safetensors"


class RewardModelError(ValueError):
    """A saved reward model that cannot be used, or inputs that do not fit it; names the problem."""


class RewardModel:
    """A success classifier ready to score frames: ``probability(frames, instructions)``.

    ``threshold``: a probability at or above it counts as a confident success (chosen on held-out
    episodes when the model was trained). ``info``: what training measured (precision, recall, ...).
    """

    def __init__(self, net: SuccessClassifier, threshold: float, info: dict[str, Any] | None = None) -> None:
        if not 0.0 < threshold < 1.0:
            raise RewardModelError(f"reward model threshold must be within (0, 1), got {threshold!r}")
        self.net = net.eval()
        self.config: RewardModelConfig = net.config
        self.threshold = float(threshold)
        self.info = dict(info or {})

    @property
    def image_key(self) -> str:
        return "image." + self.config.camera

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (self.config.image_height, self.config.image_width, 3)

    def check_camera(self, name: str, shape: Sequence[int] | None) -> None:
        """Refuse a camera this model was not trained for, naming the mismatch."""
        if name != self.image_key:
            raise RewardModelError(f"the reward model reads camera {self.config.camera!r} "
                                   f"({self.image_key}), the robot gives {name!r}")
        if shape is not None and tuple(shape) != self.frame_shape:
            raise RewardModelError(f"the reward model reads {self.image_key} frames of {self.frame_shape}, "
                                   f"the robot's are {tuple(shape)}")

    @torch.no_grad()
    def probability(self, frames: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        """P(success) for ``frames`` (uint8 ``[B, H, W, 3]`` or one ``[H, W, 3]``) and their instructions."""
        frames = np.asarray(frames)
        single = frames.ndim == 3
        if single:
            frames = frames[None]
        if frames.shape[1:] != self.frame_shape or frames.dtype != np.uint8:
            raise RewardModelError(f"reward model: frames must be uint8 {self.frame_shape}, got "
                                   f"{frames.dtype} {frames.shape[1:]}")
        if len(instructions) != len(frames):
            raise RewardModelError(f"reward model: {len(frames)} frames but {len(instructions)} instructions")
        pixels = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
        ids, offsets = encode_instructions(list(instructions), self.config.word_buckets)
        probs = torch.sigmoid(self.net(pixels, ids, offsets)).numpy().astype(np.float64)
        return probs[0:1] if single else probs


def save_reward_model(path: str | Path, model: RewardModel) -> Path:
    """Write ``model`` to the directory ``path`` (replacing what is there; the JSON last)."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    blob = st_save({k: v.detach().contiguous() for k, v in model.net.state_dict().items()})
    meta = {"format": FORMAT, "version": FORMAT_VERSION, "config": model.config.to_dict(),
            "threshold": model.threshold, "info": model.info,
            "weights_sha256": hashlib.sha256(blob).hexdigest()}
    for name, data in ((WEIGHTS, blob), (META, json.dumps(meta, indent=1, sort_keys=True).encode())):
        tmp = path / f".{name}.tmp"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path / name)
    return path


def _read_meta(path: Path) -> dict[str, Any]:
    file = path / META
    if not path.is_dir():
        raise RewardModelError(f"reward model {path}: no such directory (train one with `rill reward train`)")
    if not file.is_file():
        raise RewardModelError(f"reward model {path}: no {META}; not a saved reward model")
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise RewardModelError(f"reward model {file}: not readable JSON ({e}); truncated or damaged") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise RewardModelError(f"reward model {file}: not a rill reward model")
    if meta.get("version") != FORMAT_VERSION:
        raise RewardModelError(f"reward model {file}: format version {meta.get('version')!r} is not "
                               f"supported (this rill reads {FORMAT_VERSION})")
    for key, kind in (("config", dict), ("threshold", float), ("weights_sha256", str)):
        if not isinstance(meta.get(key), kind):
            raise RewardModelError(f"reward model {file}: {key!r} missing or not a {kind.__name__}")
    return meta


def resolve_reward_model_path(spec: str | Path) -> Path:
    """The directory ``spec`` names: ``pretrained:NAME`` (a reward model rill ships) or a directory."""
    text = str(spec)
    if not text.startswith(SHIPPED_PREFIX):
        return Path(spec)
    name = text[len(SHIPPED_PREFIX):]
    path = PRETRAINED_DIR / name
    if not (path / META).is_file():
        shipped = sorted(p.name for p in PRETRAINED_DIR.glob("*") if (p / META).is_file())
        raise RewardModelError(f"no shipped reward model {name!r}; rill ships {shipped or 'none'}")
    return path


def load_reward_model(path: str | Path) -> RewardModel:
    """The reward model saved at ``path`` (or ``pretrained:NAME``); ``RewardModelError`` naming what
    is wrong with it."""
    path = resolve_reward_model_path(path)
    meta = _read_meta(path)
    try:
        config = RewardModelConfig(**meta["config"])
    except (TypeError, ConfigError) as e:
        raise RewardModelError(f"reward model {path / META}: bad config: {e}") from e
    try:
        blob = (path / WEIGHTS).read_bytes()
    except OSError as e:
        raise RewardModelError(f"reward model {path}: cannot read {WEIGHTS}: {e}") from e
    if hashlib.sha256(blob).hexdigest() != meta["weights_sha256"]:
        raise RewardModelError(f"reward model {path / WEIGHTS}: checksum mismatch ({len(blob)} bytes); "
                               "the file is truncated or damaged")
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError) as e:
        raise RewardModelError(f"reward model {path / WEIGHTS}: unreadable: {e}") from e
    net = SuccessClassifier(config)
    expected = net.state_dict()
    problems = [f"tensor {k!r} missing" for k in expected if k not in tensors]
    problems += [f"unexpected tensor {k!r}" for k in tensors if k not in expected]
    problems += [f"tensor {k!r} has shape {tuple(tensors[k].shape)}, the config gives {tuple(v.shape)}"
                 for k, v in expected.items() if k in tensors and tensors[k].shape != v.shape]
    if problems:
        raise RewardModelError(f"reward model {path / WEIGHTS} does not match its config: "
                               + "; ".join(problems[:5]))
    net.load_state_dict(tensors)
    try:
        return RewardModel(net, meta["threshold"], meta.get("info") or {})
    except RewardModelError as e:
        raise RewardModelError(f"reward model {path / META}: {e}") from e
