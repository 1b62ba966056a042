"""The newest published weights, handed from the updater thread to the network thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PublishedWeights:
    version: int
    digest: str  # learners.link.wire.weights_digest of blob
    blob: bytes
    published_at: float  # time.monotonic() of publication


class WeightsBox:
    """A one-slot mailbox: ``put`` replaces, ``latest`` reads; safe across threads.

    ``on_put`` callbacks run after each ``put`` (the link's server wakes on it, so new weights are
    announced at once rather than at its next idle poll)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: PublishedWeights | None = None
        self._listeners: list[Callable[[], None]] = []

    def on_put(self, callback: Callable[[], None]) -> None:
        self._listeners.append(callback)

    def put(self, version: int, digest: str, blob: bytes) -> None:
        with self._lock:
            self._latest = PublishedWeights(version, digest, blob, time.monotonic())
        for callback in self._listeners:
            callback()

    def latest(self) -> PublishedWeights | None:
        with self._lock:
            return self._latest
