"""The newest published weights, handed from the updater thread to the network thread."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedWeights:
    version: int
    sha256: str
    blob: bytes
    published_at: float  # time.monotonic() of publication


class WeightsBox:
    """A one-slot mailbox: ``put`` replaces, ``latest`` reads; safe across threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: PublishedWeights | None = None

    def put(self, version: int, sha256: str, blob: bytes) -> None:
        with self._lock:
            self._latest = PublishedWeights(version, sha256, blob, time.monotonic())

    def latest(self) -> PublishedWeights | None:
        with self._lock:
            return self._latest
