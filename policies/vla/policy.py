"""``VLAPolicy``: a ``VLAModel`` behind the ``Policy`` contract.

``act`` checks the observation (every camera of ``config.camera_names`` as ``image.<camera>``,
HxWx3 uint8; a non-empty ``instruction``; a finite ``state`` of ``state_dim``; a ``timestamp``),
raising ``PolicyInputError`` naming the problem, and returns the chunk with
``features = [pooled backbone features, state]`` (float32 ``[feature_dim + state_dim]``), what the
stream-x heads learn from. The VLA itself is deterministic: ``logp`` is NaN. It runs under
``torch.inference_mode``; the number of torch threads is the caller's choice.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from policies.base import ActionChunk, Observation, Policy, PolicyInputError
from policies.vla.model import VLAModel
from policies.vla.preprocess import ImagePreprocessor
from policies.vla.prompt import PromptBuilder


class VLAPolicy(Policy):
    def __init__(self, model: VLAModel, version: int = 0) -> None:
        if model.tokenizer is None:
            raise ValueError("VLAPolicy needs a VLAModel with a tokenizer (tiny_vla or load_vla give one)")
        c = model.config
        self.model = model.eval()
        self.config = c
        self.action_dim = c.action_dim
        self.chunk_size = c.chunk_size
        self.state_dim = c.state_dim
        self.feature_dim = c.policy_feature_dim
        self.cameras = list(c.camera_names)
        self.period_s = float(c.period_s)
        self.action_low = np.asarray(c.action_low, np.float32)
        self.action_high = np.asarray(c.action_high, np.float32)
        self._version = int(version)
        self.images = ImagePreprocessor(c.image_size, c.image_mean, c.image_std)
        self.prompt = PromptBuilder(model.tokenizer, len(self.cameras), c.image_tokens_per_camera,
                                    int(c.vlm_config.image_token_id), c.max_instruction_tokens,
                                    c.instruction_first)

    @property
    def version(self) -> int:
        return self._version

    def act(self, observation: Observation) -> ActionChunk:
        state, frames, instruction, stamp = self._check(observation)
        input_ids = self.prompt(instruction)
        pixel_values = self.images(frames)
        with torch.inference_mode():
            out = self.model(input_ids=input_ids, pixel_values=pixel_values,
                             state=torch.from_numpy(state).unsqueeze(0))
            actions = out.actions[0].float().numpy()
            pooled = out.features[0].float().numpy()
        features = np.concatenate([pooled, state]).astype(np.float32, copy=False)
        return ActionChunk(actions=actions, period_s=self.period_s, version=self._version,
                           features=features, observed_at=stamp)

    # -- input checks ----------------------------------------------------------------------------
    def _check(self, obs: Any) -> tuple[np.ndarray, list[np.ndarray], str, float]:
        if not hasattr(obs, "get"):
            raise PolicyInputError(f"observation must be a dict, got {type(obs).__name__}")
        frames = [self._frame(obs, cam) for cam in self.cameras]
        instruction = obs.get("instruction")
        if not isinstance(instruction, str):
            raise PolicyInputError(
                f"observation['instruction'] must be a str, got {type(instruction).__name__}")
        if not instruction.strip():
            raise PolicyInputError("observation['instruction'] is empty; the VLA needs a task to do")
        state = obs.get("state")
        if state is None:
            raise PolicyInputError(f"observation has no 'state' (float32 [{self.state_dim}])")
        try:
            state = np.asarray(state, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise PolicyInputError(f"observation['state'] is not numeric: {e}") from None
        if state.shape != (self.state_dim,):
            raise PolicyInputError(
                f"observation['state'] has shape {state.shape}, expected ({self.state_dim},)")
        if not np.isfinite(state).all():
            raise PolicyInputError(f"observation['state'] is not finite at indices "
                                   f"{np.flatnonzero(~np.isfinite(state)).tolist()}")
        stamp = obs.get("timestamp")
        if isinstance(stamp, bool) or not isinstance(stamp, (int, float, np.number)) \
                or not math.isfinite(float(stamp)):
            raise PolicyInputError(f"observation['timestamp'] must be a finite number, got {stamp!r}")
        return state, frames, instruction, float(stamp)

    def _frame(self, obs: Any, camera: str) -> np.ndarray:
        key = f"image.{camera}"
        frame = obs.get(key)
        if frame is None:
            raise PolicyInputError(f"observation has no {key!r}; this VLA reads cameras {self.cameras}")
        if not isinstance(frame, np.ndarray):
            raise PolicyInputError(f"observation[{key!r}] must be a numpy array, got {type(frame).__name__}")
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
            raise PolicyInputError(f"observation[{key!r}] has shape {frame.shape}, expected HxWx3")
        if frame.dtype != np.uint8:
            raise PolicyInputError(f"observation[{key!r}] has dtype {frame.dtype}, expected uint8")
        return frame
