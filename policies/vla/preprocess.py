"""Camera frames to the backbone's ``pixel_values``, in torch (no image-processor download).

Each HxWx3 uint8 frame is resized (bilinear, antialiased; the aspect ratio is not kept, so the
whole field of view stays in the picture) to the model's square image size and normalized with
the checkpoint's mean and std. A real checkpoint's ``preprocessor_config.json`` supplies those
(``image_processor_settings``); the SmolVLM processor's tiling of large images into sub-images is
deliberately not used: one global view per camera keeps the token count, and the latency, fixed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F


class ImagePreprocessor:
    """``frames`` (one uint8 HxWx3 array per camera) -> float32 ``[1, n_cameras, 3, S, S]``."""

    def __init__(self, image_size: int, mean: Sequence[float], std: Sequence[float]) -> None:
        self.image_size = int(image_size)
        std_t = torch.tensor([float(s) for s in std], dtype=torch.float32).view(3, 1, 1)
        mean_t = torch.tensor([float(m) for m in mean], dtype=torch.float32).view(3, 1, 1)
        # (x / 255 - mean) / std as one multiply-add on the uint8 values.
        self._scale = 1.0 / (255.0 * std_t)
        self._shift = -mean_t / std_t

    def __call__(self, frames: Sequence[np.ndarray]) -> torch.Tensor:
        size = self.image_size
        out = []
        for frame in frames:
            x = torch.from_numpy(np.ascontiguousarray(frame)).permute(2, 0, 1).to(torch.float32)
            if x.shape[1:] != (size, size):
                x = F.interpolate(x.unsqueeze(0), size=(size, size), mode="bilinear",
                                  align_corners=False, antialias=True).squeeze(0)
            out.append(x * self._scale + self._shift)
        return torch.stack(out).unsqueeze(0)


def image_processor_settings(path: str | Path) -> dict[str, Any]:
    """``image_mean`` / ``image_std`` from a checkpoint's ``preprocessor_config.json``, if any.

    Returns ``{}`` when the directory has no image-processor config or it does not normalize.
    """
    file = Path(path) / "preprocessor_config.json"
    if not file.is_file():
        return {}
    try:
        settings = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise ValueError(f"{file}: unreadable image-processor config: {e}") from e
    if not settings.get("do_normalize", True):
        return {"image_mean": [0.0] * 3, "image_std": [1.0] * 3}
    return {k: settings[k] for k in ("image_mean", "image_std") if k in settings}
