"""Helpers for the replay-cache tests: reach into a segment's LMDB file like a failing disk would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


def flip_payload_byte(segment: Path, payload: bytes, at: int | None = None) -> int:
    """Flip one byte of ``payload`` wherever its bytes lie in the segment's data file (LMDB's
    copy-on-write leaves stale copies in freed pages, so every copy is hit). Returns the copies."""
    data_path = segment / "data.mdb"
    raw = bytearray(data_path.read_bytes())
    i = at if at is not None else len(payload) // 2
    copies = 0
    start = raw.find(payload)
    while start >= 0:
        raw[start + i] ^= 0x5A
        copies += 1
        start = raw.find(payload, start + 1)
    assert copies, f"payload not found in {data_path}"
    data_path.write_bytes(bytes(raw))
    return copies


@pytest.fixture
def damage_payload() -> Callable[..., int]:
    return flip_payload_byte


def segments_of(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.lmdb"))


@pytest.fixture
def segment_dirs() -> Callable[[Path], list[Path]]:
    return segments_of

