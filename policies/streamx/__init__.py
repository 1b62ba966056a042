"""Stream-x building blocks that belong to the policy: networks, sparse init, normalizers.

The torch-based modules are imported on first use so that the numpy-only normalizers can be used
(by ``sim`` wrappers and robot loops) without importing torch.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "sparse_init_": "policies.streamx.sparse_init",
    "sparse_init_module_": "policies.streamx.sparse_init",
    "MLPBody": "policies.streamx.networks",
    "ValueNetwork": "policies.streamx.networks",
    "QNetwork": "policies.streamx.networks",
    "GaussianPolicyNetwork": "policies.streamx.networks",
    "CategoricalPolicyNetwork": "policies.streamx.networks",
    "RunningMeanStd": "policies.streamx.normalization",
    "ObservationNormalizer": "policies.streamx.normalization",
    "RewardScaler": "policies.streamx.normalization",
    "TimeFeature": "policies.streamx.normalization",
    "StreamXPreprocessor": "policies.streamx.normalization",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'policies.streamx' has no attribute {name!r}")
