"""LMDB environments opened by this process, shared by reference count.

LMDB refuses to open one environment twice in a process (its locks belong to the process and the
file), so two ``ReplayCache`` objects on one directory (a writer and a read-only reader) share
each segment's environment through this registry.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lmdb

from learners.cache.errors import CacheLockedError


@dataclass
class _Entry:
    env: lmdb.Environment
    refs: int
    writable: bool


_lock = threading.Lock()
_open: dict[str, _Entry] = {}


def acquire(path: Path, *, writable: bool, **options: Any) -> tuple[str, lmdb.Environment]:
    """``(key, environment)`` at ``path``, opened with ``options`` unless this process has it
    open; pass the key to :func:`release` (the path may be renamed meanwhile).

    A reader may share a writer's environment; a writer cannot take over one that a reader in
    this process opened read-only (:class:`CacheLockedError`).
    """
    key = os.path.realpath(path)
    with _lock:
        entry = _open.get(key)
        if entry is not None:
            if writable and not entry.writable:
                raise CacheLockedError(
                    f"{path}: open read-only by another ReplayCache in this process; close it "
                    "before opening the cache for writing"
                )
            entry.refs += 1
            return key, entry.env
        env = lmdb.open(str(path), readonly=not writable, create=writable, **options)
        _open[key] = _Entry(env, 1, writable)
        return key, env


def release(key: str) -> None:
    """Drop one reference; the last one closes the environment."""
    with _lock:
        entry = _open.get(key)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs > 0:
            return
        del _open[key]
    entry.env.close()
