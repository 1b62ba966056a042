"""``MarkerLocator``: where a small marker (a task's goal) is in a camera frame, in pixels.

A VLA's features are pooled over the image, and pooling keeps *that* something red is in view
better than *where*: the Meta-World VLA's features place reach's goal about 3 cm off per axis, where
one frame's geometry allows 80 % of goals within the 5 cm success radius
(``bench.metaworld_goal_geometry``). A locator answers the *where* directly: a small fully
convolutional network scores every cell of a half-resolution grid, and the answer is the
probability-weighted mean of the cells' centres (a soft arg-max, so it is differentiable and finer
than a cell). It is trained from a simulator's labels (``agent.pretrain.locator``: the marker's
projected pixel), acts on pixels alone, and gives the residual heads of online RL two numbers they
can learn from (``agent.vla.features``).

Saved as ``locator.json`` (what it was trained on) and ``locator.safetensors``; ``load_locator``
checks both and names the file and the problem (``LocatorError``). Nothing is pickled.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

FORMAT, VERSION = "rill-marker-locator", 1
CONFIG_FILE, WEIGHTS_FILE = "locator.json", "locator.safetensors"


class LocatorError(ValueError):
    """A saved locator that cannot be used: missing or damaged files, settings that do not fit."""


@dataclass(frozen=True)
class LocatorConfig:
    """What a locator reads (``camera``'s frames of ``image_size``), how wide it is (``channels``),
    and what it was taught to find (``target``: indices into the robot's ``privileged`` view whose
    point it locates; ``task``: the tasks whose frames it saw)."""

    camera: str = "corner2"
    image_size: tuple[int, int] = (96, 96)
    channels: int = 32
    target: tuple[int, ...] = (36, 37, 38)
    tasks: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.image_size, (list, tuple)):
            raise LocatorError(f"image_size must be two even integers >= 8, got {self.image_size!r}")
        target = self.target
        indices = isinstance(target, (list, tuple)) and all(type(i) is int and i >= 0 for i in target)
        if not indices:
            raise LocatorError(f"target must be a list of non-negative indices, got {self.target!r}")
        if not isinstance(self.tasks, (list, tuple)) or not all(isinstance(t, str) for t in self.tasks):
            raise LocatorError(f"tasks must be a list of task names, got {self.tasks!r}")
        size = tuple(self.image_size)
        if len(size) != 2 or not all(type(s) is int and s >= 8 and s % 2 == 0 for s in size):
            raise LocatorError(f"image_size must be two even integers >= 8, got {self.image_size!r}")
        if type(self.channels) is not int or not 4 <= self.channels <= 256:
            raise LocatorError(f"channels must be an integer within 4..256, got {self.channels!r}")
        if not isinstance(self.camera, str) or not self.camera:
            raise LocatorError(f"camera must name a camera, got {self.camera!r}")
        object.__setattr__(self, "image_size", size)
        object.__setattr__(self, "target", tuple(self.target))
        object.__setattr__(self, "tasks", tuple(self.tasks))

    def frame_problem(self, observation_spec: Mapping[str, Any], robot: str) -> str | None:
        """Why robot ``robot``, declaring ``observation_spec``, cannot feed this locator (no such
        camera, or frames of another size); None when it can."""
        key = f"image.{self.camera}"
        spec = observation_spec.get(key)
        if spec is not None and tuple(spec.shape[:2]) == self.image_size:
            return None
        return (f"reads {self.image_size[0]}x{self.image_size[1]} frames of {key!r}; robot {robot!r} gives "
                f"{'none' if spec is None else tuple(spec.shape)}")


class MarkerLocator(nn.Module):
    """Frames [B, H, W, 3] uint8 (or [B, 3, H, W] floats in 0..1) -> the marker's (row, column)."""

    def __init__(self, config: LocatorConfig) -> None:
        super().__init__()
        self.config = config
        c = config.channels
        # half resolution after the second layer; dilations widen the view to about 30 pixels, so
        # the score of a cell can tell the goal's marker from the arm's red parts around it
        self.net = nn.Sequential(
            nn.Conv2d(3, c // 2, 3, 1, 1), nn.ReLU(),
            nn.Conv2d(c // 2, c, 3, 2, 1), nn.ReLU(),
            nn.Conv2d(c, c, 3, 1, 2, dilation=2), nn.ReLU(),
            nn.Conv2d(c, c, 3, 1, 4, dilation=4), nn.ReLU(),
            nn.Conv2d(c, 1, 1),
        )

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """Scores of the grid's cells, flattened: [B, H/2 * W/2]."""
        return self.net(self._as_input(images)).flatten(1)

    def positions(self, logits: torch.Tensor) -> torch.Tensor:
        """The soft arg-max of ``logits``: the expected (row, column) in frame pixels [B, 2]."""
        h, w = (s // 2 for s in self.config.image_size)
        if logits.ndim != 2 or logits.shape[1] != h * w:
            raise ValueError(f"MarkerLocator.positions: expected scores of shape [B, {h * w}], got "
                             f"{tuple(logits.shape)}")
        p = torch.softmax(logits, 1).view(-1, h, w)
        rows = (torch.arange(h, dtype=p.dtype, device=p.device) + 0.5) * 2
        cols = (torch.arange(w, dtype=p.dtype, device=p.device) + 0.5) * 2
        return torch.stack([(p.sum(2) * rows).sum(1), (p.sum(1) * cols).sum(1)], 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.positions(self.logits(images))

    def locate(self, frame: np.ndarray) -> np.ndarray:
        """One frame (H, W, 3 uint8) -> the marker's (row, column), float32."""
        if frame.shape != (*self.config.image_size, 3) or frame.dtype != np.uint8:
            raise ValueError(f"MarkerLocator expects a {self.config.image_size} RGB uint8 frame from "
                             f"{self.config.camera!r}, got {frame.shape} {frame.dtype}")
        with torch.inference_mode():
            return self(torch.from_numpy(np.ascontiguousarray(frame))[None])[0].numpy().astype(np.float32)

    def _as_input(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype == torch.uint8:  # [B, H, W, 3] frames as robots report them
            if images.ndim != 4 or images.shape[-1] != 3:
                raise ValueError(f"MarkerLocator expects uint8 frames [B, H, W, 3], "
                                 f"got {tuple(images.shape)}")
            images = images.permute(0, 3, 1, 2).float() / 255.0
        size = tuple(self.config.image_size)
        if images.ndim != 4 or images.shape[1] != 3 or tuple(images.shape[2:]) != size:
            raise ValueError(f"MarkerLocator expects {size[0]}x{size[1]} RGB frames of "
                             f"{self.config.camera!r}, got a batch of shape {tuple(images.shape)}")
        return images

    def save(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        save_file({k: v.contiguous() for k, v in self.state_dict().items()}, str(path / WEIGHTS_FILE))
        meta = {"format": FORMAT, "version": VERSION, **asdict(self.config)}
        (path / CONFIG_FILE).write_text(json.dumps(meta, indent=1))
        return path


def weights_digest(path: str | Path) -> str:
    """The sha256 of the saved locator's weights at ``path``: what a policy that used it records, so
    an evaluation can tell that the locator it loads is the same one."""
    import hashlib

    return hashlib.sha256((Path(path) / WEIGHTS_FILE).read_bytes()).hexdigest()


def load_locator(path: str | Path) -> MarkerLocator:
    """The locator saved at ``path``, in evaluation mode; ``LocatorError`` names what is wrong."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    config_file, weights_file = path / CONFIG_FILE, path / WEIGHTS_FILE
    for file in (config_file, weights_file):
        if not file.is_file():
            raise LocatorError(f"{file}: missing (not a saved marker locator: rill locator writes one)")
    try:
        meta = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LocatorError(f"{config_file}: not valid JSON ({e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise LocatorError(f"{config_file}: not a {FORMAT} v{VERSION} file")
    settings = {k: v for k, v in meta.items() if k not in ("format", "version")}
    try:
        config = LocatorConfig(**settings)
    except TypeError as e:
        raise LocatorError(f"{config_file}: unexpected settings ({e})") from None
    except LocatorError as e:
        raise LocatorError(f"{config_file}: {e}") from None
    locator = MarkerLocator(config)
    try:
        tensors = load_file(str(weights_file))
    except (SafetensorError, OSError) as e:
        raise LocatorError(f"{weights_file}: corrupt or truncated safetensors file ({e})") from None
    expected = {k: tuple(v.shape) for k, v in locator.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in tensors.items()}
    if found != expected:
        missing = sorted(set(expected) - set(found))
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        extra = sorted(set(found) - set(expected))
        raise LocatorError(f"{weights_file}: weights do not fit a {config.channels}-channel locator "
                           f"(missing {missing}, wrong shapes {wrong}, unexpected {extra})")
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise LocatorError(f"{weights_file}: weights hold NaN or infinite values")
    locator.load_state_dict(tensors)
    locator.requires_grad_(False)
    return locator.eval()
