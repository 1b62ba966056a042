"""The VLA network: a vision-language backbone plus a state encoder, a feature head, an action head.

``backbone`` is any model the ``transformers`` auto classes build from ``config.vlm_config`` (by
default a tiny SmolVLM). Its last hidden states over image and instruction tokens are pooled
(masked mean or last token) and projected to ``feature_dim`` features (``feature_head``, with a
LayerNorm so the features have unit scale for the stream-x heads downstream). The action head maps
``[features, encoded state]`` to an ``[H, action_dim]`` chunk squashed by ``tanh`` into the action
limits. The backbone is frozen by default (``config.freeze_backbone``); ``set_backbone_frozen``
changes that later.

Saved in the Hugging Face layout by ``save_pretrained`` (``config.json``, ``model.safetensors``,
tokenizer files); ``from_pretrained`` loads strictly through ``policies.vla.checkpoint``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as hf_init
from transformers.utils import logging as hf_logging

from policies.vla.config import VLAConfig


@contextmanager
def _quiet_progress():
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


@dataclass
class VLAOutput:
    actions: torch.Tensor  # [B, H, A], inside the action limits
    features: torch.Tensor  # [B, feature_dim], the pooled backbone features


class VLAModel(PreTrainedModel):
    config_class = VLAConfig
    base_model_prefix = "vla"
    main_input_name = "input_ids"
    _supports_sdpa = True

    def __init__(self, config: VLAConfig, tokenizer=None) -> None:
        super().__init__(config)
        self.backbone = AutoModel.from_config(config.vlm_config)
        f, s, sh, hh = config.feature_dim, config.state_dim, config.state_hidden, config.head_hidden
        self.feature_head = nn.Sequential(nn.Linear(config.text_hidden_size, f), nn.LayerNorm(f))
        self.state_encoder = nn.Sequential(nn.Linear(s, sh), nn.GELU(), nn.Linear(sh, sh), nn.GELU())
        self.action_head = nn.Sequential(
            nn.Linear(f + sh, hh), nn.GELU(), nn.Linear(hh, hh), nn.GELU(),
            nn.Linear(hh, config.chunk_size * config.action_dim),
        )
        low = torch.tensor(config.action_low, dtype=torch.float32)
        high = torch.tensor(config.action_high, dtype=torch.float32)
        # Derived from the config, so not part of the weights file.
        self.register_buffer("action_mid", (high + low) / 2, persistent=False)
        self.register_buffer("action_half_range", (high - low) / 2, persistent=False)
        mean = torch.tensor(config.state_mean or [0.0] * s, dtype=torch.float32)
        std = torch.tensor(config.state_std or [1.0] * s, dtype=torch.float32)
        self.register_buffer("state_mean", mean, persistent=False)
        self.register_buffer("state_scale", 1.0 / std, persistent=False)
        self.tokenizer = tokenizer
        self.post_init()
        self.set_backbone_frozen(config.freeze_backbone)
        self.eval()

    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            hf_init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                hf_init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            hf_init.ones_(module.weight)
            hf_init.zeros_(module.bias)

    def reset_heads(self, seed: int) -> None:
        """Draw the state encoder and the action head anew from ``seed`` (as a new VLA draws
        them), keeping the backbone and the feature head: a pretrained VLA's way of seeing and
        reading, with everything it learned about acting forgotten. The global torch RNG is left
        as it was."""
        # The same draws as _init_weights, by hand: transformers' init helpers take no generator.
        generator = torch.Generator().manual_seed(int(seed))
        with torch.no_grad():
            for head in (self.state_encoder, self.action_head):
                for module in head.modules():
                    if isinstance(module, nn.Linear):
                        module.weight.normal_(0.0, 0.02, generator=generator)
                        if module.bias is not None:
                            module.bias.zero_()
                    elif isinstance(module, nn.LayerNorm):
                        module.weight.fill_(1.0)
                        module.bias.zero_()

    def set_backbone_frozen(self, frozen: bool = True) -> None:
        """Freeze (the default) or unfreeze the backbone's parameters."""
        self.backbone.requires_grad_(not frozen)
        self.config.freeze_backbone = bool(frozen)

    @property
    def backbone_frozen(self) -> bool:
        return not any(p.requires_grad for p in self.backbone.parameters())

    def pooled_features(self, input_ids: torch.Tensor, pixel_values: torch.Tensor,
                        attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``[B, feature_dim]`` features of images ``[B, n_cameras, 3, S, S]`` and prompt ids ``[B, L]``."""
        hidden = self.backbone(input_ids=input_ids, pixel_values=pixel_values.to(self.backbone.dtype),
                               attention_mask=attention_mask, use_cache=False).last_hidden_state
        if self.config.pooling == "last":
            if attention_mask is None:
                pooled = hidden[:, -1]
            else:  # right padding: the last real token of each row
                last = attention_mask.long().sum(1) - 1
                pooled = hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
        elif attention_mask is None:
            pooled = hidden.mean(1)
        else:
            mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.feature_head(pooled.to(self.feature_head[0].weight.dtype))

    def act_from_features(self, features: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The ``[B, H, A]`` action chunk from pooled features and the state ``[B, state_dim]``."""
        c = self.config
        state = (state - self.state_mean) * self.state_scale
        x = torch.cat([features, self.state_encoder(state)], dim=-1)
        raw = self.action_head(x).view(-1, c.chunk_size, c.action_dim)
        return self.action_mid + self.action_half_range * torch.tanh(raw)

    def forward(self, input_ids: torch.Tensor, pixel_values: torch.Tensor, state: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> VLAOutput:
        features = self.pooled_features(input_ids, pixel_values, attention_mask)
        return VLAOutput(actions=self.act_from_features(features, state), features=features)

    # -- checkpoints -----------------------------------------------------------------------------
    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs) -> None:
        """Write ``config.json``, ``model.safetensors`` and the tokenizer files into a new directory
        next to ``save_directory``, then swap it in, so a failed save never leaves a mixed one."""
        target = Path(save_directory)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        try:
            with _quiet_progress():  # one-file saves need no progress bar on the robot's stderr
                super().save_pretrained(staging, **kwargs)
            if self.tokenizer is not None:
                self.tokenizer.save_pretrained(staging)
            old = None
            if target.exists():
                old = target.with_name(f".{target.name}.old-{os.getpid()}")
                target.rename(old)
            staging.rename(target)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if staging.exists():
                shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args, **kwargs) -> VLAModel:
        """Load a VLA saved by ``save_pretrained`` from a local directory, strictly: every tensor
        present with its saved shape, tokenizer included; see ``policies.vla.checkpoint``."""
        from policies.vla.checkpoint import load_checkpoint

        if args or kwargs:
            raise TypeError(f"VLAModel.from_pretrained takes only a local directory, got extra "
                            f"arguments {list(args) + sorted(kwargs)}")
        return load_checkpoint(cls, pretrained_model_name_or_path)
