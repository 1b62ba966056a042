"""Strict loading of a saved VLA directory (the Hugging Face layout).

``transformers``' own ``from_pretrained`` warns about missing or mis-shaped weights and initializes
them at random; a robot must not run on such a model. Here the config is read and validated first,
then every tensor's name and shape in the safetensors header(s) is checked against the model the
config describes, and only then are the tensors read: any problem raises ``VLACheckpointError``
naming the file and the tensor, and no model is returned. Safetensors only; nothing is unpickled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file
from transformers.initialization import no_init_weights

from policies.vla.config import VLAConfig
from policies.vla.errors import VLACheckpointError
from policies.vla.tokenizer import IMAGE_TOKEN, TokenizerError, load_tokenizer

if TYPE_CHECKING:
    from policies.vla.model import VLAModel

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
WEIGHTS_INDEX = "model.safetensors.index.json"


def read_config(path: Path) -> VLAConfig:
    file = path / CONFIG
    if not file.is_file():
        raise VLACheckpointError(f"{path}: no {CONFIG}; a saved VLA has {CONFIG}, {WEIGHTS} and "
                                 "tokenizer files (write one with VLAModel.save_pretrained)")
    try:
        raw = json.loads(file.read_text())
    except (OSError, ValueError) as e:
        raise VLACheckpointError(f"{file}: not readable JSON: {e}") from e
    if not isinstance(raw, dict) or raw.get("model_type") != VLAConfig.model_type:
        kind = raw.get("model_type") if isinstance(raw, dict) else type(raw).__name__
        raise VLACheckpointError(
            f"{file}: model_type {kind!r} is not a rill VLA ({VLAConfig.model_type!r}); to wrap a "
            "vision-language checkpoint in a new VLA use policies.vla.build.vla_from_backbone")
    try:
        return VLAConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as e:  # VLAConfigError, or transformers' own errors on a bad sub-config
        raise VLACheckpointError(f"{file}: {type(e).__name__}: {e}") from e


def weight_files(path: Path) -> list[Path]:
    """The safetensors files a saved VLA's weights are in (one, or those its index lists)."""
    index = path / WEIGHTS_INDEX
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise VLACheckpointError(f"{index}: not a valid safetensors index: {e}") from e
        files = [path / n for n in names]
    elif (path / WEIGHTS).is_file():
        files = [path / WEIGHTS]
    else:
        raise VLACheckpointError(f"{path}: no {WEIGHTS} (or {WEIGHTS_INDEX}); weights are read from "
                                 "safetensors only")
    for f in files:
        if not f.is_file():
            raise VLACheckpointError(f"{f}: missing (listed in {WEIGHTS_INDEX})")
    return files


def _header(files: list[Path]) -> dict[str, tuple[tuple[int, ...], str, Path]]:
    """Every tensor's shape, dtype and file, from the safetensors headers (no data read)."""
    found: dict[str, tuple[tuple[int, ...], str, Path]] = {}
    for file in files:
        try:
            with safe_open(str(file), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 - safe_open is not a Mapping
                    if key in found:
                        raise VLACheckpointError(f"{file}: tensor {key!r} also in {found[key][2].name}")
                    sl = f.get_slice(key)
                    found[key] = (tuple(sl.get_shape()), str(sl.get_dtype()), file)
        except SafetensorError as e:
            raise VLACheckpointError(f"{file}: corrupt or truncated safetensors file: {e}") from e
    return found


def check_weights(model: torch.nn.Module, header: dict[str, tuple[tuple[int, ...], str, Path]]) -> None:
    """Raise unless ``header`` has exactly the model's tensors, each with the model's shape."""
    expected = model.state_dict()
    problems = []
    for key, tensor in expected.items():
        if key not in header:
            problems.append(f"tensor {key!r} missing (expected shape {tuple(tensor.shape)})")
            continue
        shape, dtype, file = header[key]
        if shape != tuple(tensor.shape):
            problems.append(f"{file.name}: tensor {key!r} has shape {shape}, the config gives "
                            f"{tuple(tensor.shape)}")
        elif tensor.is_floating_point() != (dtype in ("F16", "BF16", "F32", "F64")):
            problems.append(f"{file.name}: tensor {key!r} has dtype {dtype}, expected {tensor.dtype}")
    problems += [f"{header[k][2].name}: unexpected tensor {k!r}" for k in header if k not in expected]
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise VLACheckpointError("weights do not match config.json: " + "; ".join(problems[:5]) + more)


def load_checkpoint(cls: type[VLAModel], path: str | Path) -> VLAModel:
    """A fully loaded ``cls`` from ``path``, or ``VLACheckpointError``; never a partial model."""
    path = Path(path)
    if not path.is_dir():
        raise VLACheckpointError(f"{path}: not a directory (VLA checkpoints load from a local directory)")
    config = read_config(path)
    header = _header(weight_files(path))
    try:
        tokenizer = load_tokenizer(path)
    except TokenizerError as e:
        raise VLACheckpointError(str(e)) from e
    _check_tokenizer(tokenizer, config, path)
    with no_init_weights():  # every tensor is overwritten below
        model = cls(config)
    try:
        check_weights(model, header)
    except VLACheckpointError as e:
        raise VLACheckpointError(f"{path}: {e}") from None
    state: dict[str, torch.Tensor] = {}
    for file in sorted({f for _, _, f in header.values()}):
        try:
            state.update(load_file(str(file)))
        except (SafetensorError, OSError) as e:
            raise VLACheckpointError(f"{file}: cannot read tensors: {e}") from e
    model.load_state_dict(state, strict=True)
    model.tokenizer = tokenizer
    model.set_backbone_frozen(config.freeze_backbone)
    model.eval()
    return model


def _check_tokenizer(tokenizer, config: VLAConfig, path: Path) -> None:
    vocab = int(config.vlm_config.text_config.vocab_size)
    if len(tokenizer) > vocab:
        raise VLACheckpointError(f"{path}: the tokenizer has {len(tokenizer)} tokens, more than the "
                                 f"backbone's vocab_size {vocab}")
    image_id = tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    if image_id != config.vlm_config.image_token_id:
        raise VLACheckpointError(f"{path}: the tokenizer's {IMAGE_TOKEN!r} is id {image_id}, config.json's "
                                 f"image_token_id is {config.vlm_config.image_token_id}")
