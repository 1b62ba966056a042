"""A success classifier for robots without a reward: camera frame + instruction -> P(success).

``SuccessClassifier`` is the network (``model.py``), ``RewardModel`` the trained classifier with its
decision threshold, saved and loaded strictly (``checkpoint.py``). Training lives in
``agent.reward``; ``rill reward train`` makes one. Submodules import torch on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "RewardModelConfig": "policies.reward.model",
    "SuccessClassifier": "policies.reward.model",
    "encode_instructions": "policies.reward.model",
    "RewardModel": "policies.reward.checkpoint",
    "RewardModelError": "policies.reward.checkpoint",
    "load_reward_model": "policies.reward.checkpoint",
    "save_reward_model": "policies.reward.checkpoint",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'policies.reward' has no attribute {name!r}")
    return getattr(import_module(_LAZY[name]), name)
