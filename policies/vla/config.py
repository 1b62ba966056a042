"""The VLA's configuration: a ``transformers`` config, so it saves as ``config.json``.

It nests the vision-language backbone's own config (``vlm_config``; default: a tiny SmolVLM /
Idefics3-architecture model built locally, see ``tiny_backbone_config``) and adds what the VLA puts
around it: state and action sizes, the action chunk length ``H``, the pooled feature size, action
limits, image size and normalization, camera names. Every value is checked in ``__post_init__``;
an error names the field and the value.
"""

from __future__ import annotations

import math
from dataclasses import field
from typing import Any, ClassVar

from transformers import AutoConfig, PretrainedConfig, SmolVLMConfig
from transformers.configuration_utils import SubConfigSpec

from hal.errors import ConfigError
from policies.vla.tokenizer import BOS, EOS, IMAGE_TOKEN, MAX_LENGTH, PAD, TOKEN_IDS, VOCABULARY

# Backbones whose forward takes (input_ids, pixel_values [B, N, 3, S, S]) and expands each image
# into ``(S / patch)^2 / scale^2`` ``<image>`` tokens; others need their own adapter in model.py.
SUPPORTED_BACKBONES = ("smolvlm", "idefics3")
POOLINGS = ("mean", "last")


class VLAConfigError(ConfigError):
    """A VLA configuration value is missing or out of range."""


def tiny_backbone_config() -> SmolVLMConfig:
    """A SmolVLM-architecture backbone of about 0.8 M parameters for offline CPU use.

    96x96 images in 16x16 patches (36 patches, 9 visual tokens per image after the 2x2 pixel
    shuffle), a 2-layer 128-wide SigLIP-style vision encoder and a 2-layer 128-wide Llama text
    model over the offline tokenizer's vocabulary.
    """
    return SmolVLMConfig(
        image_token_id=TOKEN_IDS[IMAGE_TOKEN],
        scale_factor=2,
        pad_token_id=TOKEN_IDS[PAD],
        tie_word_embeddings=False,
        vision_config=dict(
            hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
            image_size=96, patch_size=16,
        ),
        text_config=dict(
            model_type="llama", hidden_size=128, intermediate_size=256, num_hidden_layers=2,
            num_attention_heads=4, num_key_value_heads=2, head_dim=32, vocab_size=len(VOCABULARY),
            max_position_embeddings=MAX_LENGTH, pad_token_id=TOKEN_IDS[PAD],
            bos_token_id=TOKEN_IDS[BOS], eos_token_id=TOKEN_IDS[EOS], tie_word_embeddings=False,
        ),
    )


def _bad(name: str, value: Any, rule: str) -> VLAConfigError:
    return VLAConfigError(f"VLAConfig.{name} {rule}, got {value!r}")


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _bad(name, value, "must be a positive int")
    return value


def _floats(name: str, value: Any, n: int) -> list[float]:
    """A float or a length-``n`` list of finite floats, as a list of ``n`` floats."""
    items = [value] * n if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    try:
        out = [float(v) for v in items]
    except (TypeError, ValueError):
        raise _bad(name, value, f"must be a number or a list of {n} numbers") from None
    if len(out) != n or not all(math.isfinite(v) for v in out):
        raise _bad(name, value, f"must be a number or a list of {n} finite numbers")
    return out


class VLAConfig(PretrainedConfig):
    """A vision-language backbone, a state encoder, a feature head and an action-chunk head.

    ``feature_dim`` is the pooled backbone feature size; the policy exposes ``feature_dim +
    state_dim`` features per chunk. Actions are squashed into ``[action_low, action_high]``
    (per dimension; a number applies to all). ``image_size`` defaults to the vision encoder's
    and must be a multiple of ``patch_size * scale_factor``. The state is standardised with
    ``state_mean`` / ``state_std`` before its encoder (``rill pretrain`` sets them from the
    demonstrations; None: as it comes).
    """

    model_type = "rill_vla"
    sub_configs_defaults: ClassVar[dict[str, SubConfigSpec]] = {
        "vlm_config": SubConfigSpec(AutoConfig, model_type="smolvlm")}

    vlm_config: dict | PretrainedConfig | None = None
    state_dim: int = 8
    action_dim: int = 7
    chunk_size: int = 8
    feature_dim: int = 128
    state_hidden: int = 64
    head_hidden: int = 256
    action_low: list[float] | float = -1.0
    action_high: list[float] | float = 1.0
    state_mean: list[float] | None = None
    state_std: list[float] | None = None
    image_size: int | None = None
    image_mean: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    image_std: list[float] = field(default_factory=lambda: [0.5, 0.5, 0.5])
    camera_names: list[str] = field(default_factory=lambda: ["front"])
    pooling: str = "mean"
    # The instruction before the images: in a causal backbone every image token then attends to
    # the words, so what each one encodes can depend on what was asked (which block to find).
    instruction_first: bool = False
    freeze_backbone: bool = True
    period_s: float = 0.05
    max_instruction_tokens: int = 48

    def __post_init__(self, **kwargs) -> None:
        if self.vlm_config is None:
            self.vlm_config = tiny_backbone_config()
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        vlm = self.vlm_config
        if getattr(vlm, "model_type", None) not in SUPPORTED_BACKBONES:
            raise _bad("vlm_config.model_type", getattr(vlm, "model_type", None),
                       f"must be one of {list(SUPPORTED_BACKBONES)}")
        for name in ("state_dim", "action_dim", "chunk_size", "feature_dim", "state_hidden",
                     "head_hidden", "max_instruction_tokens"):
            _positive_int(name, getattr(self, name))
        self.action_low = _floats("action_low", self.action_low, self.action_dim)
        self.action_high = _floats("action_high", self.action_high, self.action_dim)
        for i, (lo, hi) in enumerate(zip(self.action_low, self.action_high)):
            if not lo < hi:
                raise _bad(f"action_low[{i}] / action_high[{i}]", (lo, hi), "must satisfy low < high")
        if self.state_mean is not None or self.state_std is not None:
            self.state_mean = _floats("state_mean", 0.0 if self.state_mean is None else self.state_mean,
                                      self.state_dim)
            self.state_std = _floats("state_std", 1.0 if self.state_std is None else self.state_std,
                                     self.state_dim)
            if not all(s > 0 for s in self.state_std):
                raise _bad("state_std", self.state_std, "must be > 0")
        self.image_mean = _floats("image_mean", self.image_mean, 3)
        self.image_std = _floats("image_std", self.image_std, 3)
        if not all(s > 0 for s in self.image_std):
            raise _bad("image_std", self.image_std, "must be > 0")
        patch, scale = self.patch_size, int(vlm.scale_factor)
        if self.image_size is None:
            self.image_size = int(vlm.vision_config.image_size)
        _positive_int("image_size", self.image_size)
        if self.image_size % (patch * scale):
            raise _bad("image_size", self.image_size,
                       f"must be a multiple of patch_size * scale_factor = {patch} * {scale}")
        names = self.camera_names
        if (not isinstance(names, (list, tuple)) or not names
                or not all(isinstance(n, str) and n and "." not in n for n in names)
                or len(set(names)) != len(names)):
            raise _bad("camera_names", names, "must be a non-empty list of distinct names without '.'")
        self.camera_names = list(names)
        if self.pooling not in POOLINGS:
            raise _bad("pooling", self.pooling, f"must be one of {list(POOLINGS)}")
        if not isinstance(self.instruction_first, bool):
            raise _bad("instruction_first", self.instruction_first, "must be true or false")
        if not isinstance(self.freeze_backbone, bool):
            raise _bad("freeze_backbone", self.freeze_backbone, "must be true or false")
        if (isinstance(self.period_s, bool) or not isinstance(self.period_s, (int, float))
                or not math.isfinite(self.period_s) or self.period_s <= 0):
            raise _bad("period_s", self.period_s, "must be a finite number > 0")

    @property
    def patch_size(self) -> int:
        patch = self.vlm_config.vision_config.patch_size
        return int(patch[0] if isinstance(patch, (list, tuple)) else patch)

    @property
    def image_tokens_per_camera(self) -> int:
        """Visual tokens one camera frame becomes after the patch grid and the pixel shuffle."""
        per_side = self.image_size // self.patch_size
        return per_side * per_side // int(self.vlm_config.scale_factor) ** 2

    @property
    def text_hidden_size(self) -> int:
        return int(self.vlm_config.text_config.hidden_size)

    @property
    def policy_feature_dim(self) -> int:
        """Size of ``ActionChunk.features``: pooled backbone features plus the state."""
        return self.feature_dim + self.state_dim


# So that ``AutoConfig`` (which ``AutoTokenizer`` consults) reads a saved VLA's config.json.
AutoConfig.register(VLAConfig.model_type, VLAConfig, exist_ok=True)
