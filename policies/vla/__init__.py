"""The vision-language-action policy and its stream-x residual heads.

``tiny_vla`` builds the default tiny SmolVLM-architecture VLA offline; ``load_vla`` loads a saved
one strictly; ``vla_from_backbone`` wraps a local vision-language checkpoint. ``VLAPolicy`` puts a
``VLAModel`` behind the ``Policy`` contract; ``ResidualPolicy`` adds the stream-x residual actor.
Submodules are imported on first use, so ``import policies.vla`` does not import torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "VLAConfig": "policies.vla.config",
    "VLAConfigError": "policies.vla.config",
    "VLAModel": "policies.vla.model",
    "VLAOutput": "policies.vla.model",
    "VLACheckpointError": "policies.vla.errors",
    "VLAPolicy": "policies.vla.policy",
    "ResidualPolicy": "policies.vla.residual",
    "ResidualWeightsError": "policies.vla.residual",
    "build_tokenizer": "policies.vla.tokenizer",
    "load_tokenizer": "policies.vla.tokenizer",
    "TokenizerError": "policies.vla.tokenizer",
    "tiny_vla": "policies.vla.build",
    "load_vla": "policies.vla.build",
    "vla_from_backbone": "policies.vla.build",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'policies.vla' has no attribute {name!r}")
