"""Ways to get a VLA: the tiny default built locally, a saved one, or one around a real backbone.

Nothing here downloads: ``tiny_vla`` builds config, tokenizer and weights on the spot;
``load_vla`` and ``vla_from_backbone`` read local directories only (``HF_HUB_OFFLINE=1`` works).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from policies.vla.checkpoint import VLACheckpointError, _check_tokenizer
from policies.vla.config import VLAConfig
from policies.vla.model import VLAModel
from policies.vla.preprocess import image_processor_settings
from policies.vla.tokenizer import TokenizerError, build_tokenizer, load_tokenizer


def _seeded(config: VLAConfig, tokenizer, seed: int) -> VLAModel:
    # A private RNG stream: the caller's global torch RNG is left as it was.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        return VLAModel(config, tokenizer=tokenizer)


def tiny_vla(state_dim: int = 8, action_dim: int = 7, chunk_size: int = 8, seed: int = 0,
             **overrides: Any) -> VLAModel:
    """The default tiny SmolVLM-architecture VLA with the offline tokenizer, random weights from
    ``seed`` (the same seed gives the same weights). ``overrides`` are further ``VLAConfig`` fields."""
    config = VLAConfig(state_dim=state_dim, action_dim=action_dim, chunk_size=chunk_size, **overrides)
    return _seeded(config, build_tokenizer(), seed)


#: The VLAs that ship with rill, each a ``save_pretrained`` directory made by ``rill pretrain``
#: (its command, curve and evaluation in docs/results/pretrain/<name>/).
PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def pretrained_names() -> list[str]:
    return sorted(p.name for p in PRETRAINED_DIR.iterdir() if (p / "config.json").is_file()) \
        if PRETRAINED_DIR.is_dir() else []


def pretrained_vla_path(name: str) -> Path:
    """The directory of the shipped VLA ``name``; ``VLACheckpointError`` listing the shipped ones."""
    path = PRETRAINED_DIR / name
    if not (path / "config.json").is_file():
        raise VLACheckpointError(f"no shipped VLA {name!r}; rill ships {pretrained_names() or 'none'}")
    return path


#: How a config names a shipped VLA instead of a directory: ``pretrained:tabletop-reach``.
SHIPPED_PREFIX = "pretrained:"


def resolve_vla_path(spec: str | Path) -> Path:
    """The directory a VLA ``spec`` names: ``pretrained:NAME`` (a VLA rill ships) or a directory."""
    text = str(spec)
    if text.startswith(SHIPPED_PREFIX):
        return pretrained_vla_path(text[len(SHIPPED_PREFIX):])
    return Path(spec)


def vla_digest(spec: str | Path) -> str:
    """The sha256 of a saved VLA's weights (``pretrained:NAME`` or a directory): what a residual
    policy trained on its features records, so a VLA retrained in the same place is told apart."""
    import hashlib

    from policies.vla.checkpoint import weight_files

    digest = hashlib.sha256()
    for file in weight_files(resolve_vla_path(spec)):
        with open(file, "rb") as f:
            while block := f.read(1 << 22):
                digest.update(block)
    return digest.hexdigest()


def load_vla(path: str | Path) -> VLAModel:
    """A VLA saved with ``save_pretrained`` (a directory, or ``pretrained:NAME`` for one rill ships),
    loaded strictly (``VLACheckpointError`` on any mismatch)."""
    return VLAModel.from_pretrained(resolve_vla_path(path))


def vla_from_backbone(path: str | Path, state_dim: int, action_dim: int, chunk_size: int, seed: int = 0,
                      **overrides: Any) -> VLAModel:
    """A new VLA around a local vision-language checkpoint (e.g. a SmolVLM directory).

    The backbone's weights, its tokenizer and its image normalization (``preprocessor_config.json``)
    come from ``path``; the state encoder and the heads are new, from ``seed``. Missing or
    mis-shaped backbone weights are an error, not a random initialization.
    """
    from transformers import AutoConfig, AutoModel

    path = Path(path)
    if not (path / "config.json").is_file():
        raise VLACheckpointError(f"{path}: no config.json; not a transformers checkpoint directory")
    try:
        vlm_config = AutoConfig.from_pretrained(str(path), local_files_only=True)
        tokenizer = load_tokenizer(path)
    except (OSError, ValueError, KeyError) as e:
        raise VLACheckpointError(f"{path}: {type(e).__name__}: {e}") from e
    settings = {**image_processor_settings(path), **overrides}
    config = VLAConfig(vlm_config=vlm_config, state_dim=state_dim, action_dim=action_dim,
                       chunk_size=chunk_size, **settings)
    try:
        _check_tokenizer(tokenizer, config, path)
    except TokenizerError as e:
        raise VLACheckpointError(str(e)) from e
    try:
        backbone, info = AutoModel.from_pretrained(str(path), local_files_only=True, dtype=torch.float32,
                                                   output_loading_info=True)
    except (OSError, ValueError, RuntimeError) as e:
        raise VLACheckpointError(f"{path}: cannot load the backbone: {type(e).__name__}: {e}") from e
    bad = {k: v for k, v in info.items() if k in ("missing_keys", "mismatched_keys") and v}
    if bad:
        raise VLACheckpointError(f"{path}: backbone weights do not match its config.json: {bad}")
    model = _seeded(config, tokenizer, seed)
    model.backbone.load_state_dict(backbone.state_dict(), strict=True)
    return model
