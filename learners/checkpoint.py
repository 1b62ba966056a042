"""Atomic, verifiable checkpoints: tensors in safetensors, metadata in JSON.

A checkpoint is a directory ``<name>/`` holding ``tensors.safetensors`` and ``state.json``; the JSON
carries the SHA-256 of the tensor file. It is written into a temporary sibling, every file fsynced,
then renamed into place and the parent fsynced, so a crash leaves either the old set of
checkpoints or the new one, never a half-written one under a final name. Loading verifies
everything before returning anything, so a damaged checkpoint is never half-loaded.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

TENSORS = "tensors.safetensors"
STATE = "state.json"
FORMAT = "rill-checkpoint"
FORMAT_VERSION = 1
PREFIX = "step_"
log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    """A checkpoint is missing or unusable."""


class CheckpointCorruptError(CheckpointError):
    """A checkpoint's files are damaged (truncated, altered, or not a checkpoint)."""


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_file(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (temp file, fsync, rename, fsync the directory)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    _write_file(tmp, data)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def save_checkpoint(path: Path, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
    """Write a checkpoint directory at ``path`` atomically; ``state`` must be JSON-serializable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = st_save({k: v.detach().contiguous() for k, v in tensors.items()})
    meta = {"format": FORMAT, "version": FORMAT_VERSION,
            "tensors_sha256": hashlib.sha256(blob).hexdigest(), "tensors_bytes": len(blob),
            "state": state}
    tmp = path.with_name(f".{path.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _write_file(tmp / TENSORS, blob)
    _write_file(tmp / STATE, json.dumps(meta, indent=1, sort_keys=True).encode())
    fsync_dir(tmp)
    if path.exists():
        # Replacing a checkpoint of the same name: move the old one aside first.
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        os.replace(path, old)
        os.replace(tmp, path)
        shutil.rmtree(old)
    else:
        os.replace(tmp, path)
    fsync_dir(path.parent)
    return path


def load_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint; raises ``CheckpointCorruptError`` naming the damage."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"checkpoint {path}: no such checkpoint directory")
    try:
        raw_meta = (path / STATE).read_bytes()
        blob = (path / TENSORS).read_bytes()
    except FileNotFoundError as e:
        raise CheckpointCorruptError(f"checkpoint {path}: missing file {Path(e.filename).name}") from e
    try:
        meta = json.loads(raw_meta)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CheckpointCorruptError(f"checkpoint {path / STATE}: not valid JSON ({e}); "
                                     "the file is truncated or damaged") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointCorruptError(f"checkpoint {path / STATE}: not a rill checkpoint")
    if meta.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path}: format version {meta.get('version')!r} is not "
                              f"supported (this rill reads version {FORMAT_VERSION})")
    if len(blob) != meta.get("tensors_bytes") or \
            hashlib.sha256(blob).hexdigest() != meta.get("tensors_sha256"):
        raise CheckpointCorruptError(
            f"checkpoint {path / TENSORS}: checksum mismatch ({len(blob)} bytes, expected "
            f"{meta.get('tensors_bytes')}); the file is truncated or damaged")
    try:
        tensors = st_load(blob)
    except (SafetensorError, ValueError) as e:
        raise CheckpointCorruptError(f"checkpoint {path / TENSORS}: unreadable ({e})") from e
    if "state" not in meta:
        raise CheckpointCorruptError(f"checkpoint {path / STATE}: no 'state' entry")
    return tensors, meta["state"]


class CheckpointStore:
    """``checkpoints/step_<N>/`` directories; the newest ``keep`` are retained."""

    def __init__(self, root: Path, keep: int = 3) -> None:
        self.root = Path(root)
        self.keep = keep
        self.root.mkdir(parents=True, exist_ok=True)

    def names(self) -> list[Path]:
        """Finished checkpoints, oldest first (temporary directories are skipped)."""
        return sorted(p for p in self.root.glob(f"{PREFIX}*") if p.is_dir())

    def save(self, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> Path:
        path = save_checkpoint(self.root / f"{PREFIX}{step:012d}", tensors, state)
        for old in self.names()[: -self.keep]:
            shutil.rmtree(old, ignore_errors=True)
        return path

    def load_latest(self) -> tuple[str, dict[str, torch.Tensor], dict[str, Any]] | None:
        """The newest checkpoint that verifies; damaged newer ones are reported and passed over."""
        names = self.names()
        errors = []
        for path in reversed(names):
            try:
                tensors, state = load_checkpoint(path)
            except CheckpointError as e:
                log.error("%s; trying an older checkpoint", e)
                errors.append(str(e))
                continue
            return path.name, tensors, state
        if errors:
            raise CheckpointError(f"no usable checkpoint in {self.root}: " + " | ".join(errors))
        return None
